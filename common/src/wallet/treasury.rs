//! The platform treasury's key, and what the sweep asks the treasury wallet.
//!
//! The platform's share of a trade leaves the session wallet as a token P2PK-locked to the
//! treasury key and is stored in `payouts.token` until the sweep receives it into the treasury
//! wallet. Locked, that stored token is worth nothing to anyone who reads PostgreSQL (a leaked
//! backup, an injected query): redeeming it takes the key's secret, which is never stored
//! there. The key is `TREASURY_PUBKEY`, whose secret `TREASURY_SECRET` is given only to the
//! workers that sweep; without them, a key derived from `WALLET_MASTER_SECRET` (which every
//! process holding wallet files already has, and PostgreSQL never sees).

use std::str::FromStr;

use cdk::dhke::hash_to_curve;
use cdk::nuts::{PublicKey, SecretKey, Token};
use cdk::wallet::types::{TransactionDirection, TransactionStatus};
use cdk_common::bitcoin::hashes::{hmac, sha512, Hash, HashEngine};

use super::error::WalletError;
use super::layout::WalletId;
use super::manager::WalletManager;
use crate::config::Config;
use crate::domain::keys::XOnlyKey;

/// The key platform payouts lock to, and its secret where this process has it.
#[derive(Clone)]
pub struct TreasuryKey {
    /// What the platform's tokens are locked to.
    pub lock: XOnlyKey,
    /// The secret that redeems them: `TREASURY_SECRET`, or the derived key's; `None` when only
    /// `TREASURY_PUBKEY` is set (this process does not sweep).
    pub secret: Option<SecretKey>,
}

impl std::fmt::Debug for TreasuryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreasuryKey")
            .field("lock", &self.lock.to_string())
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// The secret derived from the master secret when no `TREASURY_PUBKEY` is set:
/// HMAC-SHA512(master, label), its first 32 bytes.
fn derived(master_secret: &[u8]) -> Result<SecretKey, WalletError> {
    let mut engine = hmac::HmacEngine::<sha512::Hash>::new(master_secret);
    engine.input(b"openpleb/treasury-key/v1");
    let bytes = hmac::Hmac::<sha512::Hash>::from_engine(engine).to_byte_array();
    SecretKey::from_slice(&bytes[..32]).map_err(|e| WalletError::Task(format!("treasury key: {e}")))
}

fn x_only(secret: &SecretKey) -> Result<XOnlyKey, WalletError> {
    XOnlyKey::from_str(&secret.public_key().x_only_public_key().to_string())
        .map_err(|e| WalletError::Task(format!("treasury key: {e}")))
}

impl TreasuryKey {
    /// The treasury key the configuration names (validated when it was loaded), or the one
    /// derived from `master_secret`.
    pub fn from_config(config: &Config, master_secret: &[u8]) -> Result<Self, WalletError> {
        let t = &config.treasury;
        let secret = match &t.secret {
            Some(s) => Some(
                SecretKey::from_hex(s.expose())
                    .map_err(|e| WalletError::Task(format!("TREASURY_SECRET: {e}")))?,
            ),
            None if t.pubkey.is_none() => Some(derived(master_secret)?),
            None => None,
        };
        let lock = match (&t.pubkey, &secret) {
            (Some(pubkey), _) => XOnlyKey::from_str(pubkey)
                .map_err(|e| WalletError::Task(format!("TREASURY_PUBKEY: {e}")))?,
            (None, Some(secret)) => x_only(secret)?,
            (None, None) => return Err(WalletError::Task("no treasury key".to_owned())),
        };
        Ok(Self { lock, secret })
    }
}

impl WalletManager {
    /// The workers' keys ([`crate::keyring`]) from this manager's master secret, with the
    /// treasury key `config` names.
    pub fn worker_keys(&self, config: &Config) -> Result<crate::keyring::WorkerKeys, WalletError> {
        let master = &self.cfg().master_secret;
        let treasury = TreasuryKey::from_config(config, master)?.lock;
        crate::keyring::WorkerKeys::derive(master, treasury)
            .map_err(|e| WalletError::Task(format!("the workers' keys: {e}")))
    }

    /// The treasury key, with its secret where this worker has it.
    pub fn treasury_key(&self, config: &Config) -> Result<TreasuryKey, WalletError> {
        TreasuryKey::from_config(config, &self.cfg().master_secret)
    }

    /// Whether wallet `id` itself received `token` (a receive it finished, or one its saga
    /// recovery finished after a crash): a completed incoming transaction lists the token's
    /// proofs.
    /// Tells the sweep's own earlier receive from someone else spending the token.
    pub async fn received(&self, id: &WalletId, token: &str) -> Result<bool, WalletError> {
        let token = Token::from_str(token).map_err(|e| WalletError::Task(format!("token: {e}")))?;
        let ys = token
            .token_secrets()
            .iter()
            .map(|s| hash_to_curve(s.as_bytes()))
            .collect::<Result<Vec<PublicKey>, _>>()
            .map_err(|e| WalletError::Task(format!("token: {e}")))?;
        let found = self
            .run(id, false, move |w| async move {
                let incoming = w
                    .list_transactions(Some(TransactionDirection::Incoming))
                    .await?;
                // A receive records its transaction as pending before it asks the mint, and
                // marks it failed when the mint refuses: only a completed one took the token.
                Ok(incoming.iter().any(|t| {
                    t.status == TransactionStatus::Completed
                        && !ys.is_empty()
                        && ys.iter().all(|y| t.ys.contains(y))
                }))
            })
            .await;
        match found {
            Err(WalletError::NotFound(_)) => Ok(false),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_derived_key_is_stable_and_differs_per_master_secret() {
        let a = derived(&[1; 32]).expect("key");
        assert_eq!(a.public_key(), derived(&[1; 32]).expect("key").public_key());
        assert_ne!(a.public_key(), derived(&[2; 32]).expect("key").public_key());
    }
}
