//! Evidence: each side of a dispute may add up to three images (checked by content, at most
//! `RECEIPT_MAX_BYTES` each, stored without their metadata) while the dispute is open. Shown to
//! the two parties and admins only; never logged.

use uuid::Uuid;

use super::receipt::stored_image;
use super::{load_visible, TradeCtx, TradeError, Viewer};
use crate::db::{disputes, offers};
use crate::domain::dispute::DisputeStage;
use crate::keyring::data::Field;

/// Most images one side may add to a dispute.
pub const EVIDENCE_MAX_PER_SIDE: i64 = 3;

/// Adds an image to the dispute of `offer_id` for the party `session` is; its id.
pub async fn add(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    image: Vec<u8>,
) -> Result<Uuid, TradeError> {
    let (offer, viewer) = load_visible(ctx, offer_id, Some(session)).await?;
    let Viewer::Party(role) = viewer else {
        return Err(TradeError::NotFound);
    };
    let max = ctx.config.limits.receipt_max_bytes;
    if image.len() > max {
        return Err(TradeError::TooLarge {
            code: "evidence_too_large",
            field: "image",
            max,
        });
    }
    let (content_type, image) = stored_image(&image).ok_or(TradeError::NotAnImage)?;
    let mut tx = ctx.pool.begin().await?;
    // The row lock serialises additions, so the count below cannot be raced past the limit.
    let locked = offers::get_for_update(&mut tx, offer.id)
        .await?
        .ok_or(TradeError::NotFound)?;
    let open = disputes::get(&mut tx, offer.id)
        .await?
        .is_some_and(|d| d.stage != DisputeStage::Resolved);
    if !open {
        return Err(TradeError::WrongState(locked.status));
    }
    if disputes::evidence_count(&mut tx, offer.id, role).await? >= EVIDENCE_MAX_PER_SIDE {
        return Err(TradeError::invalid(
            "too_much_evidence",
            "image",
            format!("at most {EVIDENCE_MAX_PER_SIDE} images per side"),
        ));
    }
    let sealed = ctx.seal(offer.id, Field::Evidence, &image);
    let id = disputes::add_evidence(&mut tx, offer.id, role, content_type, &sealed).await?;
    tx.commit().await?;
    Ok(id)
}
