//! Sealing a message to the workers' public key: ECIES over secp256k1 (an ephemeral key's
//! ECDH with the recipient, HKDF-SHA256, AES-256-GCM), from crates already in the build
//! (RustCrypto's `aes-gcm` and `hkdf`, the `secp256k1` cdk uses).
//!
//! The api seals a funding token as soon as it has checked it, and keeps no key that opens it:
//! PostgreSQL holds only the sealed bytes until a worker has received the token, and a dump
//! or a compromised api cannot spend it. A context (the funding intent's id) is bound in as
//! associated data, so a sealed token cannot be replayed under another intent.
//!
//! Layout: version byte `1` ‖ ephemeral public key (33) ‖ nonce (12) ‖ ciphertext and tag.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use cdk::nuts::{PublicKey, SecretKey};
use cdk_common::bitcoin::secp256k1::ecdh::SharedSecret;
use hkdf::Hkdf;
use sha2::Sha256;

use super::KeyError;

const VERSION: u8 = 1;
const HEADER: usize = 1 + 33 + 12;

fn cipher(
    shared: &SharedSecret,
    ephemeral: &PublicKey,
    recipient: &PublicKey,
) -> Result<Aes256Gcm, KeyError> {
    let mut salt = Vec::with_capacity(66);
    salt.extend_from_slice(&ephemeral.to_bytes());
    salt.extend_from_slice(&recipient.to_bytes());
    let hk = Hkdf::<Sha256>::new(Some(&salt), &shared.secret_bytes());
    let mut key = [0u8; 32];
    hk.expand(b"openpleb/seal/v1", &mut key)
        .map_err(|e| KeyError::Derive(e.to_string()))?;
    Aes256Gcm::new_from_slice(&key).map_err(|e| KeyError::Derive(e.to_string()))
}

/// Seals `message` to `recipient`, bound to `context`.
pub fn seal(recipient: &PublicKey, context: &[u8], message: &[u8]) -> Result<Vec<u8>, KeyError> {
    let ephemeral = SecretKey::generate();
    let ephemeral_pub = ephemeral.public_key();
    let shared = SharedSecret::new(recipient, &ephemeral);
    let nonce_bytes: [u8; 12] = {
        let r = uuid::Uuid::new_v4().into_bytes();
        let mut n = [0u8; 12];
        n.copy_from_slice(&r[..12]);
        n
    };
    let sealed = cipher(&shared, &ephemeral_pub, recipient)?
        .encrypt(
            &Nonce::from(nonce_bytes),
            Payload {
                msg: message,
                aad: context,
            },
        )
        .map_err(|_| KeyError::Derive("seal".to_owned()))?;
    let mut out = Vec::with_capacity(HEADER + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&ephemeral_pub.to_bytes());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens what [`seal`] made for `secret`'s public key with the same `context`.
pub fn open(secret: &SecretKey, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
    if sealed.len() < HEADER + 16 || sealed[0] != VERSION {
        return Err(KeyError::Unseal);
    }
    let ephemeral = PublicKey::from_slice(&sealed[1..34]).map_err(|_| KeyError::Unseal)?;
    let shared = SharedSecret::new(&ephemeral, secret);
    let nonce: [u8; 12] = sealed[34..HEADER]
        .try_into()
        .map_err(|_| KeyError::Unseal)?;
    cipher(&shared, &ephemeral, &secret.public_key())?
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &sealed[HEADER..],
                aad: context,
            },
        )
        .map_err(|_| KeyError::Unseal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_opens_it_and_only_in_its_context() {
        let worker = SecretKey::generate();
        let sealed = seal(&worker.public_key(), b"intent-1", b"cashuBtoken").expect("seal");
        assert!(
            !sealed.windows(11).any(|w| w == b"cashuBtoken"),
            "no plaintext"
        );
        assert_eq!(
            open(&worker, b"intent-1", &sealed).expect("open"),
            b"cashuBtoken"
        );
        assert_eq!(open(&worker, b"intent-2", &sealed), Err(KeyError::Unseal));
        assert_eq!(
            open(&SecretKey::generate(), b"intent-1", &sealed),
            Err(KeyError::Unseal)
        );
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(open(&worker, b"intent-1", &altered), Err(KeyError::Unseal));
        assert_eq!(
            open(&worker, b"intent-1", &sealed[..20]),
            Err(KeyError::Unseal)
        );
    }

    #[test]
    fn two_seals_of_one_message_differ() {
        let worker = SecretKey::generate().public_key();
        assert_ne!(
            seal(&worker, b"c", b"m").expect("a"),
            seal(&worker, b"c", b"m").expect("b")
        );
    }
}
