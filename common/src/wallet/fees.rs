//! Fitting a send and the mint's input fee into the sats it may move.
//!
//! DESIGN.md section 4: a payout's fee comes out of the payout, never out of sats the wallet
//! holds for someone else. cdk's `prepare_send(amount)` picks the proofs and tells their fee
//! only afterwards, and the fee depends on which proofs it picked; so finding the largest
//! token whose fee still fits is a search: try an amount, look at its fee, try another.
//! [`FeeFit`] is that search on its own (no wallet, no I/O), so it can be tested over any fee
//! function; `prepare_within` runs it against cdk.

use cdk::nuts::SpendingConditions;
use cdk::wallet::{PreparedSend, SendOptions, Wallet};
use cdk::Amount;

use super::error::WalletError;
use crate::domain::keys::XOnlyKey;

/// What trying one amount found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tried {
    /// The wallet can send the amount; this is the mint's fee for it.
    Fee(u64),
    /// The wallet cannot cover the amount and its fee; what it holds.
    Unaffordable(Holdings),
}

/// What a wallet holds, looked at when an amount proved unaffordable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holdings {
    /// Spendable sats.
    pub unspent: u64,
    /// The fee for spending every unspent proof: the most any send can cost.
    pub spend_all_fee: u64,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try this amount (giving back what the last try reserved).
    Try(u64),
    /// Keep the last try, of this amount: it and its fee fit. Only ever follows a
    /// [`Tried::Fee`].
    Take(u64),
    /// Nothing fits: the wallet is short.
    Short,
}

/// The search for the largest amount that, with its fee, comes to at most `total` sats.
///
/// With a fee-free mint the first try (`total`) is taken. Otherwise the amount shrinks by the
/// fee the last try cost; a try that leaves slack is kept in hand while the amount the slack
/// allows is tried once. When the wallet holds about `total` and cannot cover even that, the
/// next guess is `total` less the fee of spending everything. A sat or two may stay behind when
/// no exact fit exists (the session's cleanup returns them); after [`FeeFit::MAX_TRIES`] tries
/// the wallet counts as short.
#[derive(Debug, Clone)]
pub struct FeeFit {
    total: u64,
    /// The amount tried last.
    amount: u64,
    /// An amount known to fit with slack, to fall back on while a larger one is tried.
    fits: Option<u64>,
    tries: usize,
}

impl FeeFit {
    /// Tries before giving up: each costs a round of proof selection in the wallet.
    pub const MAX_TRIES: usize = 8;

    /// A search for a send of `total` sats, fee included, and the first thing to do.
    pub fn new(total: u64) -> (Self, Next) {
        let mut fit = Self {
            total,
            amount: total,
            fits: None,
            tries: 0,
        };
        let next = fit.try_amount(total);
        (fit, next)
    }

    /// What trying the last amount found; what to do next.
    pub fn tried(&mut self, found: Tried) -> Next {
        let (total, amount) = (self.total, self.amount);
        match found {
            Tried::Fee(fee) => {
                let cost = amount.saturating_add(fee);
                if cost == total || (cost < total && self.fits.is_some()) {
                    return Next::Take(amount);
                }
                if cost < total {
                    self.fits = Some(amount);
                    return self.try_amount(total - fee);
                }
                let next = match self.fits {
                    Some(f) => f,
                    None => total.saturating_sub(fee).min(amount - 1),
                };
                self.try_amount(next)
            }
            Tried::Unaffordable(held) => {
                if let Some(f) = self.fits {
                    return self.try_amount(f);
                }
                // A wallet short of `total` itself is a real shortage, not a fee.
                if held.unspent < total {
                    return Next::Short;
                }
                // Spending every proof costs the most any send can: below that it must fit.
                let floor = total.saturating_sub(held.spend_all_fee);
                if held.spend_all_fee == 0 || floor >= amount {
                    return Next::Short;
                }
                self.try_amount(floor)
            }
        }
    }

    fn try_amount(&mut self, amount: u64) -> Next {
        if amount == 0 || self.tries >= Self::MAX_TRIES {
            return Next::Short;
        }
        self.tries += 1;
        self.amount = amount;
        Next::Try(amount)
    }
}

/// Prepares a send whose token plus the mint's input fees come to at most `total` sats (see
/// [`FeeFit`]). Returns the prepared send and the token's amount; a wallet the search finds
/// short gives `InsufficientFunds`.
pub(super) async fn prepare_within(
    w: &Wallet,
    total: u64,
    lock: Option<XOnlyKey>,
) -> Result<(PreparedSend<'_>, u64), WalletError> {
    let opts = SendOptions {
        conditions: lock.map(|k| SpendingConditions::new_p2pk(k.to_lock_key(), None)),
        ..Default::default()
    };
    let (mut fit, mut next) = FeeFit::new(total);
    while let Next::Try(amount) = next {
        next = match w.prepare_send(Amount::from(amount), opts.clone()).await {
            Ok(prepared) => match fit.tried(Tried::Fee(prepared.fee().into())) {
                Next::Take(amount) => return Ok((prepared, amount)),
                other => {
                    prepared.cancel().await?;
                    other
                }
            },
            Err(cdk::Error::InsufficientFunds) => {
                let unspent = w.get_unspent_proofs().await?;
                let held = Holdings {
                    unspent: w.total_balance().await?.into(),
                    spend_all_fee: w.get_proofs_fee(&unspent).await?.total.into(),
                };
                fit.tried(Tried::Unaffordable(held))
            }
            Err(e) => return Err(e.into()),
        };
    }
    Err(WalletError::Cdk(cdk::Error::InsufficientFunds))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the search over a wallet described by `fee_of` (`None`: it cannot cover that
    /// amount and its fee) and what it holds. Returns the amount taken and every amount tried.
    fn search(
        total: u64,
        held: Holdings,
        fee_of: impl Fn(u64) -> Option<u64>,
    ) -> (Option<u64>, Vec<u64>) {
        let mut tries = Vec::new();
        let (mut fit, mut next) = FeeFit::new(total);
        loop {
            match next {
                Next::Try(amount) => {
                    tries.push(amount);
                    next = fit.tried(match fee_of(amount) {
                        Some(fee) => Tried::Fee(fee),
                        None => Tried::Unaffordable(held),
                    });
                }
                Next::Take(amount) => return (Some(amount), tries),
                Next::Short => return (None, tries),
            }
        }
    }

    /// A wallet holding `proofs`, at a mint charging `ppk` per thousand inputs (rounded up):
    /// sending takes the largest proofs until they cover the amount and their own fee.
    fn per_proof(proofs: &[u64], ppk: u64) -> (Holdings, impl Fn(u64) -> Option<u64> + '_) {
        let fee = move |inputs: u64| (inputs * ppk).div_ceil(1000);
        let held = Holdings {
            unspent: proofs.iter().sum(),
            spend_all_fee: fee(proofs.len() as u64),
        };
        let fee_of = move |amount: u64| {
            let (mut sum, mut inputs) = (0, 0);
            for p in proofs {
                if sum >= amount + fee(inputs) {
                    break;
                }
                sum += p;
                inputs += 1;
            }
            (sum >= amount + fee(inputs)).then(|| fee(inputs))
        };
        (held, fee_of)
    }

    const PLENTY: Holdings = Holdings {
        unspent: 1_000_000,
        spend_all_fee: 10,
    };

    #[test]
    fn a_fee_free_mint_sends_everything_in_one_try() {
        assert_eq!(search(500, PLENTY, |_| Some(0)), (Some(500), vec![500]));
    }

    #[test]
    fn a_per_proof_fee_comes_out_of_the_payout() {
        let proofs = [512, 256, 128, 64, 32, 8];
        // One input (512) at 100 ppk: a sat of fee, so the token is 299.
        let (held, fee_of) = per_proof(&proofs, 100);
        assert_eq!(search(300, held, fee_of), (Some(299), vec![300, 299]));
        // Four inputs at 1000 ppk for 900 sats: 896 plus 4.
        let (held, fee_of) = per_proof(&proofs, 1000);
        assert_eq!(search(900, held, fee_of), (Some(896), vec![900, 896]));
    }

    #[test]
    fn a_fit_can_take_several_tries() {
        // The fee grows with the amount: 100 costs 3, 97 costs 2 and leaves a sat of slack,
        // which 98 (also costing 2) fills exactly.
        let grows = |a: u64| Some(1 + a / 50);
        assert_eq!(search(100, PLENTY, grows), (Some(98), vec![100, 97, 98]));
        // The larger amount the slack allows costs more: back to the one that fitted, and two
        // sats stay in the wallet.
        let steps = |a: u64| Some(if a >= 97 { 4 } else { 2 });
        assert_eq!(
            search(100, PLENTY, steps),
            (Some(96), vec![100, 96, 98, 96])
        );
        // A wallet of exactly 100 sats: 100 is unaffordable, 100 less the fee of spending
        // everything (5) fits with slack, the larger 98 is unaffordable again, so back to 95.
        let held = Holdings {
            unspent: 100,
            spend_all_fee: 5,
        };
        let short_above = |a: u64| (a < 98).then_some(2);
        assert_eq!(
            search(100, held, short_above),
            (Some(95), vec![100, 95, 98, 95])
        );
    }

    #[test]
    fn a_payout_smaller_than_its_fee_is_short() {
        assert_eq!(search(1, PLENTY, |_| Some(1)), (None, vec![1]));
        assert_eq!(search(2, PLENTY, |_| Some(2)), (None, vec![2]));
        // A one-sat wallet that cannot pay the fee of spending its one proof.
        let one = Holdings {
            unspent: 1,
            spend_all_fee: 1,
        };
        assert_eq!(search(1, one, |_| None), (None, vec![1]));
    }

    #[test]
    fn an_exact_balance_send_pays_the_fee_out_of_itself() {
        // The wallet holds exactly the payout; 100 plus any fee is out of reach, so the next
        // guess is 100 less the fee of spending all three proofs.
        let proofs = [64, 32, 4];
        let (held, fee_of) = per_proof(&proofs, 1000);
        assert_eq!(search(100, held, fee_of), (Some(97), vec![100, 97]));
        // At 100 ppk three inputs cost one sat.
        let (held, fee_of) = per_proof(&proofs, 100);
        assert_eq!(search(100, held, fee_of), (Some(99), vec![100, 99]));
    }

    #[test]
    fn a_wallet_short_of_the_total_is_short_at_once() {
        let held = Holdings {
            unspent: 50,
            spend_all_fee: 1,
        };
        assert_eq!(search(100, held, |_| None), (None, vec![100]));
        // At a fee-free mint nothing but the balance can make a send unaffordable.
        let free = Holdings {
            unspent: 100,
            spend_all_fee: 0,
        };
        assert_eq!(search(100, free, |_| None), (None, vec![100]));
    }

    #[test]
    fn the_search_gives_up_after_its_tries_and_sends_nothing_for_nothing() {
        // Every amount costs one sat more than it may: shrinks a sat at a time, then gives up.
        let (taken, tries) = search(1_000, PLENTY, |a| Some(1_001 - a));
        assert_eq!(taken, None);
        assert_eq!(tries, (993..=1_000).rev().collect::<Vec<_>>());
        assert_eq!(tries.len(), FeeFit::MAX_TRIES);
        assert_eq!(search(0, PLENTY, |_| Some(0)), (None, vec![]));
    }
}
