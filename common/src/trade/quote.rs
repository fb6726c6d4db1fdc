//! Mint quotes that fund offers, before they are paid: the invoice a payer gets, recording a
//! quote with its watcher, and what minting a quote made without its wallet needs. Apart from
//! [`super::paid`] (what a paid quote does), so the steps that make quotes (create, claim) do
//! not depend on the steps a payment moves.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{TradeCtx, TradeError};
use crate::db::quotes::{self, OfferQuote, WalletQuote};
use crate::jobs::{self, WatchMintQuote};
use crate::keyring::LockPath;
use crate::wallet::QuoteLock;
use crate::wallet::WalletId;

/// A Lightning invoice for the caller to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// The mint's quote id.
    pub quote_id: String,
    /// BOLT11.
    pub request: String,
    /// Sats to pay.
    pub amount_sats: u64,
    /// When the mint stops accepting payment.
    pub expires_at: DateTime<Utc>,
}

/// What minting `quote` needs besides its id: its NUT-20 key, if it was made without opening
/// its wallet (by the api, from the workers' extended public key, or earlier from a nonce).
/// Only a process with the workers' keys can answer; the api has none.
pub fn lock_of(ctx: &TradeCtx, quote: &WalletQuote) -> Result<Option<QuoteLock>, TradeError> {
    let key = match (&quote.lock_path, &quote.lock_nonce) {
        (Some(path), _) => {
            let path: LockPath = path
                .parse()
                .map_err(|e| TradeError::Inconsistent(format!("quote {}: {e}", quote.quote_id)))?;
            ctx.worker_keys()?
                .quote_key(path)
                .map_err(|e| TradeError::Inconsistent(format!("quote {}: {e}", quote.quote_id)))?
        }
        (None, Some(nonce)) => {
            let wallet = WalletId::parse(&quote.wallet_id)
                .map_err(|e| TradeError::Inconsistent(format!("quote {}: {e}", quote.quote_id)))?;
            ctx.wallets()?.legacy_quote_key(&wallet, nonce)?
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(QuoteLock {
        key,
        sats: u64::try_from(quote.amount_sats).unwrap_or(0),
        expiry: u64::try_from(quote.expires_at.timestamp()).unwrap_or(0),
    }))
}

/// Records a quote of an offer and enqueues its watcher, in the caller's transaction.
pub(crate) async fn watch(conn: &mut PgConnection, q: &OfferQuote<'_>) -> Result<(), TradeError> {
    quotes::insert_for_offer(conn, q).await?;
    let first = WatchMintQuote::first(q.quote_id);
    jobs::enqueue_in(conn, &first, std::time::Duration::from_secs(1)).await?;
    Ok(())
}
