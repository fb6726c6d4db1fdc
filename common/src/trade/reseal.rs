//! Re-sealing trade data under the current `DATA_SECRETS` key: what an older key (or none:
//! rows written before sealing) holds is opened and sealed anew, one batch per table per call,
//! so an operator can rotate the secret (put the new one first, keep the old one until this
//! has nothing left to do) and drop the old one without a copy of the data under it.
//!
//! Safe to repeat and to run on several workers at once: rows are picked with
//! `for update skip locked` and rewritten in the same transaction, a row already under the
//! current key is not picked again, and a crash before the commit leaves the row as it was.

use super::{TradeCtx, TradeError};
use crate::db::sealed;
use crate::keyring::data::Field;

/// Re-seals up to `batch` rows of each table (payment details, receipts, evidence, dispute
/// messages); returns how many rows it re-sealed.
pub async fn batch(ctx: &TradeCtx, batch: i64) -> Result<u64, TradeError> {
    let current = ctx.config.data.current();
    let mut tx = ctx.pool.begin().await?;
    let mut n = 0u64;
    for (id, stored) in sealed::stale_offers(&mut tx, current, batch).await? {
        let plain = ctx.open(stored.key_id, id, Field::PaymentDetails, &stored.bytes)?;
        let fresh = ctx.seal(id, Field::PaymentDetails, &plain);
        sealed::reseal_offer(&mut tx, id, &fresh).await?;
        n += 1;
    }
    for r in sealed::stale_receipts(&mut tx, current, batch).await? {
        let image = ctx.open(
            r.image.key_id,
            r.offer_id,
            Field::ReceiptImage,
            &r.image.bytes,
        )?;
        let image = ctx.seal(r.offer_id, Field::ReceiptImage, &image);
        let note = match r.note {
            Some(note) => {
                let plain = ctx.open(note.key_id, r.offer_id, Field::ReceiptNote, &note.bytes)?;
                Some(ctx.seal(r.offer_id, Field::ReceiptNote, &plain))
            }
            None => None,
        };
        sealed::reseal_receipt(&mut tx, r.offer_id, &image, note.as_ref()).await?;
        n += 1;
    }
    for (id, offer, stored) in sealed::stale_evidence(&mut tx, current, batch).await? {
        let plain = ctx.open(stored.key_id, offer, Field::Evidence, &stored.bytes)?;
        sealed::reseal_evidence(&mut tx, id, &ctx.seal(offer, Field::Evidence, &plain)).await?;
        n += 1;
    }
    for (id, offer, stored) in sealed::stale_messages(&mut tx, current, batch).await? {
        let plain = ctx.open(stored.key_id, offer, Field::Message, &stored.bytes)?;
        sealed::reseal_message(&mut tx, id, &ctx.seal(offer, Field::Message, &plain)).await?;
        n += 1;
    }
    tx.commit().await?;
    Ok(n)
}
