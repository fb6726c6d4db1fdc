//! The two sides of a trade.

use super::money::Party;
use super::text_enum::text_enum;

text_enum! {
    /// A party of a trade.
    pub enum Role {
        /// Made the offer and pays the fiat's worth in sats.
        Maker => "maker",
        /// Claimed it, pays the fiat, earns the sats.
        Taker => "taker",
    }
}

impl Role {
    /// The payout party this role is paid as.
    pub fn party(self) -> Party {
        match self {
            Self::Maker => Party::Maker,
            Self::Taker => Party::Taker,
        }
    }

    /// The other side.
    pub fn other(self) -> Self {
        match self {
            Self::Maker => Self::Taker,
            Self::Taker => Self::Maker,
        }
    }
}
