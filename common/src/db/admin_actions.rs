//! The append-only record of what admins did: who, what, on what, when, why. Rows are only ever
//! inserted (a trigger refuses updates and deletes).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// One admin action.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AdminAction {
    /// Sequence number.
    pub id: i64,
    /// The admin's name (`ADMIN_TOKENS`).
    pub admin_name: String,
    /// What was done, e.g. `resolve_dispute`.
    pub action: String,
    /// On what (an offer, user, invite or provider id).
    pub target: String,
    /// Why, if the admin said.
    pub note: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Records an action, in the transaction of the write it describes.
pub async fn record(
    conn: &mut PgConnection,
    admin_name: &str,
    action: &str,
    target: &str,
    note: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into admin_actions (admin_name, action, target, note) values ($1, $2, $3, $4)",
    )
    .bind(admin_name)
    .bind(action)
    .bind(target)
    .bind(note)
    .execute(conn)
    .await?;
    Ok(())
}

/// Actions, newest first, before the sequence number `before` when given.
pub async fn list(
    pool: &PgPool,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<AdminAction>, sqlx::Error> {
    sqlx::query_as(
        "select id, admin_name, action, target, note, created_at from admin_actions
          where ($1::bigint is null or id < $1)
          order by id desc limit $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}
