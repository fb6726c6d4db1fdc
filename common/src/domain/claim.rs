//! Claims: a taker's bid for a listed offer, waiting for its bond. A claim costs nothing until
//! its bond is paid, so it must not take the offer out of the book; any number of takers may
//! hold one at once (within limits), and the first bond minted wins the offer. Pure.

use super::text_enum::text_enum;

text_enum! {
    /// Where a claim is.
    pub enum ClaimStatus {
        /// Its bond invoice is out; the offer stays listed.
        Pending => "PENDING",
        /// Its bond was minted first: its taker is the offer's taker.
        Won => "WON",
        /// Its timer ran out with the bond unpaid (the mint was asked first).
        Lapsed => "LAPSED",
        /// The offer left the book before its bond arrived (another bond won, or the maker
        /// cancelled, or the listing expired); a bond paid for it is refunded.
        Lost => "LOST",
    }
}

impl ClaimStatus {
    /// No further moves.
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pending_claim_moves() {
        for s in ClaimStatus::ALL {
            assert_eq!(s.is_final(), *s != ClaimStatus::Pending, "{s}");
            assert_eq!(s.as_str().parse::<ClaimStatus>(), Ok(*s));
        }
    }
}
