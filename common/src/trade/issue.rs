//! Mark an issue (maker): RECEIPT_SUBMITTED → MARKED_WITH_ISSUE. The maker says why, may write
//! a message, and reveals its registered key (no reveal, no issue). The taker now forfeits or
//! disputes; its silence for `TIMER_MARKED_WITH_ISSUE_SECS` is a forfeit.

use uuid::Uuid;

use super::reveal::{self, Reveal};
use super::{load_as, party_move, Role, TradeCtx, TradeError};
use crate::db::disputes;
use crate::db::offers::Offer;
use crate::domain::dispute::{Author, IssueReason, MessageKind, MESSAGE_MAX_CHARS};
use crate::domain::offer::{transition, Event};
use crate::keyring::data::Field;

/// What the maker says.
#[derive(Debug, Clone)]
pub struct MarkIssue {
    /// Why.
    pub reason: IssueReason,
    /// For the taker and the admins.
    pub message: String,
    /// The maker's reveal.
    pub reveal: Reveal,
}

/// Checks a dispute message's length.
pub(crate) fn check_message(message: &str) -> Result<(), TradeError> {
    if message.chars().count() > MESSAGE_MAX_CHARS {
        return Err(TradeError::invalid(
            "message_too_long",
            "message",
            format!("at most {MESSAGE_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Marks an issue on `offer_id` for its maker `session`.
pub async fn mark_issue(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    input: MarkIssue,
) -> Result<Offer, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Maker).await?;
    let to = transition(offer.status, Event::MarkIssue)
        .map_err(|_| TradeError::WrongState(offer.status))?;
    check_message(&input.message)?;
    let key = reveal::check(ctx, offer.id, Role::Maker, &input.reveal).await?;

    let mut tx = ctx.pool.begin().await?;
    let timer = ctx.config.timers.marked_with_issue;
    let moved = party_move(ctx, &mut tx, &offer, to, Some(timer)).await?;
    disputes::open(&mut tx, offer.id, input.reason, &key.to_string()).await?;
    disputes::add_message(
        &mut tx,
        offer.id,
        Author::Maker,
        MessageKind::Issue,
        &ctx.seal(offer.id, Field::Message, input.message.as_bytes()),
    )
    .await?;
    tx.commit().await?;
    Ok(moved)
}
