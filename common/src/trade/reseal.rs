//! Re-sealing trade data under the current `DATA_SECRETS` key: what an older key (or none:
//! rows written before sealing) holds is opened and sealed anew, one batch per table per call,
//! so an operator can rotate the secret (put the new one first, keep the old one until this
//! has nothing left to do) and drop the old one without a copy of the data under it.
//!
//! Safe to repeat and to run on several workers at once: rows are picked with
//! `for update skip locked` and rewritten in the same transaction, a row already under the
//! current key is not picked again, and a crash before the commit leaves the row as it was.

use super::{TradeCtx, TradeError};
use crate::db::sealed::{self, Table};
use crate::keyring::data::{Field, Sealed};
use uuid::Uuid;

/// Re-sealing what `stored` holds for `field` of `offer`.
fn renew(ctx: &TradeCtx, offer: Uuid, field: Field, stored: &Sealed) -> Result<Sealed, TradeError> {
    let plain = ctx.config.data.open_stored(offer, field, stored)?;
    Ok(ctx.seal(offer, field, &plain))
}

/// Re-seals up to `batch` rows of each table (payment details, receipts, evidence, dispute
/// messages); returns how many rows it re-sealed.
pub async fn batch(ctx: &TradeCtx, batch: i64) -> Result<u64, TradeError> {
    let current = ctx.config.data.current();
    let mut tx = ctx.pool.begin().await?;
    let mut n = 0u64;
    for (table, field) in [
        (Table::Offers, Field::PaymentDetails),
        (Table::Receipts, Field::ReceiptImage),
        (Table::Evidence, Field::Evidence),
        (Table::Messages, Field::Message),
    ] {
        for row in sealed::stale(&mut tx, table, current, batch).await? {
            let Some(value) = row.value() else { continue };
            let value = renew(ctx, row.offer_id, field, &value)?;
            let note = row
                .note()
                .map(|note| renew(ctx, row.offer_id, Field::ReceiptNote, &note))
                .transpose()?;
            sealed::reseal(&mut tx, table, &row, &value, note.as_ref()).await?;
            n += 1;
        }
    }
    tx.commit().await?;
    Ok(n)
}
