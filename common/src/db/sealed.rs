//! Trade data stored under an older `DATA_SECRETS` key (or none: rows from before sealing),
//! as the re-sealing step reads and rewrites it. Rows are picked `for update skip locked`, so
//! workers running the step at once take different rows, and a rewrite happens in the
//! transaction that read the row.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::keyring::data::{Sealed, PLAINTEXT};

/// A value as stored: plaintext text (key id 0) or sealed bytes.
fn stored(key_id: i16, text: Option<String>, sealed: Option<Vec<u8>>) -> Option<Sealed> {
    if key_id == PLAINTEXT {
        text.map(Sealed::plaintext)
    } else {
        sealed.map(|bytes| Sealed { key_id, bytes })
    }
}

/// Offers whose payment details are not under `current`: (offer, payment details).
pub async fn stale_offers(
    conn: &mut PgConnection,
    current: i16,
    limit: i64,
) -> Result<Vec<(Uuid, Sealed)>, sqlx::Error> {
    let rows: Vec<(Uuid, i16, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
        "select id, data_key_id, payment_details, payment_details_sealed from offers
          where data_key_id <> $1 and trade_data_deleted_at is null
          limit $2 for update skip locked",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, key, text, sealed)| stored(key, text, sealed).map(|s| (id, s)))
        .collect())
}

/// Stores an offer's payment details sealed anew.
pub async fn reseal_offer(
    conn: &mut PgConnection,
    id: Uuid,
    details: &Sealed,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update offers set payment_details = null, payment_details_sealed = $2, data_key_id = $3
          where id = $1",
    )
    .bind(id)
    .bind(&details.bytes)
    .bind(details.key_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A receipt not under `current`: its offer, image and note as stored.
pub struct StaleReceipt {
    /// The offer.
    pub offer_id: Uuid,
    /// The image.
    pub image: Sealed,
    /// The note, if any.
    pub note: Option<Sealed>,
}

/// Receipts (not deleted) whose image is not under `current`.
pub async fn stale_receipts(
    conn: &mut PgConnection,
    current: i16,
    limit: i64,
) -> Result<Vec<StaleReceipt>, sqlx::Error> {
    type Row = (Uuid, i16, Option<Vec<u8>>, Option<String>, Option<Vec<u8>>);
    let rows: Vec<Row> = sqlx::query_as(
        "select offer_id, key_id, image, note, note_sealed from receipts
          where key_id <> $1 and deleted_at is null
          limit $2 for update skip locked",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(offer_id, key_id, image, note, note_sealed)| {
            Some(StaleReceipt {
                offer_id,
                image: Sealed {
                    key_id,
                    bytes: image?,
                },
                note: stored(key_id, note, note_sealed),
            })
        })
        .collect())
}

/// Stores a receipt sealed anew.
pub async fn reseal_receipt(
    conn: &mut PgConnection,
    offer_id: Uuid,
    image: &Sealed,
    note: Option<&Sealed>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update receipts set image = $2, note = null, note_sealed = $3, key_id = $4
          where offer_id = $1",
    )
    .bind(offer_id)
    .bind(&image.bytes)
    .bind(note.map(|n| &n.bytes))
    .bind(image.key_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Evidence images (not deleted) not under `current`: (id, offer, image).
pub async fn stale_evidence(
    conn: &mut PgConnection,
    current: i16,
    limit: i64,
) -> Result<Vec<(Uuid, Uuid, Sealed)>, sqlx::Error> {
    let rows: Vec<(Uuid, Uuid, i16, Option<Vec<u8>>)> = sqlx::query_as(
        "select id, offer_id, key_id, image from dispute_evidence
          where key_id <> $1 and deleted_at is null
          limit $2 for update skip locked",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, offer, key_id, image)| {
            Some((
                id,
                offer,
                Sealed {
                    key_id,
                    bytes: image?,
                },
            ))
        })
        .collect())
}

/// Stores an evidence image sealed anew.
pub async fn reseal_evidence(
    conn: &mut PgConnection,
    id: Uuid,
    image: &Sealed,
) -> Result<(), sqlx::Error> {
    sqlx::query("update dispute_evidence set image = $2, key_id = $3 where id = $1")
        .bind(id)
        .bind(&image.bytes)
        .bind(image.key_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Dispute messages (not deleted) not under `current`: (id, offer, text).
pub async fn stale_messages(
    conn: &mut PgConnection,
    current: i16,
    limit: i64,
) -> Result<Vec<(i64, Uuid, Sealed)>, sqlx::Error> {
    let rows: Vec<(i64, Uuid, i16, Option<String>, Option<Vec<u8>>)> = sqlx::query_as(
        "select id, offer_id, key_id, body, body_sealed from dispute_messages
          where key_id <> $1 and deleted_at is null
          limit $2 for update skip locked",
    )
    .bind(current)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, offer, key, body, sealed)| {
            stored(key, body, sealed).map(|s| (id, offer, s))
        })
        .collect())
}

/// Stores a message's text sealed anew.
pub async fn reseal_message(
    conn: &mut PgConnection,
    id: i64,
    body: &Sealed,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update dispute_messages set body = null, body_sealed = $2, key_id = $3 where id = $1",
    )
    .bind(id)
    .bind(&body.bytes)
    .bind(body.key_id)
    .execute(conn)
    .await?;
    Ok(())
}
