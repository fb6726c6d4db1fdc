//! What happens to each party's reputation when a trade ends (DESIGN.md section 4): it earns
//! fresh tokens (signed outputs) and gets its stake back, gets only its stake back, or loses
//! its stake (burned: its return outputs are never signed).

use super::money::Outcome;

/// One party's reputation at the end of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Completed, or won a dispute: earn outputs and return outputs are signed.
    Earn,
    /// Nobody's fault: the stake comes back; nothing is earned.
    Return,
    /// At fault (lost a dispute, forfeited, or let a bond-paid offer expire without a receipt):
    /// the stake is gone.
    Burn,
}

/// The maker's and the taker's fates for a trade that ended with `outcome`; `disputed` says
/// whether it went through an issue (a MAKER_WINS without one is a taker who never sent the
/// receipt: its fault, but no win for the maker to earn from).
pub fn fates(outcome: Outcome, disputed: bool) -> (Fate, Fate) {
    match outcome {
        Outcome::Completed => (Fate::Earn, Fate::Earn),
        Outcome::RefundMaker => (Fate::Return, Fate::Return),
        Outcome::MakerWins if disputed => (Fate::Earn, Fate::Burn),
        Outcome::MakerWins => (Fate::Return, Fate::Burn),
        Outcome::TakerWins => (Fate::Burn, Fate::Earn),
        Outcome::Return | Outcome::Split => (Fate::Return, Fate::Return),
        // The maker's details were at fault; the taker is compensated in sats, but no trade
        // happened, so nothing is earned (two sessions of one user could farm it otherwise).
        Outcome::BadDetails => (Fate::Burn, Fate::Return),
    }
}

/// [`fates`], where only a trade whose escrow reaches `min_earn_sats` earns: below it, an
/// earning party gets its stake back and nothing more.
pub fn fates_at(outcome: Outcome, disputed: bool, escrow: u64, min_earn_sats: u64) -> (Fate, Fate) {
    let floor = |f: Fate| {
        if f == Fate::Earn && escrow < min_earn_sats {
            Fate::Return
        } else {
            f
        }
    };
    let (maker, taker) = fates(outcome, disputed);
    (floor(maker), floor(taker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_earns_for_both() {
        assert_eq!(fates(Outcome::Completed, false), (Fate::Earn, Fate::Earn));
    }

    #[test]
    fn the_loser_of_a_dispute_is_burned_and_the_winner_earns() {
        assert_eq!(fates(Outcome::MakerWins, true), (Fate::Earn, Fate::Burn));
        assert_eq!(fates(Outcome::TakerWins, true), (Fate::Burn, Fate::Earn));
    }

    #[test]
    fn nobodys_fault_returns_stakes_and_earns_nothing() {
        for o in [Outcome::RefundMaker, Outcome::Return, Outcome::Split] {
            assert_eq!(fates(o, true), (Fate::Return, Fate::Return), "{o}");
        }
    }

    #[test]
    fn a_trade_below_the_floor_earns_nothing_and_burns_as_before() {
        assert_eq!(
            fates_at(Outcome::Completed, false, 99_999, 100_000),
            (Fate::Return, Fate::Return)
        );
        assert_eq!(
            fates_at(Outcome::Completed, false, 100_000, 100_000),
            (Fate::Earn, Fate::Earn)
        );
        assert_eq!(
            fates_at(Outcome::TakerWins, true, 1, 100_000),
            (Fate::Burn, Fate::Return)
        );
    }

    #[test]
    fn a_taker_silent_after_its_bond_loses_its_stake() {
        assert_eq!(fates(Outcome::MakerWins, false), (Fate::Return, Fate::Burn));
    }
}
