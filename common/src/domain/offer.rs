//! The offer state machine: statuses, who may move an offer where, the per-state timers and
//! what happens when one lapses. Pure: the caller persists every move as a compare-and-set on
//! the status it read (and, for a party's move, on its deadline not having passed).
//!
//! Claims are not a state of the offer: a claim costs nothing until its bond is paid, so while
//! takers' claims wait for their bonds (rows of their own, [`super::claim`]) the offer stays
//! listed in INVOICE_PAID, and the first bond minted moves it to TAKER_BOND_PAID. The status
//! INVOICE_CREATED, which a claim used to enter, is gone.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Where an offer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OfferStatus {
    /// Deposit invoice issued to the maker.
    Created,
    /// Funded; public in the book. Claims may wait on it, each for its own bond.
    InvoicePaid,
    /// A taker's bond is paid (it won the offer); the taker pays the fiat and uploads the
    /// receipt.
    TakerBondPaid,
    /// The receipt is in; the maker confirms or marks an issue.
    ReceiptSubmitted,
    /// The maker reported a problem; the taker forfeits or disputes.
    MarkedWithIssue,
    /// The taker disputes; the maker forfeits or counters, then an admin decides.
    Disputed,
    /// The taker reports that the maker's payment details do not work; the maker forfeits or
    /// counters, then an admin decides.
    DetailsDisputed,
    /// Done: the taker was paid.
    Completed,
    /// Lapsed.
    Expired,
    /// Settled by forfeit, silence or an admin.
    Resolved,
    /// Withdrawn by the maker before anyone claimed it.
    Cancelled,
}

/// Every status, in lifecycle order.
pub const ALL_STATUSES: [OfferStatus; 11] = [
    OfferStatus::Created,
    OfferStatus::InvoicePaid,
    OfferStatus::TakerBondPaid,
    OfferStatus::ReceiptSubmitted,
    OfferStatus::MarkedWithIssue,
    OfferStatus::Disputed,
    OfferStatus::DetailsDisputed,
    OfferStatus::Completed,
    OfferStatus::Expired,
    OfferStatus::Resolved,
    OfferStatus::Cancelled,
];

impl OfferStatus {
    /// The stored and wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::InvoicePaid => "INVOICE_PAID",
            Self::TakerBondPaid => "TAKER_BOND_PAID",
            Self::ReceiptSubmitted => "RECEIPT_SUBMITTED",
            Self::MarkedWithIssue => "MARKED_WITH_ISSUE",
            Self::Disputed => "DISPUTED",
            Self::DetailsDisputed => "DETAILS_DISPUTED",
            Self::Completed => "COMPLETED",
            Self::Expired => "EXPIRED",
            Self::Resolved => "RESOLVED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// No further moves.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Expired | Self::Resolved | Self::Cancelled
        )
    }

    /// Shown in the public book.
    pub fn is_public(self) -> bool {
        self == Self::InvoicePaid
    }
}

impl fmt::Display for OfferStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown offer status")]
pub struct UnknownStatus;

impl FromStr for OfferStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_STATUSES
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

/// Something that moves an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The maker's deposit arrived (Lightning or Cashu token).
    DepositPaid,
    /// A taker claimed it (the offer stays where it is: a claim waits for its bond).
    Claim,
    /// A claim's bond arrived first.
    BondPaid,
    /// The taker reports that the payment details do not work.
    ReportDetails,
    /// The taker uploaded the receipt.
    SubmitReceipt,
    /// The maker confirmed the fiat arrived.
    Confirm,
    /// The maker reported a problem.
    MarkIssue,
    /// The taker gave up after an issue.
    TakerForfeit,
    /// The taker disputes the issue.
    Dispute,
    /// The maker gave up the dispute.
    MakerForfeit,
    /// The maker maintains the issue; an admin decides.
    Counter,
    /// The maker withdrew an unclaimed offer.
    Cancel,
    /// The state's timer ran out.
    Lapse,
    /// An admin settled a dispute.
    AdminResolve,
}

/// A move the machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{event:?} is not allowed in {from}")]
pub struct InvalidTransition {
    /// Where the offer was.
    pub from: OfferStatus,
    /// What was tried.
    pub event: Event,
}

/// Where `event` takes an offer in `from`.
pub fn transition(from: OfferStatus, event: Event) -> Result<OfferStatus, InvalidTransition> {
    use Event as E;
    use OfferStatus as S;
    let to = match (from, event) {
        (S::Created, E::DepositPaid) => S::InvoicePaid,
        (S::Created | S::InvoicePaid, E::Cancel) => S::Cancelled,
        (S::Created, E::Lapse) => S::Expired,
        // Claiming is allowed here and moves nothing; the first bond paid does.
        (S::InvoicePaid, E::Claim) => S::InvoicePaid,
        (S::InvoicePaid, E::BondPaid) => S::TakerBondPaid,
        (S::InvoicePaid, E::Lapse) => S::Expired,
        (S::TakerBondPaid, E::SubmitReceipt) => S::ReceiptSubmitted,
        (S::TakerBondPaid, E::ReportDetails) => S::DetailsDisputed,
        (S::TakerBondPaid, E::Lapse) => S::Expired,
        (S::ReceiptSubmitted, E::Confirm) => S::Completed,
        // Silence is consent.
        (S::ReceiptSubmitted, E::Lapse) => S::Completed,
        (S::ReceiptSubmitted, E::MarkIssue) => S::MarkedWithIssue,
        (S::MarkedWithIssue, E::TakerForfeit | E::Lapse) => S::Resolved,
        (S::MarkedWithIssue, E::Dispute) => S::Disputed,
        (S::Disputed | S::DetailsDisputed, E::MakerForfeit | E::AdminResolve) => S::Resolved,
        // Maker silence counts as a counter: the dispute stays for an admin.
        (S::Disputed, E::Counter | E::Lapse) => S::Disputed,
        (S::DetailsDisputed, E::Counter | E::Lapse) => S::DetailsDisputed,
        _ => return Err(InvalidTransition { from, event }),
    };
    Ok(to)
}

/// Per-state timers of the offer state machine, and the claims' bond timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timers {
    /// CREATED: how long the deposit quote is valid.
    pub created: Duration,
    /// INVOICE_PAID: default offer lifetime when the maker gives none.
    pub invoice_paid_default: Duration,
    /// INVOICE_PAID: longest lifetime a maker may ask for.
    pub invoice_paid_max: Duration,
    /// A claim: how long its taker has to pay the bond (capped by the offer's listing).
    pub invoice_created: Duration,
    /// TAKER_BOND_PAID: how long the taker has to pay fiat and upload the receipt.
    pub taker_bond_paid: Duration,
    /// RECEIPT_SUBMITTED: how long the maker has to confirm or mark an issue.
    pub receipt_submitted: Duration,
    /// MARKED_WITH_ISSUE: how long the taker has to forfeit or dispute.
    pub marked_with_issue: Duration,
    /// DISPUTED: how long the maker has to forfeit or counter.
    pub disputed: Duration,
    /// DETAILS_DISPUTED: how long the maker has to forfeit or counter the taker's report.
    pub details_disputed: Duration,
}

/// How long an offer may stay in `status` (from the moment it entered it); `None` for states
/// without a timer. `lifetime` is the offer's own INVOICE_PAID lifetime.
pub fn timer(status: OfferStatus, timers: &Timers, lifetime: Duration) -> Option<Duration> {
    match status {
        OfferStatus::Created => Some(timers.created),
        OfferStatus::InvoicePaid => Some(lifetime),
        OfferStatus::TakerBondPaid => Some(timers.taker_bond_paid),
        OfferStatus::ReceiptSubmitted => Some(timers.receipt_submitted),
        OfferStatus::MarkedWithIssue => Some(timers.marked_with_issue),
        OfferStatus::Disputed => Some(timers.disputed),
        OfferStatus::DetailsDisputed => Some(timers.details_disputed),
        OfferStatus::Completed
        | OfferStatus::Expired
        | OfferStatus::Resolved
        | OfferStatus::Cancelled => None,
    }
}

/// What a lapsed timer does to an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapse {
    /// The deposit never came (after re-checking the quote): EXPIRED, nothing to pay.
    ExpireUnfunded,
    /// Move to `to` and settle by the money table's `outcome`; `bond_paid` says whether the
    /// taker's wallet holds the bond.
    Settle {
        /// The new status.
        to: OfferStatus,
        /// How the money is split.
        outcome: crate::domain::money::Outcome,
        /// The taker's bond is in the taker's wallet.
        bond_paid: bool,
    },
    /// The maker's silence counts as a counter: the dispute goes to an admin (no timer).
    CounterBySilence,
}

/// The lapse of `status`, or `None` for states without a timer.
pub fn lapse(status: OfferStatus) -> Option<Lapse> {
    use crate::domain::money::Outcome;
    use OfferStatus as S;
    Some(match status {
        S::Created => Lapse::ExpireUnfunded,
        S::InvoicePaid => Lapse::Settle {
            to: S::Expired,
            outcome: Outcome::RefundMaker,
            bond_paid: false,
        },
        S::TakerBondPaid => Lapse::Settle {
            to: S::Expired,
            outcome: Outcome::MakerWins,
            bond_paid: true,
        },
        S::ReceiptSubmitted => Lapse::Settle {
            to: S::Completed,
            outcome: Outcome::Completed,
            bond_paid: true,
        },
        S::MarkedWithIssue => Lapse::Settle {
            to: S::Resolved,
            outcome: Outcome::MakerWins,
            bond_paid: true,
        },
        S::Disputed | S::DetailsDisputed => Lapse::CounterBySilence,
        S::Completed | S::Expired | S::Resolved | S::Cancelled => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in ALL_STATUSES {
            assert_eq!(s.as_str().parse::<OfferStatus>(), Ok(s));
        }
        assert_eq!("NOPE".parse::<OfferStatus>(), Err(UnknownStatus));
    }

    #[test]
    fn the_happy_path() {
        let mut s = OfferStatus::Created;
        for e in [
            Event::DepositPaid,
            Event::Claim,
            Event::Claim,
            Event::BondPaid,
            Event::SubmitReceipt,
            Event::Confirm,
        ] {
            s = transition(s, e).expect("allowed");
        }
        assert_eq!(s, OfferStatus::Completed);
    }

    #[test]
    fn lapses_follow_the_design_table() {
        use OfferStatus as S;
        let cases = [
            (S::Created, S::Expired),
            (S::InvoicePaid, S::Expired),
            (S::TakerBondPaid, S::Expired),
            (S::ReceiptSubmitted, S::Completed),
            (S::MarkedWithIssue, S::Resolved),
            (S::Disputed, S::Disputed),
            (S::DetailsDisputed, S::DetailsDisputed),
        ];
        for (from, to) in cases {
            assert_eq!(transition(from, Event::Lapse), Ok(to), "{from}");
        }
    }

    #[test]
    fn terminal_states_do_not_move() {
        for s in ALL_STATUSES.into_iter().filter(|s| s.is_terminal()) {
            for e in [Event::Lapse, Event::Cancel, Event::Claim, Event::Confirm] {
                assert!(transition(s, e).is_err(), "{s} {e:?}");
            }
        }
    }

    #[test]
    fn cancel_only_before_a_claim() {
        assert_eq!(
            transition(OfferStatus::InvoicePaid, Event::Cancel),
            Ok(OfferStatus::Cancelled)
        );
        assert!(transition(OfferStatus::TakerBondPaid, Event::Cancel).is_err());
    }

    #[test]
    fn a_claim_moves_nothing_and_the_bond_moves_the_offer() {
        use OfferStatus as S;
        assert_eq!(transition(S::InvoicePaid, Event::Claim), Ok(S::InvoicePaid));
        assert_eq!(
            transition(S::InvoicePaid, Event::BondPaid),
            Ok(S::TakerBondPaid)
        );
        assert!(transition(S::Created, Event::Claim).is_err());
        assert!(transition(S::TakerBondPaid, Event::Claim).is_err());
        assert!(transition(S::TakerBondPaid, Event::BondPaid).is_err());
    }

    #[test]
    fn the_taker_may_report_the_details_only_before_its_receipt() {
        use OfferStatus as S;
        assert_eq!(
            transition(S::TakerBondPaid, Event::ReportDetails),
            Ok(S::DetailsDisputed)
        );
        assert!(transition(S::ReceiptSubmitted, Event::ReportDetails).is_err());
        assert_eq!(
            transition(S::DetailsDisputed, Event::MakerForfeit),
            Ok(S::Resolved)
        );
        assert_eq!(
            transition(S::DetailsDisputed, Event::Counter),
            Ok(S::DetailsDisputed)
        );
        assert!(transition(S::DetailsDisputed, Event::SubmitReceipt).is_err());
    }

    #[test]
    fn every_lapse_agrees_with_the_transition_table() {
        for s in ALL_STATUSES {
            match lapse(s) {
                None => assert!(s.is_terminal()),
                Some(Lapse::Settle { to, .. }) => assert_eq!(transition(s, Event::Lapse), Ok(to)),
                Some(Lapse::ExpireUnfunded) => {
                    assert_eq!(transition(s, Event::Lapse), Ok(OfferStatus::Expired))
                }
                Some(Lapse::CounterBySilence) => {
                    assert_eq!(transition(s, Event::Lapse), Ok(s))
                }
            }
        }
    }

    #[test]
    fn only_invoice_paid_is_public() {
        let public: Vec<_> = ALL_STATUSES.into_iter().filter(|s| s.is_public()).collect();
        assert_eq!(public, vec![OfferStatus::InvoicePaid]);
    }
}
