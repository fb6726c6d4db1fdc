//! Payment receipts (images the taker uploads as proof of the fiat payment). Shown only to the
//! offer's maker and taker and to admins; never logged.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::keyring::data::Sealed;

/// A stored receipt, as stored: sealed under `key_id` (see [`crate::keyring::data`]).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Receipt {
    /// MIME type of the image.
    pub content_type: String,
    /// The image, sealed (plaintext under key id 0); `None` once deleted by retention.
    pub image: Option<Vec<u8>>,
    /// The taker's note in plaintext (key id 0 only).
    pub note: Option<String>,
    /// The taker's note, sealed.
    pub note_sealed: Option<Vec<u8>>,
    /// The `DATA_SECRETS` id the image and note are sealed under (0: plaintext).
    pub key_id: i16,
    /// When retention deleted the image and the note.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Stores the receipt of `offer_id`, inside the caller's transaction (the one that moves the
/// offer to RECEIPT_SUBMITTED).
pub async fn insert(
    conn: &mut PgConnection,
    offer_id: Uuid,
    content_type: &str,
    image: &Sealed,
    note: Option<&Sealed>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into receipts (offer_id, content_type, image, note_sealed, key_id)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(offer_id)
    .bind(content_type)
    .bind(&image.bytes)
    .bind(note.map(|n| &n.bytes))
    .bind(image.key_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The receipt of `offer_id`, if one was uploaded.
pub async fn get(pool: &PgPool, offer_id: Uuid) -> Result<Option<Receipt>, sqlx::Error> {
    sqlx::query_as(
        "select content_type, image, note, note_sealed, key_id, deleted_at
           from receipts where offer_id = $1",
    )
    .bind(offer_id)
    .fetch_optional(pool)
    .await
}
