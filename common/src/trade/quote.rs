//! Mint quotes that fund offers, before they are paid: the invoice a payer gets, recording a
//! quote with its watcher, and what minting a quote made without its wallet needs. Apart from
//! [`super::paid`] (what a paid quote does), so the steps that make quotes (create, claim) do
//! not depend on the steps a payment moves.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::TradeError;
use crate::db::quotes::{self, OfferQuote, WalletQuote};
use crate::jobs::{self, WatchMintQuote};
use crate::wallet::QuoteLock;

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

/// What minting `quote` needs besides its id: its derived NUT-20 key's nonce, if it was made
/// without opening its wallet.
pub fn lock_of(quote: &WalletQuote) -> Option<QuoteLock<'_>> {
    quote.lock_nonce.as_deref().map(|nonce| QuoteLock {
        nonce,
        sats: u64::try_from(quote.amount_sats).unwrap_or(0),
        expiry: u64::try_from(quote.expires_at.timestamp()).unwrap_or(0),
    })
}

/// Records a quote of an offer and enqueues its watcher, in the caller's transaction.
pub(crate) async fn watch(conn: &mut PgConnection, q: &OfferQuote<'_>) -> Result<(), TradeError> {
    quotes::insert_for_offer(conn, q).await?;
    let first = WatchMintQuote::first(q.quote_id);
    jobs::enqueue_in(conn, &first, std::time::Duration::from_secs(1)).await?;
    Ok(())
}
