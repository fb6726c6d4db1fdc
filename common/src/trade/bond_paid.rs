//! A claim's bond arrived: if its claim still waits and the offer is still listed, this bond
//! wins the offer (INVOICE_PAID → TAKER_BOND_PAID, compare-and-set on the offer), its claim is
//! WON and every other waiting claim ends LOST. The taker now pays the fiat and uploads the
//! receipt. Called by [`super::paid`] inside the transaction that marks the quote minted, with
//! the offer row locked, so a bond and the maker's cancel (or another bond) are decided one at
//! a time: whichever locks the offer first wins, the other finds it moved.

use sqlx::PgConnection;

use super::{claim, entered, TradeCtx, TradeError};
use crate::db::claims;
use crate::db::ledger::{self, LedgerKind};
use crate::db::offers::{self, Offer};
use crate::db::quotes::WalletQuote;
use crate::domain::claim::ClaimStatus;
use crate::domain::offer::{transition, Event, OfferStatus};
use crate::wallet::WalletId;

/// Books the bond and, if it wins, moves the offer. The new status, or `None` (the caller
/// refunds the payment: its claim ended, another bond won, the offer left the book, or the
/// amount was wrong).
pub(crate) async fn apply(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    offer: &Offer,
    quote: &WalletQuote,
    sats: u64,
) -> Result<Option<OfferStatus>, TradeError> {
    ledger::record(conn, offer.id, LedgerKind::Bond, sats, &quote.quote_id).await?;
    let Some(claim) = claims::by_bond_for_update(conn, &quote.quote_id).await? else {
        return Ok(None);
    };
    let right = sats == offer.amounts().taker_bond
        && claim.offer_id == offer.id
        && WalletId::session(claim.session_id).as_str() == quote.wallet_id;
    let Ok(to) = transition(offer.status, Event::BondPaid) else {
        return Ok(None);
    };
    if !right || claim.status != ClaimStatus::Pending {
        return Ok(None);
    }
    let timer = ctx.config.timers.taker_bond_paid;
    let Some(taken) = offers::take(conn, offer.id, &claim, timer).await? else {
        return Ok(None);
    };
    debug_assert_eq!(taken.status, to);
    if claims::end(conn, claim.id, ClaimStatus::Won, false)
        .await?
        .is_none()
    {
        return Err(TradeError::Inconsistent(format!(
            "claim {} stopped waiting under its offer's lock",
            claim.id
        )));
    }
    claim::lose_all(ctx, conn, offer.id).await?;
    entered(ctx, conn, &taken, Some(offer.status)).await?;
    Ok(Some(taken.status))
}
