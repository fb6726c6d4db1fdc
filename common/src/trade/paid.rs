//! What happens when a mint quote that funds an offer is paid and minted. The quote watcher
//! and the lapses' last look at a deposit or a bond all end here, so a payment is applied once
//! whoever sees it first; so does a quote the mint reports issued to somebody else, which is
//! never applied.

use sqlx::PgConnection;

use super::{bond_paid, deposit_paid, late_refund, TradeCtx, TradeError};
use crate::db::ledger::{self, LedgerKind};
use crate::db::offers;
use crate::db::quotes::{self, WalletQuote};
use crate::domain::offer::OfferStatus;
use crate::domain::payout::{QuotePurpose, QuoteState};
use crate::wallet::WalletId;

/// What paying a quote did to its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paid {
    /// The offer moved on (deposit → INVOICE_PAID, bond → TAKER_BOND_PAID).
    Advanced(OfferStatus),
    /// The offer had moved on without this payment (cancelled, expired, claim lapsed) or the
    /// amount was wrong: the sats are refunded to the payer's key.
    Refunded,
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

/// Gives up a quote the mint reports ISSUED that its wallet never minted
/// (`MintOutcome::IssuedElsewhere`: a mint that ignored the NUT-20 lock, or a leaked quote
/// key). Nothing arrived, so nothing is credited: the quote is marked EXPIRED (compare-and-set,
/// so the warning and the count happen once) and its offer or claim lapses unpaid at its
/// deadline, as if the invoice had never been paid.
pub async fn quote_issued_elsewhere(ctx: &TradeCtx, quote: &WalletQuote) -> Result<(), TradeError> {
    let moved = quotes::transition(
        &ctx.pool,
        &quote.quote_id,
        &[QuoteState::Unpaid, QuoteState::Paid],
        QuoteState::Expired,
    )
    .await?;
    if moved {
        crate::metrics::quote_issued_elsewhere();
        tracing::warn!(quote = %quote.quote_id, wallet = %quote.wallet_id, offer = ?quote.offer_id,
            sats = quote.amount_sats,
            "the mint reports the quote issued, but its wallet never minted it: nothing is \
             credited and the quote is given up (does the mint enforce NUT-20 locks?)");
    }
    Ok(())
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
        (QuotePurpose::Deposit, false) => {
            deposit_paid::apply(ctx, conn, &offer, quote, sats).await?
        }
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
