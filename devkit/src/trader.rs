//! A test trader: a BIP-340 key that signs registrations the way a real client does.

use cdk_common::bitcoin::secp256k1::{Keypair, Message, Secp256k1, SecretKey};
use openpleb_common::domain::registration::message_digest;
use serde_json::{json, Value};

/// A trader's identity key.
#[derive(Debug, Clone)]
pub struct Trader {
    keypair: Keypair,
}

impl Default for Trader {
    fn default() -> Self {
        Self::new()
    }
}

impl Trader {
    /// A fresh random key.
    pub fn new() -> Self {
        let secp = Secp256k1::new();
        let sk = SecretKey::from_slice(uuid_bytes().as_slice()).unwrap_or_else(|_| {
            SecretKey::from_slice(&[1u8; 32]).unwrap_or_else(|_| unreachable!())
        });
        Self {
            keypair: Keypair::from_secret_key(&secp, &sk),
        }
    }

    /// The trader whose secret key is `hex` (64 hex characters), as [`Self::secret_hex`] prints.
    pub fn from_secret_hex(hex: &str) -> anyhow::Result<Self> {
        let sk: SecretKey = hex.parse()?;
        Ok(Self {
            keypair: Keypair::from_secret_key(&Secp256k1::new(), &sk),
        })
    }

    /// The secret key as hex (dev tooling only: never for a real user's key).
    pub fn secret_hex(&self) -> String {
        self.keypair.secret_key().display_secret().to_string()
    }

    /// The x-only pubkey as lowercase hex.
    pub fn pubkey(&self) -> String {
        self.keypair.x_only_public_key().0.to_string()
    }

    /// The secret key (for signing elsewhere, e.g. the dev OIDC login).
    pub fn secret_key(&self) -> SecretKey {
        self.keypair.secret_key()
    }

    /// Signs a 32-byte digest (BIP-340), as hex.
    pub fn sign_digest(&self, digest: [u8; 32]) -> String {
        Secp256k1::new()
            .sign_schnorr_no_aux_rand(&Message::from_digest(digest), &self.keypair)
            .to_string()
    }

    /// A complete registration body for `invite`, signed now with a fresh nonce.
    pub fn registration(&self, invite: &str) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.registration_at(invite, &fresh_nonce(), now)
    }

    /// A registration body with a chosen nonce and timestamp (ms).
    pub fn registration_at(&self, invite: &str, nonce: &str, timestamp_ms: i64) -> Value {
        let payload = json!({"inviteCode": invite, "pubkey": self.pubkey()});
        let signature = self.sign_digest(message_digest(nonce, timestamp_ms, &payload));
        json!({"payload": payload, "nonce": nonce, "timestamp": timestamp_ms, "signature": signature})
    }
}

/// A random nonce of 32 hex characters.
pub fn fresh_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn uuid_bytes() -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    b.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    b
}
