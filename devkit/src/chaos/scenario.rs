//! What each chaos trade sets out to do. Pure: the plan for trade `i` of `n`.

/// One trade's intended life. Chaos may bend it (a lost answer, a timer that ran out while the
/// mint was stopped); the run reports what each trade ended as, and checks the money either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// Deposit, claim, bond, receipt, the maker confirms: COMPLETED.
    Complete,
    /// As `Complete`, but the maker stays silent: COMPLETED by the receipt's lapse.
    SilentComplete,
    /// The maker cancels before paying, then pays the deposit anyway: CANCELLED, late refund.
    CancelThenPay,
    /// The maker pays and cancels in the book: CANCELLED, deposit refunded.
    CancelFunded,
    /// Nobody pays the deposit: EXPIRED in CREATED.
    LapseCreated,
    /// The deposit is paid after CREATED lapsed: EXPIRED, late refund.
    LateDeposit,
    /// Funded with a short lifetime, never claimed: EXPIRED in the book, deposit refunded.
    LapseBook,
    /// Claimed, the bond paid after the claim lapsed (refunded), then the maker cancels.
    LateBond,
    /// Bond paid, no receipt: EXPIRED, the maker gets the deposit and the taker's bond.
    LapseBondPaid,
    /// An issue, the taker forfeits: RESOLVED, MAKER_WINS.
    IssueForfeit,
    /// An issue, the taker stays silent: RESOLVED, MAKER_WINS by lapse.
    IssueSilence,
    /// Issue, dispute, counter, an admin splits: RESOLVED, SPLIT.
    DisputeSplit,
}

/// One round of the plan; completions weigh more, as in a real book.
const ROUND: [Scenario; 14] = [
    Scenario::Complete,
    Scenario::LapseCreated,
    Scenario::CancelFunded,
    Scenario::SilentComplete,
    Scenario::LateDeposit,
    Scenario::LateBond,
    Scenario::Complete,
    Scenario::LapseBondPaid,
    Scenario::CancelThenPay,
    Scenario::IssueForfeit,
    Scenario::LapseBook,
    Scenario::Complete,
    Scenario::DisputeSplit,
    Scenario::IssueSilence,
];

impl Scenario {
    /// The plan of trade `i`.
    pub fn for_trade(i: usize) -> Self {
        ROUND[i % ROUND.len()]
    }

    /// A short name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::SilentComplete => "silent-complete",
            Self::CancelThenPay => "cancel-then-pay",
            Self::CancelFunded => "cancel-funded",
            Self::LapseCreated => "lapse-created",
            Self::LateDeposit => "late-deposit",
            Self::LapseBook => "lapse-book",
            Self::LateBond => "late-bond",
            Self::LapseBondPaid => "lapse-bond-paid",
            Self::IssueForfeit => "issue-forfeit",
            Self::IssueSilence => "issue-silence",
            Self::DisputeSplit => "dispute-split",
        }
    }

    /// Whether the maker pays the deposit in time.
    pub fn funds(self) -> bool {
        !matches!(
            self,
            Self::CancelThenPay | Self::LapseCreated | Self::LateDeposit
        )
    }

    /// Whether a taker claims the funded offer.
    pub fn claims(self) -> bool {
        self.funds() && !matches!(self, Self::CancelFunded | Self::LapseBook)
    }

    /// Whether the taker pays its bond in time and goes on.
    pub fn bonds(self) -> bool {
        self.claims() && self != Self::LateBond
    }

    /// Whether the taker uploads a receipt.
    pub fn receipts(self) -> bool {
        self.bonds() && self != Self::LapseBondPaid
    }

    /// Whether the maker raises an issue after the receipt.
    pub fn issues(self) -> bool {
        matches!(
            self,
            Self::IssueForfeit | Self::IssueSilence | Self::DisputeSplit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_covers_every_scenario_and_its_steps_nest() {
        let all: std::collections::BTreeSet<_> =
            (0..ROUND.len()).map(Scenario::for_trade).collect();
        assert_eq!(all.len(), 12);
        for s in all {
            assert!(!s.receipts() || s.bonds(), "{s:?}");
            assert!(!s.bonds() || s.claims(), "{s:?}");
            assert!(!s.claims() || s.funds(), "{s:?}");
            assert!(!s.issues() || s.receipts(), "{s:?}");
        }
    }
}
