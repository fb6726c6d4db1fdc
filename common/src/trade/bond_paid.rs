//! The taker's bond arrived: INVOICE_CREATED → TAKER_BOND_PAID; the taker now pays the fiat and
//! uploads the receipt. Called by [`super::paid`] inside the transaction that marks the quote
//! minted, with the offer row locked.

use sqlx::PgConnection;

use super::{advance, TradeCtx, TradeError};
use crate::db::ledger::{self, LedgerKind};
use crate::db::offers::Offer;
use crate::db::quotes::WalletQuote;
use crate::domain::offer::{transition, Event, OfferStatus};
use crate::wallet::WalletId;

/// Books the bond and moves the offer if it is the current claim's quote, paid into the
/// current taker's wallet for the right amount. The new status, or `None` (the caller refunds
/// the payment: the claim lapsed, or the amount was wrong).
pub(crate) async fn apply(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    offer: &Offer,
    quote: &WalletQuote,
    sats: u64,
) -> Result<Option<OfferStatus>, TradeError> {
    ledger::record(conn, offer.id, LedgerKind::Bond, sats, &quote.quote_id).await?;
    let taker_wallet = offer.taker_session_id.map(WalletId::session);
    let right = sats == offer.amounts().taker_bond
        && offer.bond_quote_id.as_deref() == Some(quote.quote_id.as_str())
        && taker_wallet.as_ref().map(WalletId::as_str) == Some(quote.wallet_id.as_str());
    let Ok(to) = transition(offer.status, Event::BondPaid) else {
        return Ok(None);
    };
    if !right {
        return Ok(None);
    }
    let deadline = ctx.deadline(ctx.config.timers.taker_bond_paid);
    Ok(advance(conn, offer, offer.status, to, Some(deadline))
        .await?
        .map(|o| o.status))
}
