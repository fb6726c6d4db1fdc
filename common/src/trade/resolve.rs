//! An admin resolves a dispute: DISPUTED → RESOLVED by MAKER_WINS, TAKER_WINS, RETURN or SPLIT
//! (SPLIT's odd sat goes to the taker, `domain::money`); DETAILS_DISPUTED → RESOLVED by
//! MAKER_WINS, RETURN or BAD_DETAILS (no fiat moved, so nobody is owed the escrow); with a note. The payouts are recorded
//! in the resolving transaction, locked to the revealed keys, and released by the release job.
//! A resolution is final: a second one finds the offer RESOLVED and is refused. The action is
//! recorded in `admin_actions` in the same transaction.

use uuid::Uuid;

use super::answer::end;
use super::{advance, load, By, TradeCtx, TradeError};
use crate::db::offers::Offer;
use crate::db::{admin_actions, disputes};
use crate::domain::dispute::{
    Author, DisputeKind, DisputeStage, MessageKind, Resolution, ResolvedBy,
};
use crate::domain::offer::{transition, Event, OfferStatus};
use crate::keyring::data::Field;

/// Resolves `offer_id` as admin `admin` with `note`.
pub async fn resolve(
    ctx: &TradeCtx,
    admin: &str,
    offer_id: Uuid,
    resolution: Resolution,
    note: &str,
) -> Result<Offer, TradeError> {
    let offer = load(ctx, offer_id).await?;
    let to = transition(offer.status, Event::AdminResolve)
        .map_err(|_| TradeError::WrongState(offer.status))?;
    super::issue::check_message(note)?;
    let kind = if offer.status == OfferStatus::DetailsDisputed {
        DisputeKind::PaymentDetails
    } else {
        DisputeKind::Receipt
    };
    if !kind.allows(resolution) {
        return Err(TradeError::invalid(
            "resolution_not_allowed",
            "resolution",
            format!("a dispute about the {kind} cannot be resolved {resolution}"),
        ));
    }
    let mut tx = ctx.pool.begin().await?;
    let moved = advance(ctx, &mut tx, &offer, offer.status, to, None, By::Platform)
        .await?
        .ok_or(TradeError::WrongState(offer.status))?;
    end(
        ctx,
        &mut tx,
        &moved,
        &[DisputeStage::WaitingMaker, DisputeStage::WaitingAdmin],
        resolution,
        ResolvedBy::Admin,
    )
    .await?;
    disputes::add_message(
        &mut tx,
        offer.id,
        Author::Admin,
        MessageKind::Resolution,
        &ctx.seal(offer.id, Field::Message, note.as_bytes()),
    )
    .await?;
    let what = format!("{}: {note}", resolution.as_str());
    admin_actions::record(
        &mut tx,
        admin,
        "resolve_dispute",
        &offer.id.to_string(),
        Some(&what),
    )
    .await?;
    tx.commit().await?;
    Ok(moved)
}
