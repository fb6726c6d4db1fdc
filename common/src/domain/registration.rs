//! The signed registration message and its checks (DESIGN.md section 2).
//!
//! A client registers once with `{payload:{inviteCode,pubkey}, nonce, timestamp, signature}`.
//! The signature is BIP-340 Schnorr by `pubkey` over
//! `SHA-256(nonce ‖ timestamp ‖ JSON(payload with keys sorted))`, timestamp in milliseconds as
//! decimal text. Everything here is pure: the caller supplies the clock.

use cdk_common::bitcoin::hashes::{sha256, Hash};
use cdk_common::bitcoin::secp256k1::{schnorr, Message};
use serde_json::Value;

use super::keys::XOnlyKey;

/// How far a registration's timestamp may be from our clock, either way.
pub const TIMESTAMP_WINDOW_MS: i64 = 60_000;

/// Why a registration was refused before touching the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// The timestamp is more than the window in the past.
    #[error("timestamp is more than 60 seconds old")]
    StaleTimestamp,
    /// The timestamp is more than the window in the future.
    #[error("timestamp is more than 60 seconds in the future")]
    FutureTimestamp,
    /// The signature is not 64 bytes of hex.
    #[error("signature must be 128 hex characters")]
    MalformedSignature,
    /// The signature does not verify.
    #[error("signature does not verify for this pubkey and message")]
    InvalidSignature,
    /// The nonce is not 16-128 characters of printable ASCII.
    #[error("nonce must be 16 to 128 printable ASCII characters")]
    MalformedNonce,
}

/// Canonical JSON: object keys sorted at every level, no insignificant whitespace.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String(k.clone()),
                        canonical_json(&map[k.as_str()])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// The bytes that are hashed and signed.
pub fn signed_message(nonce: &str, timestamp_ms: i64, payload: &Value) -> Vec<u8> {
    format!("{nonce}{timestamp_ms}{}", canonical_json(payload)).into_bytes()
}

/// SHA-256 of the signed message: what the BIP-340 signature commits to.
pub fn message_digest(nonce: &str, timestamp_ms: i64, payload: &Value) -> [u8; 32] {
    sha256::Hash::hash(&signed_message(nonce, timestamp_ms, payload)).to_byte_array()
}

/// Checks the timestamp against `now_ms`.
pub fn check_timestamp(timestamp_ms: i64, now_ms: i64) -> Result<(), RegistrationError> {
    let skew = timestamp_ms.saturating_sub(now_ms);
    if skew > TIMESTAMP_WINDOW_MS {
        return Err(RegistrationError::FutureTimestamp);
    }
    if skew < -TIMESTAMP_WINDOW_MS {
        return Err(RegistrationError::StaleTimestamp);
    }
    Ok(())
}

/// Checks the nonce's shape.
pub fn check_nonce(nonce: &str) -> Result<(), RegistrationError> {
    let ok = (16..=128).contains(&nonce.len()) && nonce.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(RegistrationError::MalformedNonce)
    }
}

/// Verifies a hex BIP-340 signature over `digest` by `pubkey`.
pub fn verify_signature(
    pubkey: &XOnlyKey,
    digest: [u8; 32],
    signature_hex: &str,
) -> Result<(), RegistrationError> {
    let bytes = decode_hex::<64>(signature_hex).ok_or(RegistrationError::MalformedSignature)?;
    let sig = schnorr::Signature::from_slice(&bytes)
        .map_err(|_| RegistrationError::MalformedSignature)?;
    cdk::SECP256K1
        .verify_schnorr(&sig, &Message::from_digest(digest), &pubkey.x_only())
        .map_err(|_| RegistrationError::InvalidSignature)
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let hex = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use cdk_common::bitcoin::secp256k1::{Keypair, Secp256k1, SecretKey};
    use serde_json::json;

    use super::*;

    fn keypair() -> (Keypair, XOnlyKey) {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(&[7u8; 32]).expect("secret key");
        let kp = Keypair::from_secret_key(&secp, &sk);
        let key = kp
            .x_only_public_key()
            .0
            .to_string()
            .parse()
            .expect("x-only");
        (kp, key)
    }

    fn sign(kp: &Keypair, digest: [u8; 32]) -> String {
        let secp = Secp256k1::new();
        let sig = secp.sign_schnorr_no_aux_rand(&Message::from_digest(digest), kp);
        sig.to_string()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"pubkey": "ab", "inviteCode": "x", "nested": {"b": 1, "a": [true, null]}});
        assert_eq!(
            canonical_json(&v),
            r#"{"inviteCode":"x","nested":{"a":[true,null],"b":1},"pubkey":"ab"}"#
        );
    }

    #[test]
    fn message_is_nonce_then_timestamp_then_sorted_payload() {
        let payload = json!({"pubkey": "ab", "inviteCode": "code"});
        assert_eq!(
            signed_message("n0nce", 1_700_000_000_000, &payload),
            br#"n0nce1700000000000{"inviteCode":"code","pubkey":"ab"}"#.to_vec()
        );
    }

    #[test]
    fn a_valid_signature_verifies_and_a_changed_message_does_not() {
        let (kp, key) = keypair();
        let payload = json!({"inviteCode": "code", "pubkey": key.to_string()});
        let digest = message_digest("nonce-0123456789", 1_000, &payload);
        let sig = sign(&kp, digest);
        assert_eq!(verify_signature(&key, digest, &sig), Ok(()));
        let other = message_digest("nonce-0123456789", 1_001, &payload);
        assert_eq!(
            verify_signature(&key, other, &sig),
            Err(RegistrationError::InvalidSignature)
        );
        assert_eq!(
            verify_signature(&key, digest, "abcd"),
            Err(RegistrationError::MalformedSignature)
        );
    }

    #[test]
    fn timestamps_outside_sixty_seconds_are_refused_both_ways() {
        let now = 10_000_000;
        assert_eq!(check_timestamp(now, now), Ok(()));
        assert_eq!(check_timestamp(now - 60_000, now), Ok(()));
        assert_eq!(check_timestamp(now + 60_000, now), Ok(()));
        assert_eq!(
            check_timestamp(now - 60_001, now),
            Err(RegistrationError::StaleTimestamp)
        );
        assert_eq!(
            check_timestamp(now + 60_001, now),
            Err(RegistrationError::FutureTimestamp)
        );
    }

    #[test]
    fn nonces_have_a_shape() {
        assert_eq!(check_nonce("0123456789abcdef"), Ok(()));
        assert_eq!(check_nonce("short"), Err(RegistrationError::MalformedNonce));
        assert_eq!(
            check_nonce("has space 0123456789"),
            Err(RegistrationError::MalformedNonce)
        );
    }
}
