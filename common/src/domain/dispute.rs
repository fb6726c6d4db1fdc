//! Disputes: why a party raises an issue (the maker about the receipt, the taker about the
//! payment details), how far a dispute got, how it ended and who won, and the pubkey reveal a
//! party signs to raise one. Pure.

use cdk_common::bitcoin::hashes::{sha256, Hash};
use uuid::Uuid;

use super::money::Outcome;
use super::role::Role;
use super::text_enum::text_enum;

text_enum! {
    /// Why an issue was raised.
    pub enum IssueReason {
        /// The fiat never arrived (maker).
        NotReceived => "not_received",
        /// The fiat arrived, but not the agreed amount (maker).
        WrongAmount => "wrong_amount",
        /// Anything else (the message says what).
        Other => "other",
        /// The payment details do not work: a closed account, a wrong QR (taker).
        DetailsNotWorking => "details_not_working",
    }
}

text_enum! {
    /// What a dispute is about.
    pub enum DisputeKind {
        /// The maker marked an issue with the receipt (RECEIPT_SUBMITTED → MARKED_WITH_ISSUE).
        Receipt => "receipt",
        /// The taker reported that the payment details do not work (TAKER_BOND_PAID →
        /// DETAILS_DISPUTED).
        PaymentDetails => "payment_details",
    }
}

impl DisputeKind {
    /// Whether an admin may settle a dispute of this kind with `resolution`: a receipt dispute
    /// is about fiat that may have moved (any of the four original resolutions); a details
    /// dispute is about fiat that could not move, so nobody is owed the escrow (MAKER_WINS: the
    /// report was false; RETURN: nobody at fault; BAD_DETAILS: the details were at fault).
    pub fn allows(self, resolution: Resolution) -> bool {
        match self {
            Self::Receipt => resolution != Resolution::BadDetails,
            Self::PaymentDetails => matches!(
                resolution,
                Resolution::MakerWins | Resolution::Return | Resolution::BadDetails
            ),
        }
    }
}

text_enum! {
    /// Whose move a dispute waits for.
    pub enum DisputeStage {
        /// The maker marked an issue; the taker forfeits or disputes.
        WaitingTaker => "waiting_taker",
        /// The taker disputes; the maker forfeits or counters.
        WaitingMaker => "waiting_maker",
        /// Countered (or maker silence): an admin decides.
        WaitingAdmin => "waiting_admin",
        /// Settled.
        Resolved => "resolved",
    }
}

text_enum! {
    /// How an admin settles a dispute.
    pub enum Resolution {
        /// The maker was right: D + TB to the maker.
        MakerWins => "MAKER_WINS",
        /// The taker was right: S + TF + TB + MB to the taker.
        TakerWins => "TAKER_WINS",
        /// Nobody at fault: everyone gets their own back.
        Return => "RETURN",
        /// Both share the pot (the taker gets the odd sat).
        Split => "SPLIT",
        /// The maker's payment details did not work: the maker's bond goes to the taker.
        BadDetails => "BAD_DETAILS",
    }
}

impl Resolution {
    /// The money table's row.
    pub fn outcome(self) -> Outcome {
        match self {
            Self::MakerWins => Outcome::MakerWins,
            Self::TakerWins => Outcome::TakerWins,
            Self::Return => Outcome::Return,
            Self::Split => Outcome::Split,
            Self::BadDetails => Outcome::BadDetails,
        }
    }
}

text_enum! {
    /// What ended a dispute.
    pub enum ResolvedBy {
        /// The taker gave up after the issue.
        TakerForfeit => "taker_forfeit",
        /// The taker did not answer the issue in time.
        TakerSilence => "taker_silence",
        /// The maker gave up the dispute.
        MakerForfeit => "maker_forfeit",
        /// An admin decided.
        Admin => "admin",
    }
}

text_enum! {
    /// Who wrote a dispute message.
    pub enum Author {
        /// The maker.
        Maker => "maker",
        /// The taker.
        Taker => "taker",
        /// The resolving admin.
        Admin => "admin",
    }
}

text_enum! {
    /// Which move a dispute message came with.
    pub enum MessageKind {
        /// The maker marked the issue.
        Issue => "issue",
        /// The taker disputed it.
        Dispute => "dispute",
        /// The maker countered.
        Counter => "counter",
        /// An admin resolved it.
        Resolution => "resolution",
        /// The taker reported the payment details.
        Details => "details",
    }
}

/// Longest dispute message (and admin note), in characters.
pub const MESSAGE_MAX_CHARS: usize = 2000;

/// What a party signs to reveal its registered key for `offer` as `role`:
/// `"openpleb-dispute:" ‖ offer id ‖ ":" ‖ role ‖ ":" ‖ timestamp`.
pub fn reveal_message(offer: Uuid, role: Role, timestamp_ms: i64) -> String {
    format!("openpleb-dispute:{offer}:{}:{timestamp_ms}", role.as_str())
}

/// SHA-256 of [`reveal_message`]: what the BIP-340 signature commits to.
pub fn reveal_digest(offer: Uuid, role: Role, timestamp_ms: i64) -> [u8; 32] {
    sha256::Hash::hash(reveal_message(offer, role, timestamp_ms).as_bytes()).to_byte_array()
}

/// What a registered key signs to read its own dispute statistics:
/// `"openpleb-stats:" ‖ pubkey ‖ ":" ‖ timestamp`, hashed with SHA-256.
pub fn stats_digest(pubkey: &str, timestamp_ms: i64) -> [u8; 32] {
    sha256::Hash::hash(format!("openpleb-stats:{pubkey}:{timestamp_ms}").as_bytes()).to_byte_array()
}

/// The winner of a dispute that ended with `outcome`, if one side won.
pub fn winner(outcome: Outcome) -> Option<Role> {
    match outcome {
        Outcome::MakerWins => Some(Role::Maker),
        Outcome::TakerWins | Outcome::BadDetails => Some(Role::Taker),
        Outcome::Completed | Outcome::RefundMaker | Outcome::Return | Outcome::Split => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions_map_to_the_money_table() {
        assert_eq!(Resolution::MakerWins.outcome(), Outcome::MakerWins);
        assert_eq!(Resolution::TakerWins.outcome(), Outcome::TakerWins);
        assert_eq!(Resolution::Return.outcome(), Outcome::Return);
        assert_eq!(Resolution::Split.outcome(), Outcome::Split);
    }

    #[test]
    fn a_details_dispute_cannot_award_the_escrow() {
        use DisputeKind as K;
        assert!(K::PaymentDetails.allows(Resolution::BadDetails));
        assert!(K::PaymentDetails.allows(Resolution::MakerWins));
        assert!(!K::PaymentDetails.allows(Resolution::TakerWins));
        assert!(!K::PaymentDetails.allows(Resolution::Split));
        assert!(!K::Receipt.allows(Resolution::BadDetails));
        assert!(K::Receipt.allows(Resolution::Split));
    }

    #[test]
    fn only_a_side_that_won_is_a_winner() {
        assert_eq!(winner(Outcome::MakerWins), Some(Role::Maker));
        assert_eq!(winner(Outcome::TakerWins), Some(Role::Taker));
        assert_eq!(winner(Outcome::Split), None);
        assert_eq!(winner(Outcome::Return), None);
    }

    #[test]
    fn the_reveal_message_names_offer_side_and_time() {
        let id = Uuid::nil();
        assert_eq!(
            reveal_message(id, Role::Taker, 1_700_000_000_000),
            format!("openpleb-dispute:{id}:taker:1700000000000")
        );
    }
}
