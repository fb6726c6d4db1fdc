//! Mint quotes that fund offers: recording one with its watcher, and what happens when one is
//! paid and minted. The quote watcher and the lapse's last look at a deposit both end here, so
//! a payment is applied once whoever sees it first.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{bond_paid, deposit_paid, late_refund, TradeCtx, TradeError};
use crate::db::ledger::{self, LedgerKind};
use crate::db::offers;
use crate::db::quotes::{self, OfferQuote, WalletQuote};
use crate::domain::offer::OfferStatus;
use crate::domain::payout::{QuotePurpose, QuoteState};
use crate::jobs::{self, WatchMintQuote};
use crate::wallet::{QuoteLock, WalletId};

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

/// What paying a quote did to its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paid {
    /// The offer moved on (deposit → INVOICE_PAID, bond → TAKER_BOND_PAID).
    Advanced(OfferStatus),
    /// The offer had moved on without this payment (cancelled, expired, claim lapsed) or the
    /// amount was wrong: the sats are refunded to the payer's key.
    Refunded,
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

/// Applies a quote the wallet minted `sats` for: marks it ISSUED (compare-and-set, so a second
/// caller does nothing) and moves its offer, or refunds a payment the offer can no longer take,
/// all in one transaction. A quote that had been marked EXPIRED is always refunded: it was paid
/// after its invoice's own expiry, so it moves nothing. `None` when this call was not the
/// first, or the quote funds no offer.
pub async fn quote_minted(
    ctx: &TradeCtx,
    quote: &WalletQuote,
    sats: u64,
) -> Result<Option<Paid>, TradeError> {
    let mut tx = ctx.pool.begin().await?;
    let Some(was) = quotes::mark_issued(&mut tx, &quote.quote_id, sats).await? else {
        return Ok(None);
    };
    let paid = apply(ctx, &mut tx, quote, sats, was == QuoteState::Expired).await?;
    tx.commit().await?;
    Ok(paid)
}

async fn apply(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    quote: &WalletQuote,
    sats: u64,
    expired: bool,
) -> Result<Option<Paid>, TradeError> {
    let (Some(offer_id), Some(purpose)) = (quote.offer_id, quote.purpose) else {
        return Ok(None);
    };
    let Some(offer) = offers::get_for_update(conn, offer_id).await? else {
        return Ok(None);
    };
    let advanced = match (purpose, expired) {
        (_, true) => {
            let kind = match purpose {
                QuotePurpose::Deposit => LedgerKind::Deposit,
                QuotePurpose::Bond => LedgerKind::Bond,
            };
            ledger::record(conn, offer.id, kind, sats, &quote.quote_id).await?;
            None
        }
        (QuotePurpose::Deposit, false) => deposit_paid::apply(conn, &offer, quote, sats).await?,
        (QuotePurpose::Bond, false) => bond_paid::apply(ctx, conn, &offer, quote, sats).await?,
    };
    if let Some(status) = advanced {
        return Ok(Some(Paid::Advanced(status)));
    }
    // Paid late or wrong: never accepted; the sats go back to whoever paid.
    let wallet = WalletId::parse(&quote.wallet_id)
        .map_err(|e| TradeError::Inconsistent(format!("quote {}: {e}", quote.quote_id)))?;
    let key = quote.refund_pubkey.as_deref().ok_or_else(|| {
        TradeError::Inconsistent(format!("quote {} has no refund key", quote.quote_id))
    })?;
    tracing::warn!(offer = %offer.id, quote = %quote.quote_id, sats, purpose = %purpose,
        "payment arrived late or for the wrong amount; refunding it");
    late_refund::record(
        conn,
        &late_refund::LatePayment {
            offer_id: offer.id,
            payer: purpose.payer(),
            wallet: &wallet,
            sats,
            refund_pubkey: key,
            reference: &quote.quote_id,
        },
    )
    .await?;
    Ok(Some(Paid::Refunded))
}
