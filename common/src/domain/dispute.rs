//! Disputes (DESIGN.md section 3): why a maker marks an issue, how far a dispute got, how it
//! ended and who won, and the pubkey reveal a party signs to raise one. Pure.

use cdk_common::bitcoin::hashes::{sha256, Hash};
use uuid::Uuid;

use super::money::Outcome;
use super::role::Role;
use super::text_enum::text_enum;

text_enum! {
    /// Why the maker marks an issue.
    pub enum IssueReason {
        /// The fiat never arrived.
        NotReceived => "not_received",
        /// The fiat arrived, but not the agreed amount.
        WrongAmount => "wrong_amount",
        /// Anything else (the message says what).
        Other => "other",
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
        Outcome::TakerWins => Some(Role::Taker),
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
