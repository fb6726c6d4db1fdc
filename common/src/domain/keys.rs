//! Parsed public keys: BIP-340 x-only keys as the API takes them, and their NUT-11 form.

use std::fmt;
use std::str::FromStr;

use cdk::nuts::PublicKey;
use cdk_common::bitcoin::secp256k1::XOnlyPublicKey;

/// A 32-byte BIP-340 x-only public key, written as 64 lowercase hex characters.
///
/// Held as its even-parity point `02 ‖ x`: NUT-11 compares x-only keys, so that point locks
/// ecash to whoever holds the BIP-340 secret key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XOnlyKey(PublicKey);

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not 64 hex characters.
    #[error("expected 64 hex characters")]
    Malformed,
    /// Hex, but not a point on the curve.
    #[error("not a valid secp256k1 x-only public key")]
    NotOnCurve,
}

impl FromStr for XOnlyKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::Malformed);
        }
        let mut bytes = [0u8; 32];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| KeyError::Malformed)?;
            bytes[i] = u8::from_str_radix(hex, 16).map_err(|_| KeyError::Malformed)?;
        }
        let mut compressed = [0u8; 33];
        compressed[0] = 0x02;
        compressed[1..].copy_from_slice(&bytes);
        PublicKey::from_slice(&compressed)
            .map(Self)
            .map_err(|_| KeyError::NotOnCurve)
    }
}

impl fmt::Display for XOnlyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.x_only_public_key())
    }
}

impl XOnlyKey {
    /// The BIP-340 key.
    pub fn x_only(&self) -> XOnlyPublicKey {
        self.0.x_only_public_key()
    }

    /// The key to lock NUT-11 (P2PK) ecash to.
    pub fn to_lock_key(&self) -> PublicKey {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use cdk::nuts::SecretKey;

    use super::*;

    #[test]
    fn parses_and_lifts_to_the_same_x() {
        let sk = SecretKey::generate();
        let x = sk.public_key().x_only_public_key();
        let key: XOnlyKey = x.to_string().parse().expect("valid key");
        assert_eq!(key.to_string(), x.to_string());
        assert_eq!(key.to_lock_key().x_only_public_key(), x);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!("zz".parse::<XOnlyKey>(), Err(KeyError::Malformed));
        assert_eq!("g".repeat(64).parse::<XOnlyKey>(), Err(KeyError::Malformed));
        // x = p (field size) is not on the curve.
        let p = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f";
        assert_eq!(p.parse::<XOnlyKey>(), Err(KeyError::NotOnCurve));
    }
}
