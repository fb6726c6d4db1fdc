//! The platform treasury's keys, and what the sweep asks the treasury wallet.
//!
//! The platform's share of a trade leaves the session wallet as a token P2PK-locked to the
//! treasury key and is stored in `payouts.token` until the sweep receives it into the treasury
//! wallet ([`TREASURY_WALLET`]). Locked, that stored token is worth nothing to anyone who reads
//! PostgreSQL (a leaked backup, an injected query): redeeming it takes the key's secret, which
//! is never stored there. The key is `TREASURY_SECRET`'s (the api, which does not sweep, may be
//! given only its public half, `TREASURY_PUBKEY`); the treasury wallet's seed derives from the
//! same secret ([`super::layout::treasury_wallet_seed`]), so only the workers given
//! `TREASURY_SECRET` can spend or restore the treasury.
//!
//! Before, the key (when `TREASURY_PUBKEY` was unset) and the wallet `platform_treasury` both
//! derived from `WALLET_MASTER_SECRET`. That [`LegacyTreasuryKey`] is kept for the sweeper
//! alone, to redeem the fee tokens locked to it before the upgrade; nothing locks to it now.

use std::str::FromStr;

use cdk::dhke::hash_to_curve;
use cdk::nuts::{PublicKey, SecretKey, Token};
use cdk::wallet::types::{TransactionDirection, TransactionStatus};
use cdk_common::bitcoin::hashes::{hmac, sha512, Hash, HashEngine};

use super::error::WalletError;
use super::layout::WalletId;
pub use super::layout::{LEGACY_TREASURY_WALLET, TREASURY_WALLET};
use super::manager::WalletManager;
use crate::config::Config;
use crate::domain::keys::XOnlyKey;

/// The key platform payouts lock to, and its secret where this process has it.
#[derive(Clone)]
pub struct TreasuryKey {
    /// What the platform's tokens are locked to.
    pub lock: XOnlyKey,
    /// `TREASURY_SECRET`, which redeems them; `None` where only `TREASURY_PUBKEY` is set (the
    /// api: it locks fees and never sweeps).
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

fn x_only(secret: &SecretKey) -> Result<XOnlyKey, WalletError> {
    XOnlyKey::from_str(&secret.public_key().x_only_public_key().to_string())
        .map_err(|e| WalletError::Task(format!("treasury key: {e}")))
}

impl TreasuryKey {
    /// The treasury key the configuration names (validated when it was loaded):
    /// `TREASURY_PUBKEY`, else `TREASURY_SECRET`'s public key.
    pub fn from_config(config: &Config) -> Result<Self, WalletError> {
        let t = &config.treasury;
        let secret = match &t.secret {
            Some(s) => Some(
                SecretKey::from_hex(s.expose())
                    .map_err(|e| WalletError::Task(format!("TREASURY_SECRET: {e}")))?,
            ),
            None => None,
        };
        let lock = match (&t.pubkey, &secret) {
            (Some(pubkey), _) => XOnlyKey::from_str(pubkey)
                .map_err(|e| WalletError::Task(format!("TREASURY_PUBKEY: {e}")))?,
            (None, Some(secret)) => x_only(secret)?,
            (None, None) => {
                return Err(WalletError::Task(
                    "no treasury key: set TREASURY_PUBKEY or TREASURY_SECRET".to_owned(),
                ))
            }
        };
        Ok(Self { lock, secret })
    }

    /// The keys that redeem a platform token whose payout recorded `lock`: the legacy key for
    /// a token locked to it before the upgrade, else `TREASURY_SECRET` (also for the unlocked
    /// tokens of before platform payouts were locked, which need none). Empty without
    /// `TREASURY_SECRET`: this process does not sweep (it could not open the treasury wallet,
    /// whose seed derives from that secret).
    pub fn signing_keys(&self, lock: Option<&str>, legacy: &LegacyTreasuryKey) -> Vec<SecretKey> {
        match (lock, &self.secret) {
            (_, None) => Vec::new(),
            (Some(l), Some(_)) if l == legacy.lock() => vec![legacy.0.clone()],
            (_, Some(secret)) => vec![secret.clone()],
        }
    }
}

/// The treasury key of before the upgrade, derived from the master secret:
/// HMAC-SHA512(master, `openpleb/treasury-key/v1`), its first 32 bytes. Only the sweep uses it,
/// to redeem fee tokens that were locked to it then; `Debug` never shows it.
#[derive(Clone)]
pub struct LegacyTreasuryKey(SecretKey, String);

impl std::fmt::Debug for LegacyTreasuryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LegacyTreasuryKey").field(&self.1).finish()
    }
}

impl LegacyTreasuryKey {
    /// The legacy key of `master_secret` (`WALLET_MASTER_SECRET`'s bytes).
    pub fn from_master(master_secret: &[u8]) -> Result<Self, WalletError> {
        let mut engine = hmac::HmacEngine::<sha512::Hash>::new(master_secret);
        engine.input(b"openpleb/treasury-key/v1");
        let bytes = hmac::Hmac::<sha512::Hash>::from_engine(engine).to_byte_array();
        let secret = SecretKey::from_slice(&bytes[..32])
            .map_err(|e| WalletError::Task(format!("legacy treasury key: {e}")))?;
        let lock = x_only(&secret)?.to_string();
        Ok(Self(secret, lock))
    }

    /// Its public key, x-only hex, as `payouts.lock_pubkey` recorded it.
    pub fn lock(&self) -> &str {
        &self.1
    }
}

impl WalletManager {
    /// The workers' keys ([`crate::keyring`]) from this manager's master secret, with the
    /// treasury key `config` names.
    pub fn worker_keys(&self, config: &Config) -> Result<crate::keyring::WorkerKeys, WalletError> {
        let master = &self.cfg().master_secret;
        let treasury = TreasuryKey::from_config(config)?.lock;
        crate::keyring::WorkerKeys::derive(master, treasury)
            .map_err(|e| WalletError::Task(format!("the workers' keys: {e}")))
    }

    /// The legacy treasury key of this manager's master secret (the sweep's alone).
    pub fn legacy_treasury_key(&self) -> Result<LegacyTreasuryKey, WalletError> {
        LegacyTreasuryKey::from_master(&self.cfg().master_secret)
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
    fn the_legacy_key_is_stable_and_differs_per_master_secret() {
        let a = LegacyTreasuryKey::from_master(&[1; 32]).expect("key");
        let again = LegacyTreasuryKey::from_master(&[1; 32]).expect("key");
        let b = LegacyTreasuryKey::from_master(&[2; 32]).expect("key");
        assert_eq!(a.lock(), again.lock());
        assert_ne!(a.lock(), b.lock());
        assert!(!format!("{a:?}").contains(&a.0.to_secret_hex()));
    }

    #[test]
    fn only_a_token_locked_to_the_legacy_key_is_signed_with_it() {
        let legacy = LegacyTreasuryKey::from_master(&[1; 32]).expect("key");
        let secret = SecretKey::generate();
        let key = TreasuryKey {
            lock: x_only(&secret).expect("x"),
            secret: Some(secret.clone()),
        };
        let own = key.lock.to_string();
        assert_eq!(key.signing_keys(Some(&own), &legacy), vec![secret.clone()]);
        assert_eq!(key.signing_keys(None, &legacy), vec![secret.clone()]);
        assert_eq!(
            key.signing_keys(Some(legacy.lock()), &legacy),
            vec![legacy.0.clone()]
        );
        let api = TreasuryKey {
            secret: None,
            ..key
        };
        assert!(api.signing_keys(Some(&own), &legacy).is_empty());
        assert!(api.signing_keys(Some(legacy.lock()), &legacy).is_empty());
    }
}
