//! Invite codes: created by admins, consumed once by a registration.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// An invite code row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Invite {
    /// Id.
    pub id: Uuid,
    /// The code a user types.
    pub code: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// No longer accepted after this.
    pub expires_at: DateTime<Utc>,
    /// Consumed by a registration.
    pub used_at: Option<DateTime<Utc>>,
    /// Revoked by an admin.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Where an invite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteStatus {
    /// Can be used.
    Valid,
    /// Already consumed.
    Used,
    /// Revoked by an admin.
    Revoked,
    /// Past its expiry.
    Expired,
}

impl InviteStatus {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Used => "used",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

impl Invite {
    /// The invite's status at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> InviteStatus {
        if self.used_at.is_some() {
            InviteStatus::Used
        } else if self.revoked_at.is_some() {
            InviteStatus::Revoked
        } else if self.expires_at <= now {
            InviteStatus::Expired
        } else {
            InviteStatus::Valid
        }
    }
}

const COLUMNS: &str = "id, code, created_at, expires_at, used_at, revoked_at";

/// Creates an invite.
pub async fn create(
    pool: &PgPool,
    code: &str,
    expires_at: DateTime<Utc>,
) -> Result<Invite, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into invite_codes (id, code, expires_at) values ($1, $2, $3) returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(code)
    .bind(expires_at)
    .fetch_one(pool)
    .await
}

/// Lists invites, newest first.
pub async fn list(pool: &PgPool, limit: i64) -> Result<Vec<Invite>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from invite_codes order by created_at desc, id limit $1"
    )))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Finds an invite by code.
pub async fn find(pool: &PgPool, code: &str) -> Result<Option<Invite>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from invite_codes where code = $1"
    )))
    .bind(code)
    .fetch_optional(pool)
    .await
}

/// Finds and locks an invite inside a transaction.
pub async fn find_for_update(
    conn: &mut PgConnection,
    code: &str,
) -> Result<Option<Invite>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from invite_codes where code = $1 for update"
    )))
    .bind(code)
    .fetch_optional(conn)
    .await
}

/// Marks an unused invite used; false if it was already used or revoked.
pub async fn consume(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update invite_codes set used_at = now()
          where id = $1 and used_at is null and revoked_at is null and expires_at > now()",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes an unused invite; false if it was used or already revoked.
pub async fn revoke(pool: &PgPool, code: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update invite_codes set revoked_at = now()
          where code = $1 and used_at is null and revoked_at is null",
    )
    .bind(code)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
