//! Payouts and the ecash quotes that fund offers: why a payout is owed, where it is in its life,
//! what a watched quote pays for and how far it got. Pure values; the repositories decode them.

use super::money::Party;
use super::text_enum::text_enum;

text_enum! {
    /// Why a payout is owed.
    pub enum PayoutPurpose {
        /// The money table's split when a trade ends in a taker, dispute or completion.
        Settlement => "settlement",
        /// The maker's deposit back (cancelled or expired before a bond was paid).
        Refund => "refund",
        /// A payment that arrived after its offer moved on, or for the wrong amount.
        LateRefund => "late_refund",
        /// Idle sats of an ended session sent back to its last payout key.
        Sweep => "sweep",
    }
}

text_enum! {
    /// Where a payout is.
    pub enum PayoutState {
        /// Owed; nothing moved yet.
        Recorded => "RECORDED",
        /// Its token was made and stored.
        Released => "RELEASED",
        /// The platform's share, moved on into the treasury wallet.
        Swept => "SWEPT",
        /// The platform's share, found spent at the mint by someone other than the treasury
        /// (its key leaked, or an old unlocked token read out of the database): an incident.
        SpentElsewhere => "SPENT_ELSEWHERE",
    }
}

impl PayoutState {
    /// Whether the owner can collect it (a swept platform payout counts as released).
    pub fn is_released(self) -> bool {
        self != Self::Recorded
    }
}

text_enum! {
    /// What a watched mint quote pays for.
    pub enum QuotePurpose {
        /// The maker's deposit D.
        Deposit => "deposit",
        /// The taker's bond TB.
        Bond => "bond",
    }
}

impl QuotePurpose {
    /// Who paid it, and so who gets a late payment back.
    pub fn payer(self) -> Party {
        match self {
            Self::Deposit => Party::Maker,
            Self::Bond => Party::Taker,
        }
    }
}

text_enum! {
    /// Where a watched mint quote is.
    pub enum QuoteState {
        /// Waiting for payment.
        Unpaid => "UNPAID",
        /// Paid at the mint; not yet minted into the wallet.
        Paid => "PAID",
        /// Minted into its wallet.
        Issued => "ISSUED",
        /// Never paid, and past the mint's expiry.
        Expired => "EXPIRED",
        /// Its wallet was gone when the watcher looked: nobody can mint it any more, so the
        /// watcher stopped and the alerts report it (a payment would be stranded at the mint).
        Orphaned => "ORPHANED",
    }
}

impl QuoteState {
    /// No more watching needed.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Issued | Self::Expired | Self::Orphaned)
    }
}

text_enum! {
    /// How a maker's deposit arrived.
    pub enum FundedBy {
        /// The deposit invoice was paid.
        Lightning => "lightning",
        /// A Cashu token was sent to `POST /offers/{id}/fund`.
        Token => "token",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recorded_payouts_are_unreleased() {
        assert!(!PayoutState::Recorded.is_released());
        assert!(PayoutState::Released.is_released());
        assert!(PayoutState::Swept.is_released());
        assert!(PayoutState::SpentElsewhere.is_released());
    }

    #[test]
    fn a_late_payment_goes_back_to_whoever_paid_it() {
        assert_eq!(QuotePurpose::Deposit.payer(), Party::Maker);
        assert_eq!(QuotePurpose::Bond.payer(), Party::Taker);
    }

    #[test]
    fn issued_and_expired_quotes_are_final() {
        let finals: Vec<_> = QuoteState::ALL.iter().filter(|s| s.is_final()).collect();
        assert_eq!(
            finals,
            vec![
                &QuoteState::Issued,
                &QuoteState::Expired,
                &QuoteState::Orphaned
            ]
        );
    }
}
