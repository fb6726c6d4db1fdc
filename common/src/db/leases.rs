//! Wallet leases: at most one process has a wallet file open at a time.
//!
//! A lease is a row naming its holder and an expiry. Taking one succeeds when nobody holds it,
//! when we already hold it, or when the holder let it lapse (it crashed or lost its database).
//! Holders renew all their leases in one statement well before they lapse.

use std::time::Duration;

use sqlx::PgPool;

/// Takes or extends the lease on `wallet_id` for `holder`; false when another live holder has it.
pub async fn acquire(
    pool: &PgPool,
    wallet_id: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "insert into wallet_leases (wallet_id, holder, lease_until)
         values ($1, $2, now() + make_interval(secs => $3))
         on conflict (wallet_id) do update
            set holder = excluded.holder, lease_until = excluded.lease_until
          where wallet_leases.holder = excluded.holder or wallet_leases.lease_until < now()
         returning holder",
    )
    .bind(wallet_id)
    .bind(holder)
    .bind(ttl.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

/// Extends every lease `holder` still has among `wallet_ids`; returns the ones it still holds.
pub async fn renew(
    pool: &PgPool,
    holder: &str,
    wallet_ids: &[String],
    ttl: Duration,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "update wallet_leases set lease_until = now() + make_interval(secs => $3)
          where holder = $1 and wallet_id = any($2) and lease_until >= now()
         returning wallet_id",
    )
    .bind(holder)
    .bind(wallet_ids)
    .bind(ttl.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Gives a lease back.
pub async fn release(pool: &PgPool, wallet_id: &str, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from wallet_leases where wallet_id = $1 and holder = $2")
        .bind(wallet_id)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}
