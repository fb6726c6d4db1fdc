//! Trade data stored under an older `DATA_SECRETS` key (or none: rows from before sealing),
//! as the re-sealing step reads and rewrites it. Rows are picked `for update skip locked`, so
//! workers running the step at once take different rows, and a rewrite happens in the
//! transaction that read the row.

use sqlx::{FromRow, PgConnection};
use uuid::Uuid;

use crate::keyring::data::{Sealed, PLAINTEXT};

/// One stored value of a row: plaintext text (key id 0) or sealed bytes.
#[derive(Debug, Clone, FromRow)]
pub struct StaleRow {
    /// The row (a message's bigserial id as text, else the uuid).
    pub id: String,
    /// The offer it belongs to.
    pub offer_id: Uuid,
    /// The key id it is stored under.
    pub key_id: i16,
    /// Plaintext text (key id 0 and a text column).
    pub text: Option<String>,
    /// Bytes: sealed, or plaintext of a bytea column under key id 0.
    pub bytes: Option<Vec<u8>>,
    /// A receipt's note: plaintext (key id 0) or sealed.
    pub note_text: Option<String>,
    /// A receipt's sealed note.
    pub note_bytes: Option<Vec<u8>>,
}

impl StaleRow {
    /// The value as stored, if there is one.
    pub fn value(&self) -> Option<Sealed> {
        stored(self.key_id, self.text.clone(), self.bytes.clone())
    }

    /// A receipt's note as stored, if there is one.
    pub fn note(&self) -> Option<Sealed> {
        stored(self.key_id, self.note_text.clone(), self.note_bytes.clone())
    }
}

fn stored(key_id: i16, text: Option<String>, bytes: Option<Vec<u8>>) -> Option<Sealed> {
    match (text, bytes) {
        (Some(t), _) if key_id == PLAINTEXT => Some(Sealed::plaintext(t)),
        (_, Some(bytes)) => Some(Sealed { key_id, bytes }),
        _ => None,
    }
}

/// The trade data tables, with how each names its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Offers,
    Receipts,
    Evidence,
    Messages,
}

impl Table {
    /// The select of stale rows: `id, offer_id, key_id, text, bytes, note_text, note_bytes`.
    fn select(self) -> &'static str {
        match self {
            Self::Offers => {
                "select id::text, id as offer_id, data_key_id as key_id, payment_details as text,
                        payment_details_sealed as bytes, null::text as note_text,
                        null::bytea as note_bytes
                   from offers where data_key_id <> $1 and trade_data_deleted_at is null
                  limit $2 for update skip locked"
            }
            Self::Receipts => {
                "select offer_id::text as id, offer_id, key_id, null::text as text, image as bytes,
                        note as note_text, note_sealed as note_bytes
                   from receipts where key_id <> $1 and deleted_at is null
                  limit $2 for update skip locked"
            }
            Self::Evidence => {
                "select id::text, offer_id, key_id, null::text as text, image as bytes,
                        null::text as note_text, null::bytea as note_bytes
                   from dispute_evidence where key_id <> $1 and deleted_at is null
                  limit $2 for update skip locked"
            }
            Self::Messages => {
                "select id::text, offer_id, key_id, body as text, body_sealed as bytes,
                        null::text as note_text, null::bytea as note_bytes
                   from dispute_messages where key_id <> $1 and deleted_at is null
                  limit $2 for update skip locked"
            }
        }
    }

    /// The rewrite of one row: `$1` its id (text), `$2` the sealed value, `$3` the key id,
    /// and for a receipt `$4` its sealed note.
    fn update(self) -> &'static str {
        match self {
            Self::Offers => {
                "update offers set payment_details = null, payment_details_sealed = $2,
                        data_key_id = $3 where id = $1::uuid"
            }
            Self::Receipts => {
                "update receipts set image = $2, note = null, note_sealed = $4, key_id = $3
                  where offer_id = $1::uuid"
            }
            Self::Evidence => {
                "update dispute_evidence set image = $2, key_id = $3
                  where id = $1::uuid"
            }
            Self::Messages => {
                "update dispute_messages set body = null, body_sealed = $2, key_id = $3
                  where id = $1::bigint"
            }
        }
    }
}

/// Up to `limit` rows of `table` not under `current`, locked for this transaction.
pub async fn stale(
    conn: &mut PgConnection,
    table: Table,
    current: i16,
    limit: i64,
) -> Result<Vec<StaleRow>, sqlx::Error> {
    sqlx::query_as(table.select())
        .bind(current)
        .bind(limit)
        .fetch_all(conn)
        .await
}

/// Stores a row's value (and a receipt's note) sealed anew.
pub async fn reseal(
    conn: &mut PgConnection,
    table: Table,
    row: &StaleRow,
    value: &Sealed,
    note: Option<&Sealed>,
) -> Result<(), sqlx::Error> {
    let query = sqlx::query(table.update())
        .bind(&row.id)
        .bind(&value.bytes)
        .bind(value.key_id);
    let query = match table {
        Table::Receipts => query.bind(note.map(|n| &n.bytes)),
        Table::Offers | Table::Evidence | Table::Messages => query,
    };
    query.execute(conn).await?;
    Ok(())
}
