//! Minting deposit and bond quotes the api made without a wallet: the worker's side.
//!
//! The api asks the mint for a quote locked (NUT-20) to a public key it derives from the
//! workers' extended public key (`crate::desk`), and records the path with the quote. The
//! worker that mints derives the private key (`crate::keyring::WorkerKeys::quote_key`), adds
//! the quote to the session wallet's store if the wallet has not seen it, and mints as usual.
//! Quotes made before that scheme are locked to a key derived from the session wallet's seed
//! and a nonce ([`WalletManager::legacy_quote_key`]). A wallet file that does not exist yet is
//! created by the mint, so a locked quote cannot be orphaned by a missing file.

use cdk::amount::SplitTarget;
use cdk::mint_url::MintUrl;
use cdk::nuts::{CurrencyUnit, MintQuoteState, PaymentMethod, SecretKey};
use cdk::wallet::types::MintQuote;
use cdk::Amount;
use cdk_common::bitcoin::hashes::{sha256, Hash, HashEngine, Hmac, HmacEngine};

use super::error::WalletError;
use super::layout::{derive_seed, WalletId};
use super::manager::{issued_outcome, MintOutcome, WalletManager};
use crate::metrics::wallet_op;

/// What the worker needs to mint a locked quote the wallet may never have seen.
#[derive(Clone)]
pub struct QuoteLock {
    /// The quote's NUT-20 secret key.
    pub key: SecretKey,
    /// Sats the quote asks for.
    pub sats: u64,
    /// The mint's expiry (unix seconds).
    pub expiry: u64,
}

impl std::fmt::Debug for QuoteLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuoteLock")
            .field("sats", &self.sats)
            .field("expiry", &self.expiry)
            .finish_non_exhaustive()
    }
}

/// The NUT-20 key of a quote made before the extended-public-key scheme: HMAC-SHA256 over the
/// nonce, keyed by the wallet's seed.
pub fn quote_lock_key(
    master_secret: &[u8],
    id: &WalletId,
    nonce: &str,
) -> Result<SecretKey, WalletError> {
    let seed = derive_seed(master_secret, id);
    let mut engine = HmacEngine::<sha256::Hash>::new(&seed);
    engine.input(b"openpleb/nut20-quote-key/v1\n");
    engine.input(nonce.as_bytes());
    let mac = Hmac::<sha256::Hash>::from_engine(engine);
    SecretKey::from_slice(mac.as_byte_array())
        .map_err(|e| WalletError::Task(format!("quote key: {e}")))
}

impl WalletManager {
    /// The key of a quote locked by the earlier scheme, from this manager's master secret.
    pub fn legacy_quote_key(&self, id: &WalletId, nonce: &str) -> Result<SecretKey, WalletError> {
        quote_lock_key(&self.cfg().master_secret, id, nonce)
    }

    /// [`WalletManager::mint_quote`] for a quote that may be locked to a derived key: with
    /// `lock`, the wallet is created if needed and learns the quote (with its key) first.
    /// Safe to repeat, as `mint_quote` is: the quote is added once, minted once.
    pub async fn mint_quote_with(
        &self,
        id: &WalletId,
        quote_id: &str,
        lock: Option<QuoteLock>,
    ) -> Result<MintOutcome, WalletError> {
        let Some(lock) = lock else {
            return self.mint_quote(id, quote_id).await;
        };
        let quote_id = quote_id.to_owned();
        // Most looks at a quote find it unpaid, and its watcher looks every few seconds: ask
        // the mint without opening the wallet (or creating it, for a new session), which only
        // the minting needs. Opening it for each look made 200 waiting offers open 40 wallets
        // a second and held paid quotes up behind them (settlement p95 4.4 s).
        let client = self.client();
        let asked = quote_id.clone();
        let status = wallet_op("check_locked_quote", async move {
            client
                .get_mint_quote_status(PaymentMethod::BOLT11, &asked)
                .await
                .map_err(WalletError::from)
        })
        .await
        .inspect_err(|e| self.noticed(e))?;
        if status.state() == Some(MintQuoteState::Unpaid) {
            return Ok(MintOutcome::Unpaid);
        }
        let QuoteLock { key, sats, expiry } = lock;
        let mint_url: MintUrl = self.inner.slots.mint_url.clone();
        wallet_op(
            "mint_quote",
            self.run(id, true, move |w| async move {
                if w.localstore.get_mint_quote(&quote_id).await?.is_none() {
                    let known = MintQuote::new(
                        quote_id.clone(),
                        mint_url,
                        PaymentMethod::BOLT11,
                        Some(Amount::from(sats)),
                        CurrencyUnit::Sat,
                        String::new(),
                        expiry,
                        Some(key),
                    );
                    w.localstore.add_mint_quote(known).await?;
                }
                let q = w.check_mint_quote_status(&quote_id).await?;
                match q.state {
                    MintQuoteState::Unpaid => Ok(MintOutcome::Unpaid),
                    MintQuoteState::Issued => issued_outcome(&w, &quote_id).await,
                    MintQuoteState::Paid => {
                        let proofs = w.mint(&quote_id, SplitTarget::default(), None).await?;
                        Ok(MintOutcome::Issued(
                            proofs.iter().map(|p| u64::from(p.amount)).sum(),
                        ))
                    }
                }
            }),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_depends_on_wallet_and_nonce() {
        let a = WalletId::session(uuid::Uuid::nil());
        let b = WalletId::session(uuid::Uuid::max());
        let k = |id: &WalletId, n: &str| quote_lock_key(b"master", id, n).expect("key");
        assert_eq!(k(&a, "00"), k(&a, "00"), "deterministic");
        assert_ne!(k(&a, "00"), k(&a, "01"));
        assert_ne!(k(&a, "00"), k(&b, "00"));
    }
}
