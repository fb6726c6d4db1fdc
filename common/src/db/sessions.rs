//! Anonymous sessions, known only by the hash of the BAT that currently authenticates them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A session row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    /// Id (random; never shown to anyone but the session itself).
    pub id: Uuid,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Ends, unless renewed.
    pub expires_at: DateTime<Utc>,
    /// Ended by logout.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Records a BAT as redeemed; false if it was redeemed before (a replay).
pub async fn redeem_bat(conn: &mut PgConnection, bat_hash: &[u8; 32]) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("insert into bat_redemptions (bat_hash) values ($1) on conflict do nothing")
            .bind(bat_hash.as_slice())
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Opens a session authenticated by `bat_hash` until `expires_at`.
pub async fn open(
    conn: &mut PgConnection,
    bat_hash: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<Session, sqlx::Error> {
    sqlx::query_as(
        "insert into sessions (id, bat_hash, expires_at) values ($1, $2, $3)
         returning id, created_at, expires_at, ended_at",
    )
    .bind(Uuid::new_v4())
    .bind(bat_hash.as_slice())
    .bind(expires_at)
    .fetch_one(conn)
    .await
}

/// The session a BAT authenticates, live or not.
pub async fn by_bat(pool: &PgPool, bat_hash: &[u8; 32]) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as("select id, created_at, expires_at, ended_at from sessions where bat_hash = $1")
        .bind(bat_hash.as_slice())
        .fetch_optional(pool)
        .await
}

/// Moves a live session onto a new BAT with a new expiry; `None` if it is no longer live.
pub async fn renew(
    conn: &mut PgConnection,
    id: Uuid,
    new_bat_hash: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as(
        "update sessions set bat_hash = $2, expires_at = $3
          where id = $1 and ended_at is null and expires_at > now()
         returning id, created_at, expires_at, ended_at",
    )
    .bind(id)
    .bind(new_bat_hash.as_slice())
    .bind(expires_at)
    .fetch_optional(conn)
    .await
}

/// Ends a live session (logout); false if it had already ended.
pub async fn end(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("update sessions set ended_at = now() where id = $1 and ended_at is null")
            .bind(id)
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}
