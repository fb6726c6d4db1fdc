//! The pure domain: no I/O, no async. State machine rules, money math, parsed keys.

pub mod text_enum;

pub mod claim;
pub mod dispute;
pub mod image;
pub mod keys;
pub mod money;
pub mod notify;
pub mod offer;
pub mod payout;
pub mod registration;
pub mod reputation;
pub mod role;

use cdk_common::bitcoin::hashes::{sha256, Hash};

/// Constant-time equality of two secrets: both are hashed first, so not even their lengths leak
/// through timing.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let ha = sha256::Hash::hash(a.as_bytes()).to_byte_array();
    let hb = sha256::Hash::hash(b.as_bytes()).to_byte_array();
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
        assert!(!secrets_equal("", "a"));
    }
}
