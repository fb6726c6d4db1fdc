//! Cancel an unclaimed offer (maker): CREATED or INVOICE_PAID → CANCELLED. A funded deposit is
//! refunded in full to the maker's payout key and claims still waiting for their bonds are
//! lost (a bond paid for one later is refunded); an unfunded offer has nothing to return (a
//! deposit paid later is refunded by the quote watcher as a late payment).
//!
//! A bond paid at the same moment wins or loses on the offer's row: the bond is applied under
//! the row's lock and the cancel is a compare-and-set on INVOICE_PAID, so exactly one of them
//! moves the offer.

use uuid::Uuid;

use super::settle::settle;
use super::{claim, load_as, party_move, reputation, Role, TradeCtx, TradeError};
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
    let moved = party_move(ctx, &mut tx, &offer, to, None).await?;
    if from == OfferStatus::InvoicePaid {
        claim::lose_all(ctx, &mut tx, offer.id).await?;
        settle(ctx, &mut tx, &moved, Outcome::RefundMaker, false).await?;
    } else {
        // Nothing was paid in; a stake made with the offer comes back all the same.
        reputation::conclude(ctx, &mut tx, &moved, Role::Maker, Fate::Return).await?;
    }
    tx.commit().await?;
    Ok(moved)
}
