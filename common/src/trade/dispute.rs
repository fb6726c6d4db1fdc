//! A dispute as its parties and the admins see it: stage, reason, revealed keys, messages and
//! evidence, and each evidence image.

use uuid::Uuid;

use super::{load, load_visible, TradeCtx, TradeError, Viewer};
use crate::db::disputes::{self, Dispute, Evidence, Message};
use crate::db::offers::Offer;
use crate::keyring::data::Field;

/// Everything about one dispute.
#[derive(Debug, Clone)]
pub struct DisputeFile {
    /// The offer.
    pub offer: Offer,
    /// Its dispute.
    pub dispute: Dispute,
    /// Messages, oldest first, their text opened.
    pub messages: Vec<Message>,
    /// Evidence (metadata), oldest first.
    pub evidence: Vec<Evidence>,
}

/// Who asks: a session (must be a party) or an admin.
#[derive(Debug, Clone, Copy)]
pub enum Reader {
    /// A trading session.
    Session(Uuid),
    /// An admin.
    Admin,
}

async fn offer_for(ctx: &TradeCtx, reader: Reader, offer_id: Uuid) -> Result<Offer, TradeError> {
    match reader {
        Reader::Admin => load(ctx, offer_id).await,
        Reader::Session(s) => match load_visible(ctx, offer_id, Some(s)).await? {
            (offer, Viewer::Party(_)) => Ok(offer),
            _ => Err(TradeError::NotFound),
        },
    }
}

/// The dispute of `offer_id`, or [`TradeError::NoDispute`].
pub async fn file(
    ctx: &TradeCtx,
    reader: Reader,
    offer_id: Uuid,
) -> Result<DisputeFile, TradeError> {
    let offer = offer_for(ctx, reader, offer_id).await?;
    let mut conn = ctx.pool.acquire().await?;
    let dispute = disputes::get(&mut conn, offer.id)
        .await?
        .ok_or(TradeError::NoDispute)?;
    drop(conn);
    let mut messages = disputes::messages(&ctx.pool, offer.id).await?;
    for m in &mut messages {
        if let Some(sealed) = m.body_sealed.take() {
            let text = ctx
                .config
                .data
                .open_text(m.key_id, offer.id, Field::Message, &sealed)?;
            m.body = Some(text);
        }
    }
    Ok(DisputeFile {
        messages,
        evidence: disputes::evidence(&ctx.pool, offer.id).await?,
        offer,
        dispute,
    })
}

/// One evidence image: its type and bytes.
pub async fn evidence_image(
    ctx: &TradeCtx,
    reader: Reader,
    offer_id: Uuid,
    evidence_id: Uuid,
) -> Result<(String, Vec<u8>), TradeError> {
    let offer = offer_for(ctx, reader, offer_id).await?;
    let (content_type, image, key_id) = disputes::evidence_image(&ctx.pool, offer.id, evidence_id)
        .await?
        .ok_or(TradeError::NoDispute)?;
    let image = image.ok_or(TradeError::TradeDataDeleted)?;
    Ok((
        content_type,
        ctx.config
            .data
            .open(key_id, offer.id, Field::Evidence, &image)?,
    ))
}
