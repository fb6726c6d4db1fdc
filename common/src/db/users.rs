//! Registered users (a pubkey and a status, nothing else) and registration nonces.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A user row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// BIP-340 x-only pubkey, lowercase hex.
    pub pubkey: String,
    /// `active` or `inactive`.
    pub status: String,
    /// Registered.
    pub created_at: DateTime<Utc>,
}

/// Records a nonce; false if it was seen before.
pub async fn record_nonce(conn: &mut PgConnection, nonce: &str) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("insert into registration_nonces (nonce) values ($1) on conflict do nothing")
            .bind(nonce)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Inserts a user; a unique violation on `users_pubkey_key` means the pubkey is taken.
pub async fn insert(
    conn: &mut PgConnection,
    pubkey: &str,
    invite_id: Uuid,
) -> Result<User, sqlx::Error> {
    sqlx::query_as(
        "insert into users (id, pubkey, invite_code_id) values ($1, $2, $3)
         returning id, pubkey, status, created_at",
    )
    .bind(Uuid::new_v4())
    .bind(pubkey)
    .bind(invite_id)
    .fetch_one(conn)
    .await
}

/// Finds a user by pubkey.
pub async fn find_by_pubkey(pool: &PgPool, pubkey: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as("select id, pubkey, status, created_at from users where pubkey = $1")
        .bind(pubkey)
        .fetch_optional(pool)
        .await
}

/// Sets a user's status; `None` when there is no such user.
pub async fn set_status(
    pool: &PgPool,
    id: Uuid,
    status: &str,
) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as(
        "update users set status = $2, updated_at = now() where id = $1
         returning id, pubkey, status, created_at",
    )
    .bind(id)
    .bind(status)
    .fetch_optional(pool)
    .await
}

/// Users (admins), optionally of one status, oldest first, keyset-paged after
/// `(created_at, id)`.
pub async fn list(
    pool: &PgPool,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as(
        "select id, pubkey, status, created_at from users
          where ($1::text is null or status = $1)
            and ($2::timestamptz is null or (created_at, id) > ($2, $3))
          order by created_at, id
          limit $4",
    )
    .bind(status)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(pool)
    .await
}
