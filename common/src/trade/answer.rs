//! The parties' answers once an issue is marked:
//! - the taker, in MARKED_WITH_ISSUE: forfeit (RESOLVED, MAKER_WINS) or dispute with a message
//!   and its own reveal (DISPUTED; the maker answers next);
//! - the maker, in DISPUTED: forfeit (RESOLVED, TAKER_WINS) or counter with a message (the
//!   dispute waits for an admin, with no timer);
//! - the maker, in DETAILS_DISPUTED (the taker reported its payment details): forfeit
//!   (RESOLVED, BAD_DETAILS) or counter with a message and its own reveal (an admin decides).
//!
//! Each is a compare-and-set on the offer's status and the dispute's stage in one transaction,
//! so a racing lapse, admin or second answer finds the move taken and changes nothing.

use uuid::Uuid;

use super::issue::check_message;
use super::reveal::{self, Reveal};
use super::settle::settle;
use super::{advance, load_as, party_move, By, Role, TradeCtx, TradeError};
use crate::db::disputes;
use crate::db::offers::Offer;
use crate::domain::dispute::{Author, DisputeStage, MessageKind, Resolution, ResolvedBy};
use crate::domain::offer::{transition, Event, OfferStatus};
use crate::keyring::data::Field;

/// The taker's answer to an issue.
#[derive(Debug, Clone)]
pub enum TakerAnswer {
    /// Give up: the maker gets D + TB.
    Forfeit,
    /// Dispute the issue.
    Dispute {
        /// For the maker and the admins.
        message: String,
        /// The taker's reveal.
        reveal: Reveal,
    },
}

/// The maker's answer to a dispute.
#[derive(Debug, Clone)]
pub enum MakerAnswer {
    /// Give up: on the receipt the taker gets S + TF + TB + MB; on the payment details the
    /// taker gets TB + MB and the maker D − MB.
    Forfeit,
    /// Maintain the issue; an admin decides.
    Counter {
        /// For the taker and the admins.
        message: String,
        /// The maker's reveal: required on a dispute about the payment details (the maker
        /// has not revealed its key yet there), ignored on one about the receipt (it did when
        /// it marked the issue).
        reveal: Option<Reveal>,
    },
}

/// The taker of `offer_id` (`session`) answers the maker's issue.
pub async fn answer_issue(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    answer: TakerAnswer,
) -> Result<Offer, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Taker).await?;
    let wrong = || TradeError::WrongState(offer.status);
    match answer {
        TakerAnswer::Forfeit => {
            forfeit(
                ctx,
                &offer,
                Event::TakerForfeit,
                &[DisputeStage::WaitingTaker],
                Resolution::MakerWins,
                ResolvedBy::TakerForfeit,
            )
            .await
        }
        TakerAnswer::Dispute { message, reveal } => {
            let to = transition(offer.status, Event::Dispute).map_err(|_| wrong())?;
            check_message(&message)?;
            let key = reveal::check(ctx, offer.id, Role::Taker, &reveal).await?;
            let mut tx = ctx.pool.begin().await?;
            let timer = ctx.config.timers.disputed;
            let moved = party_move(ctx, &mut tx, &offer, to, Some(timer)).await?;
            if !disputes::set_disputed(&mut tx, offer.id, &key.to_string()).await? {
                return Err(TradeError::Inconsistent(format!(
                    "offer {} disputed without a dispute waiting for its taker",
                    offer.id
                )));
            }
            disputes::add_message(
                &mut tx,
                offer.id,
                Author::Taker,
                MessageKind::Dispute,
                &ctx.seal(offer.id, Field::Message, message.as_bytes()),
            )
            .await?;
            tx.commit().await?;
            Ok(moved)
        }
    }
}

/// The maker of `offer_id` (`session`) answers the taker's dispute.
pub async fn answer_dispute(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    answer: MakerAnswer,
) -> Result<Offer, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Maker).await?;
    let details = offer.status == OfferStatus::DetailsDisputed;
    match answer {
        MakerAnswer::Forfeit => {
            forfeit(
                ctx,
                &offer,
                Event::MakerForfeit,
                &[DisputeStage::WaitingMaker, DisputeStage::WaitingAdmin],
                if details {
                    Resolution::BadDetails
                } else {
                    Resolution::TakerWins
                },
                ResolvedBy::MakerForfeit,
            )
            .await
        }
        MakerAnswer::Counter { message, reveal } => {
            transition(offer.status, Event::Counter)
                .map_err(|_| TradeError::WrongState(offer.status))?;
            check_message(&message)?;
            let key = match (details, reveal) {
                (true, Some(r)) => Some(reveal::check(ctx, offer.id, Role::Maker, &r).await?),
                (true, None) => {
                    return Err(TradeError::invalid(
                        "reveal_required",
                        "reveal",
                        "countering a report about the payment details reveals your key",
                    ))
                }
                (false, _) => None,
            };
            let mut tx = ctx.pool.begin().await?;
            if let Some(key) = key {
                disputes::reveal_maker(&mut tx, offer.id, &key.to_string()).await?;
            }
            let Some(moved) = counter(ctx, &mut tx, &offer, By::Party).await? else {
                return Err(TradeError::WrongState(offer.status));
            };
            disputes::add_message(
                &mut tx,
                offer.id,
                Author::Maker,
                MessageKind::Counter,
                &ctx.seal(offer.id, Field::Message, message.as_bytes()),
            )
            .await?;
            tx.commit().await?;
            Ok(moved)
        }
    }
}

/// A party gives up: the offer moves by `event` to RESOLVED, the dispute (in one of `from`) ends
/// with `resolution`, and the money table pays out, in one transaction.
async fn forfeit(
    ctx: &TradeCtx,
    offer: &Offer,
    event: Event,
    from: &[DisputeStage],
    resolution: Resolution,
    by: ResolvedBy,
) -> Result<Offer, TradeError> {
    let wrong = || TradeError::WrongState(offer.status);
    let to = transition(offer.status, event).map_err(|_| wrong())?;
    let mut tx = ctx.pool.begin().await?;
    let moved = party_move(ctx, &mut tx, offer, to, None).await?;
    end(ctx, &mut tx, &moved, from, resolution, by).await?;
    tx.commit().await?;
    Ok(moved)
}

/// The dispute goes to an admin (the maker's counter, or its silence, `by`): the stage moves
/// from WAITING_MAKER to WAITING_ADMIN and the offer stays where it is (DISPUTED or
/// DETAILS_DISPUTED) with no deadline. `None` when the dispute was not waiting for the maker.
pub(crate) async fn counter(
    ctx: &TradeCtx,
    conn: &mut sqlx::PgConnection,
    offer: &Offer,
    by: By,
) -> Result<Option<Offer>, TradeError> {
    if !disputes::set_countered(conn, offer.id).await? {
        return Ok(None);
    }
    advance(ctx, conn, offer, offer.status, offer.status, None, by).await
}

/// Settles a dispute that was in one of `from` and the offer (already moved to RESOLVED) by
/// `resolution`, in the caller's transaction.
pub(crate) async fn end(
    ctx: &TradeCtx,
    conn: &mut sqlx::PgConnection,
    moved: &Offer,
    from: &[DisputeStage],
    resolution: Resolution,
    by: ResolvedBy,
) -> Result<(), TradeError> {
    if !disputes::resolve(conn, moved.id, from, resolution, by).await? {
        return Err(TradeError::Inconsistent(format!(
            "offer {} resolved without its dispute in {from:?}",
            moved.id
        )));
    }
    settle(ctx, conn, moved, resolution.outcome(), true).await
}
