//! The taker's recourse before paying: the payment details do not work (a closed account, a
//! wrong QR). TAKER_BOND_PAID → DETAILS_DISPUTED with a message and the taker's reveal. The
//! maker then forfeits (RESOLVED, BAD_DETAILS: its bond goes to the taker, the rest of its
//! deposit back to it) or counters with a message and its own reveal; its silence for
//! `TIMER_DETAILS_DISPUTED_SECS` leaves the decision to an admin, like a counter. Without this
//! a taker given unusable details could only send a receipt it does not have or lose its bond.

use uuid::Uuid;

use super::issue::check_message;
use super::reveal::{self, Reveal};
use super::{load_as, party_move, Role, TradeCtx, TradeError};
use crate::db::disputes;
use crate::db::offers::Offer;
use crate::domain::dispute::{Author, MessageKind};
use crate::domain::offer::{transition, Event};
use crate::keyring::data::Field;

/// What the taker says.
#[derive(Debug, Clone)]
pub struct ReportDetails {
    /// What went wrong, for the maker and the admins.
    pub message: String,
    /// The taker's reveal.
    pub reveal: Reveal,
}

/// The taker of `offer_id` (`session`) reports that the payment details do not work.
pub async fn report(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    input: ReportDetails,
) -> Result<Offer, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Taker).await?;
    let to = transition(offer.status, Event::ReportDetails)
        .map_err(|_| TradeError::WrongState(offer.status))?;
    check_message(&input.message)?;
    let key = reveal::check(ctx, offer.id, Role::Taker, &input.reveal).await?;

    let mut tx = ctx.pool.begin().await?;
    let timer = ctx.config.timers.details_disputed;
    let moved = party_move(ctx, &mut tx, &offer, to, Some(timer)).await?;
    disputes::open_details(&mut tx, offer.id, &key.to_string()).await?;
    disputes::add_message(
        &mut tx,
        offer.id,
        Author::Taker,
        MessageKind::Details,
        &ctx.seal(offer.id, Field::Message, input.message.as_bytes()),
    )
    .await?;
    tx.commit().await?;
    Ok(moved)
}
