//! Confirm the fiat arrived (maker): RECEIPT_SUBMITTED → COMPLETED. The taker gets
//! S + TF + TB, the maker MB back, the platform PF; the payouts are recorded in the same
//! transaction and released by the worker.

use uuid::Uuid;

use super::settle::settle;
use super::{load_as, party_move, Role, TradeCtx, TradeError};
use crate::db::offers::Offer;
use crate::domain::money::Outcome;
use crate::domain::offer::{transition, Event};

/// Completes `offer_id` for its maker `session`.
pub async fn complete(ctx: &TradeCtx, session: Uuid, offer_id: Uuid) -> Result<Offer, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Maker).await?;
    let to = transition(offer.status, Event::Confirm)
        .map_err(|_| TradeError::WrongState(offer.status))?;
    let mut tx = ctx.pool.begin().await?;
    let moved = party_move(ctx, &mut tx, &offer, to, None).await?;
    settle(ctx, &mut tx, &moved, Outcome::Completed, true).await?;
    tx.commit().await?;
    Ok(moved)
}
