//! Wallet leases: at most one process has a wallet file open at a time.
//!
//! A lease is a row naming its holder, an expiry and a generation. Taking one succeeds when
//! nobody holds it, when we already hold it, or when the holder let it lapse (it crashed or lost
//! its database); every take draws a new generation from a sequence, so the generation an open
//! wallet was opened under goes stale the moment anyone takes the lease again (fencing, see
//! [`crate::wallet::fence`]). Extending and giving back name the generation: a holder can only
//! act on the lease it took.

use std::time::Duration;

use sqlx::PgPool;

/// Takes the lease on `wallet_id` for `holder`: its new generation, or `None` when another live
/// holder has it.
pub async fn acquire(
    pool: &PgPool,
    wallet_id: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "insert into wallet_leases (wallet_id, holder, lease_until, generation)
         values ($1, $2, now() + make_interval(secs => $3), nextval('wallet_lease_generation'))
         on conflict (wallet_id) do update
            set holder = excluded.holder, lease_until = excluded.lease_until,
                generation = excluded.generation
          where wallet_leases.holder = excluded.holder or wallet_leases.lease_until < now()
         returning generation",
    )
    .bind(wallet_id)
    .bind(holder)
    .bind(ttl.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Extends the lease of one wallet if `holder` still has it at `generation` and it has not
/// lapsed; false otherwise (the generation is stale).
pub async fn confirm(
    pool: &PgPool,
    wallet_id: &str,
    holder: &str,
    generation: i64,
    ttl: Duration,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update wallet_leases set lease_until = now() + make_interval(secs => $4)
          where wallet_id = $1 and holder = $2 and generation = $3 and lease_until >= now()",
    )
    .bind(wallet_id)
    .bind(holder)
    .bind(generation)
    .bind(ttl.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends every lease `holder` still has at the given generations (`held` pairs a wallet with
/// its generation); returns the wallets it still holds.
pub async fn renew(
    pool: &PgPool,
    holder: &str,
    held: &[(String, i64)],
    ttl: Duration,
) -> Result<Vec<String>, sqlx::Error> {
    let (ids, generations): (Vec<String>, Vec<i64>) = held.iter().cloned().unzip();
    sqlx::query_scalar(
        "update wallet_leases l set lease_until = now() + make_interval(secs => $4)
           from unnest($2::text[], $3::bigint[]) as h(wallet_id, generation)
          where l.wallet_id = h.wallet_id and l.generation = h.generation
            and l.holder = $1 and l.lease_until >= now()
         returning l.wallet_id",
    )
    .bind(holder)
    .bind(&ids)
    .bind(&generations)
    .bind(ttl.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Gives back the lease `holder` took at `generation` (nothing if it was taken since).
pub async fn release(
    pool: &PgPool,
    wallet_id: &str,
    holder: &str,
    generation: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "delete from wallet_leases where wallet_id = $1 and holder = $2 and generation = $3",
    )
    .bind(wallet_id)
    .bind(holder)
    .bind(generation)
    .execute(pool)
    .await?;
    Ok(())
}
