//! The platform's keys, split by who may hold them.
//!
//! The internet-facing api holds only public keys ([`PlatformKeys`]): the extended public key
//! its quotes' NUT-20 locks derive from, the key funding tokens are sealed to, and the key the
//! platform's fees are locked to. Nothing it holds can sign a quote, open a sealed token or
//! spend ecash. The workers hold [`WorkerKeys`], derived from `WALLET_MASTER_SECRET`, which
//! the api never reads; `openpleb-worker public-keys` prints what the api is to be given.
//!
//! Each key has its own derivation, so one leaked key opens nothing else: the quote locks are
//! a hardened BIP-32 branch (the api's extended public key plus one leaked quote key yields
//! that branch's private key, and only that branch's; see [`lock`]), the sealing key and the
//! session wallets' seeds are HMACs of the master secret under labels of their own.
//!
//! Trade data (payment details, receipts, evidence, dispute messages) is sealed at rest with
//! [`data::DataKeys`] (`DATA_SECRETS`), which the api and the workers both hold: it opens what
//! people uploaded and wrote, never ecash.

pub mod data;
pub mod lock;
pub mod seal;

use std::fmt;
use std::str::FromStr;

use cdk::nuts::{PublicKey, SecretKey};
use cdk_common::bitcoin::bip32::{Xpriv, Xpub};
use cdk_common::bitcoin::hashes::{hmac, sha256, sha512, Hash, HashEngine};

use crate::domain::keys::XOnlyKey;

pub use lock::LockPath;

/// A key that could not be read or derived.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The extended public key is not a BIP-32 `xpub`.
    #[error("not an extended public key (xpub…)")]
    Xpub,
    /// A public key is not 33 bytes of compressed secp256k1 point in hex.
    #[error("not a compressed public key (66 hex characters)")]
    PublicKey,
    /// Derivation failed (practically unreachable: an invalid child index or tweak).
    #[error("key derivation: {0}")]
    Derive(String),
    /// A sealed message could not be opened: wrong key, altered, or not ours.
    #[error("the sealed message does not open with this key")]
    Unseal,
}

/// What the api holds: public keys only.
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformKeys {
    /// The quote locks' branch (`QUOTE_LOCK_XPUB`).
    pub quote_locks: Xpub,
    /// What funding tokens are sealed to (`TOKEN_SEAL_PUBKEY`).
    pub token_seal: PublicKey,
    /// What the platform's fees are P2PK-locked to (`TREASURY_PUBKEY`).
    pub treasury: XOnlyKey,
}

impl fmt::Debug for PlatformKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformKeys")
            .field("quote_locks", &self.quote_locks.to_string())
            .field("token_seal", &self.token_seal.to_hex())
            .field("treasury", &self.treasury.to_string())
            .finish()
    }
}

impl PlatformKeys {
    /// Reads the three public keys as the environment gives them.
    pub fn parse(xpub: &str, seal: &str, treasury: &str) -> Result<Self, (&'static str, KeyError)> {
        Ok(Self {
            quote_locks: Xpub::from_str(xpub.trim())
                .map_err(|_| ("QUOTE_LOCK_XPUB", KeyError::Xpub))?,
            token_seal: PublicKey::from_hex(seal.trim())
                .map_err(|_| ("TOKEN_SEAL_PUBKEY", KeyError::PublicKey))?,
            treasury: XOnlyKey::from_str(treasury.trim())
                .map_err(|_| ("TREASURY_PUBKEY", KeyError::PublicKey))?,
        })
    }

    /// The lines to put in the api's environment.
    pub fn env_lines(&self) -> String {
        format!(
            "QUOTE_LOCK_XPUB={}\nTOKEN_SEAL_PUBKEY={}\nTREASURY_PUBKEY={}\n",
            self.quote_locks,
            self.token_seal.to_hex(),
            self.treasury
        )
    }
}

/// What the workers hold, derived from the master secret (and the treasury's own secret).
#[derive(Clone)]
pub struct WorkerKeys {
    quote_locks: Xpriv,
    token_seal: SecretKey,
    /// The public side, as the api is to be given it.
    pub public: PlatformKeys,
}

impl fmt::Debug for WorkerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerKeys")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

fn hmac512(key: &[u8], label: &[u8]) -> [u8; 64] {
    let mut engine = hmac::HmacEngine::<sha512::Hash>::new(key);
    engine.input(label);
    hmac::Hmac::<sha512::Hash>::from_engine(engine).to_byte_array()
}

fn hmac256(key: &[u8], label: &[u8]) -> [u8; 32] {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(key);
    engine.input(label);
    hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array()
}

impl WorkerKeys {
    /// Derives the workers' keys from the master secret; `treasury` is the x-only key the
    /// platform's fees lock to (the treasury's own secret is not derived from this one).
    pub fn derive(master_secret: &[u8], treasury: XOnlyKey) -> Result<Self, KeyError> {
        let quote_locks = lock::branch(&hmac512(master_secret, b"openpleb/quote-locks/v1"))?;
        let token_seal = SecretKey::from_slice(&hmac256(master_secret, b"openpleb/token-seal/v1"))
            .map_err(|e| KeyError::Derive(e.to_string()))?;
        let public = PlatformKeys {
            quote_locks: lock::public_branch(&quote_locks),
            token_seal: token_seal.public_key(),
            treasury,
        };
        Ok(Self {
            quote_locks,
            token_seal,
            public,
        })
    }

    /// The secret key of the quote lock at `path`.
    pub fn quote_key(&self, path: LockPath) -> Result<SecretKey, KeyError> {
        lock::private_at(&self.quote_locks, path)
    }

    /// Opens a message sealed to the workers' sealing key.
    pub fn unseal(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        seal::open(&self.token_seal, context, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn treasury() -> XOnlyKey {
        let sk = SecretKey::from_slice(&[7; 32]).expect("key");
        XOnlyKey::from_str(&sk.public_key().x_only_public_key().to_string()).expect("x-only")
    }

    #[test]
    fn the_public_keys_round_trip_through_the_environment() {
        let keys = WorkerKeys::derive(&[1; 32], treasury()).expect("derive");
        let lines = keys.public.env_lines();
        let get = |name: &str| {
            lines
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .expect(name)
                .to_owned()
        };
        let parsed = PlatformKeys::parse(
            &get("QUOTE_LOCK_XPUB"),
            &get("TOKEN_SEAL_PUBKEY"),
            &get("TREASURY_PUBKEY"),
        )
        .expect("parse");
        assert_eq!(parsed, keys.public);
    }

    #[test]
    fn each_master_secret_has_its_own_keys() {
        let a = WorkerKeys::derive(&[1; 32], treasury()).expect("a");
        let b = WorkerKeys::derive(&[2; 32], treasury()).expect("b");
        assert_ne!(a.public.quote_locks, b.public.quote_locks);
        assert_ne!(a.public.token_seal, b.public.token_seal);
    }

    #[test]
    fn bad_public_keys_name_their_variable() {
        let k = WorkerKeys::derive(&[1; 32], treasury())
            .expect("derive")
            .public;
        let (seal, tr) = (k.token_seal.to_hex(), k.treasury.to_string());
        assert_eq!(
            PlatformKeys::parse("xpubnonsense", &seal, &tr).map(|_| ()),
            Err(("QUOTE_LOCK_XPUB", KeyError::Xpub))
        );
        let xpub = k.quote_locks.to_string();
        assert_eq!(
            PlatformKeys::parse(&xpub, "02ab", &tr).map(|_| ()),
            Err(("TOKEN_SEAL_PUBKEY", KeyError::PublicKey))
        );
    }
}
