//! Payment receipts (images the taker uploads as proof of the fiat payment). Shown only to the
//! offer's maker and taker and to admins; never logged.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A stored receipt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Receipt {
    /// MIME type of the image.
    pub content_type: String,
    /// The image; `None` once deleted by retention.
    pub image: Option<Vec<u8>>,
    /// The taker's note, if any.
    pub note: Option<String>,
    /// When retention deleted the image and the note.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Stores the receipt of `offer_id`, inside the caller's transaction (the one that moves the
/// offer to RECEIPT_SUBMITTED).
pub async fn insert(
    conn: &mut PgConnection,
    offer_id: Uuid,
    content_type: &str,
    image: &[u8],
    note: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into receipts (offer_id, content_type, image, note) values ($1, $2, $3, $4)",
    )
    .bind(offer_id)
    .bind(content_type)
    .bind(image)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// The receipt of `offer_id`, if one was uploaded.
pub async fn get(pool: &PgPool, offer_id: Uuid) -> Result<Option<Receipt>, sqlx::Error> {
    sqlx::query_as("select content_type, image, note, deleted_at from receipts where offer_id = $1")
        .bind(offer_id)
        .fetch_optional(pool)
        .await
}
