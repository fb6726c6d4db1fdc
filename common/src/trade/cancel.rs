//! Cancel an unclaimed offer (maker): CREATED or INVOICE_PAID → CANCELLED. A funded deposit is
//! refunded in full to the maker's payout key; an unfunded one has nothing to return (a deposit
//! paid later is refunded by the quote watcher as a late payment).

use uuid::Uuid;

use super::reputation;
use super::settle::settle;
use super::{advance, load_as, Role, TradeCtx, TradeError};
use crate::db::offers::Offer;
use crate::domain::money::Outcome;
use crate::domain::offer::{transition, Event, OfferStatus};
use crate::domain::reputation::Fate;

/// Cancels `offer_id` for its maker `session`.
pub async fn cancel(ctx: &TradeCtx, session: Uuid, offer_id: Uuid) -> Result<Offer, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Maker).await?;
    let from = offer.status;
    let to = transition(from, Event::Cancel).map_err(|_| TradeError::WrongState(from))?;
    let mut tx = ctx.pool.begin().await?;
    let moved = advance(&mut tx, &offer, from, to, None)
        .await?
        .ok_or(TradeError::WrongState(from))?;
    if from == OfferStatus::InvoicePaid {
        settle(ctx, &mut tx, &moved, Outcome::RefundMaker, false).await?;
    } else {
        // Nothing was paid in; a stake made with the offer comes back all the same.
        reputation::conclude(ctx, &mut tx, &moved, Role::Maker, Fate::Return).await?;
    }
    tx.commit().await?;
    Ok(moved)
}
