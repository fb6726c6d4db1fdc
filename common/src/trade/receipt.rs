//! The taker's receipt of the fiat payment: TAKER_BOND_PAID → RECEIPT_SUBMITTED with the image
//! (checked by content, never logged) and an optional note; the maker now confirms or marks an
//! issue. Receipts are shown to the two parties and admins only.

use uuid::Uuid;

use super::{load_as, load_visible, party_move, Role, TradeCtx, TradeError, Viewer};
use crate::db::offers::Offer;
use crate::db::receipts::{self, Receipt};
use crate::domain::offer::{transition, Event};

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

/// The image type of `bytes` by its magic number, if it is one we accept.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]) {
        Some("image/png")
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
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
    let content_type = sniff_image(&upload.image).ok_or_else(|| {
        TradeError::invalid(
            "receipt_not_an_image",
            "image",
            "the receipt must be a PNG, JPEG or WebP image",
        )
    })?;
    let mut tx = ctx.pool.begin().await?;
    let timer = ctx.config.timers.receipt_submitted;
    let moved = party_move(ctx, &mut tx, &offer, to, Some(timer)).await?;
    receipts::insert(
        &mut tx,
        offer.id,
        content_type,
        &upload.image,
        note.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(moved)
}

/// The receipt of `offer_id`, for one of its parties (`session`) or an admin (`None`).
pub async fn get(
    ctx: &TradeCtx,
    session: Option<Uuid>,
    offer_id: Uuid,
) -> Result<Option<Receipt>, TradeError> {
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
    Ok(receipts::get(&ctx.pool, offer.id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_known_by_their_magic_numbers() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff_image(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff_image(b"GIF89a"), None);
        assert_eq!(sniff_image(b""), None);
    }
}
