//! The taker's receipt of the fiat payment: TAKER_BOND_PAID → RECEIPT_SUBMITTED with the image
//! (checked by content, stored without its metadata, never logged) and an optional note; the
//! maker now confirms or marks an issue. Receipts are shown to the two parties and admins only.

use uuid::Uuid;

use super::{load_as, load_visible, party_move, Role, TradeCtx, TradeError, Viewer};
use crate::db::offers::Offer;
use crate::db::receipts::{self, Receipt};
use crate::domain::image;
use crate::domain::offer::{transition, Event};
use crate::keyring::data::Field;

/// Longest note, in characters.
pub const NOTE_MAX_CHARS: usize = 1000;

/// An uploaded receipt.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The image bytes.
    pub image: Vec<u8>,
    /// The taker's note.
    pub note: Option<String>,
}

/// An uploaded image as it is stored: its media type and its bytes without metadata (EXIF,
/// XMP, IPTC, comments, thumbnails; see [`crate::domain::image`]). `None` when it is not a
/// PNG, JPEG or WebP file that can be read.
pub fn stored_image(bytes: &[u8]) -> Option<(&'static str, Vec<u8>)> {
    let kind = image::sniff(bytes)?;
    let clean = image::strip_metadata(kind, bytes).ok()?;
    Some((kind.content_type(), clean))
}

/// Submits the receipt of `offer_id` for its taker `session`.
pub async fn submit(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    upload: Upload,
) -> Result<Offer, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Taker).await?;
    let to = transition(offer.status, Event::SubmitReceipt)
        .map_err(|_| TradeError::WrongState(offer.status))?;
    let max = ctx.config.limits.receipt_max_bytes;
    if upload.image.len() > max {
        return Err(TradeError::TooLarge {
            code: "receipt_too_large",
            field: "image",
            max,
        });
    }
    let note = upload.note.filter(|n| !n.trim().is_empty());
    if note
        .as_ref()
        .is_some_and(|n| n.chars().count() > NOTE_MAX_CHARS)
    {
        return Err(TradeError::invalid(
            "note_too_long",
            "note",
            format!("at most {NOTE_MAX_CHARS} characters"),
        ));
    }
    let (content_type, image) = stored_image(&upload.image).ok_or_else(|| {
        TradeError::invalid(
            "receipt_not_an_image",
            "image",
            "the receipt must be a PNG, JPEG or WebP image",
        )
    })?;
    drop(upload.image);
    let mut tx = ctx.pool.begin().await?;
    let timer = ctx.config.timers.receipt_submitted;
    let moved = party_move(ctx, &mut tx, &offer, to, Some(timer)).await?;
    let image = ctx.seal(offer.id, Field::ReceiptImage, &image);
    let note = note.map(|n| ctx.seal(offer.id, Field::ReceiptNote, n.as_bytes()));
    receipts::insert(&mut tx, offer.id, content_type, &image, note.as_ref()).await?;
    tx.commit().await?;
    Ok(moved)
}

/// A receipt as its readers see it.
#[derive(Debug, Clone)]
pub struct ReceiptFile {
    /// MIME type of the image.
    pub content_type: String,
    /// The image; `None` once deleted by retention.
    pub image: Option<Vec<u8>>,
    /// The taker's note, if any.
    pub note: Option<String>,
}

/// The receipt of `offer_id`, for one of its parties (`session`) or an admin (`None`),
/// opened.
pub async fn get(
    ctx: &TradeCtx,
    session: Option<Uuid>,
    offer_id: Uuid,
) -> Result<Option<ReceiptFile>, TradeError> {
    let offer = match session {
        Some(s) => {
            let (offer, viewer) = load_visible(ctx, offer_id, Some(s)).await?;
            if viewer == Viewer::Public {
                return Err(TradeError::NotFound);
            }
            offer
        }
        None => super::load(ctx, offer_id).await?,
    };
    let Some(Receipt {
        content_type,
        image,
        note,
        note_sealed,
        key_id,
        ..
    }) = receipts::get(&ctx.pool, offer.id).await?
    else {
        return Ok(None);
    };
    let image = image
        .map(|i| {
            ctx.config
                .data
                .open(key_id, offer.id, Field::ReceiptImage, &i)
        })
        .transpose()?;
    let note = match note_sealed {
        Some(n) => Some(
            ctx.config
                .data
                .open_text(key_id, offer.id, Field::ReceiptNote, &n)?,
        ),
        None => note,
    };
    Ok(Some(ReceiptFile {
        content_type,
        image,
        note,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_readable_images_are_stored() {
        // The smallest valid PNG (1×1).
        let png: &[u8] = &[
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
            0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
            0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0a, 0x49, 0x44, 0x41, 0x54, 0x78,
            0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00,
            0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
        ];
        assert_eq!(stored_image(png), Some(("image/png", png.to_vec())));
        assert_eq!(stored_image(b"\x89PNG\r\n\x1a\nrest"), None);
        assert_eq!(stored_image(b"GIF89a"), None);
        assert_eq!(stored_image(b""), None);
    }
}
