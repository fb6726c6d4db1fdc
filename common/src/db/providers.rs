//! Fiat payment providers (a bank transfer scheme, a QR payment network) offers refer to.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A provider row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Provider {
    /// Id.
    pub id: Uuid,
    /// Display name, unique.
    pub name: String,
    /// `bank_transfer` or `payment_qr`.
    pub kind: String,
    /// Optional icon.
    pub icon_url: Option<String>,
    /// Offered to makers.
    pub active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, name, kind, icon_url, active, created_at";

/// Creates a provider; a unique violation means the name is taken.
pub async fn create(
    pool: &PgPool,
    name: &str,
    kind: &str,
    icon_url: Option<&str>,
    active: bool,
) -> Result<Provider, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into fiat_providers (id, name, kind, icon_url, active) values ($1, $2, $3, $4, $5)
         returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(name)
    .bind(kind)
    .bind(icon_url)
    .bind(active)
    .fetch_one(pool)
    .await
}

/// Updates a provider; `None` if there is none.
pub async fn update(
    pool: &PgPool,
    id: Uuid,
    name: &str,
    kind: &str,
    icon_url: Option<&str>,
    active: bool,
) -> Result<Option<Provider>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update fiat_providers set name = $2, kind = $3, icon_url = $4, active = $5,
                updated_at = now()
          where id = $1 returning {COLUMNS}"
    )))
    .bind(id)
    .bind(name)
    .bind(kind)
    .bind(icon_url)
    .bind(active)
    .fetch_optional(pool)
    .await
}

/// Deletes a provider no offer refers to; a foreign-key violation (SQLSTATE 23503) means it is
/// in use.
pub async fn delete(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("delete from fiat_providers where id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Lists providers by name; only active ones unless `all`.
pub async fn list(pool: &PgPool, all: bool) -> Result<Vec<Provider>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from fiat_providers where active or $1 order by name"
    )))
    .bind(all)
    .fetch_all(pool)
    .await
}

/// One provider.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Provider>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from fiat_providers where id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}
