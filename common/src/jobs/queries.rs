//! Read-only questions about apalis' own `apalis.jobs` table: whether a release is already on
//! its way, and which jobs gave up. Kept here, beside the job definitions, so no repository
//! reaches into the queue's tables.

use std::collections::HashSet;

use sqlx::PgPool;
use uuid::Uuid;

use super::{Job, ReleasePayouts, WatchMintQuote};

/// Whether a release job for `offer_id` is waiting, running, or due to be retried: the
/// reconciliation's re-enqueue of an overdue release adds one only when none is.
pub async fn release_queued(pool: &PgPool, offer_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (
            select 1 from apalis.jobs
             where job_type = $1
               and (status in ('Pending', 'Queued', 'Running')
                    or (status = 'Failed' and attempts < max_attempts))
               -- CASE fixes the order: only release jobs' payloads are decoded.
               and case when job_type = $1
                        then convert_from(job, 'UTF8')::jsonb ->> 'offer_id' end = $2::text)",
    )
    .bind(ReleasePayouts::QUEUE)
    .bind(offer_id)
    .fetch_one(pool)
    .await
}

/// Whether a treasury withdrawal job is waiting, running, or due to be retried: the
/// reconciliation enqueues one for a withdrawal in flight only when none is.
pub async fn withdrawal_queued(pool: &PgPool) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (
            select 1 from apalis.jobs
             where job_type = $1
               and (status in ('Pending', 'Queued', 'Running')
                    or (status = 'Failed' and attempts < max_attempts)))",
    )
    .bind(crate::jobs::WithdrawTreasury::QUEUE)
    .fetch_one(pool)
    .await
}

/// The quotes among `quote_ids` that have a watcher waiting, running, or due to be retried. The
/// quote sweep starts a chain only for the others: under a backlog (workers killed, the mint
/// stopped) a quote's watcher can wait in the queue longer than the sweep's two minutes, and
/// every sweep would otherwise add one more chain per open quote, each minute, to that backlog.
pub async fn watched_quotes(
    pool: &PgPool,
    quote_ids: &[String],
) -> Result<HashSet<String>, sqlx::Error> {
    let rows: Vec<String> = sqlx::query_scalar(
        "select distinct quote_id from (
            select case when job_type = $1
                        then convert_from(job, 'UTF8')::jsonb ->> 'quote_id' end as quote_id
              from apalis.jobs
             where job_type = $1
               and (status in ('Pending', 'Queued', 'Running')
                    or (status = 'Failed' and attempts < max_attempts))) live
          where quote_id = any($2)",
    )
    .bind(WatchMintQuote::QUEUE)
    .bind(quote_ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Jobs that will not run again (killed, or failed with no attempts left), per queue.
pub async fn dead_jobs(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select job_type, count(*) from apalis.jobs
          where status = 'Killed' or (status = 'Failed' and attempts >= max_attempts)
          group by job_type order by job_type",
    )
    .fetch_all(pool)
    .await
}

/// Deletes up to `batch` finished jobs: completed ones done longer than `done_older_than` ago,
/// and dead ones (killed, or failed with no attempts left) longer than `dead_older_than` ago.
/// Jobs that may still run (pending, queued, running, failed with attempts left) are never
/// touched. apalis-postgres' own vacuum query deletes every finished job regardless of age and
/// runs `VACUUM`; dead jobs must outlive the alert that reports them, so this one is by age.
pub async fn prune_finished(
    pool: &PgPool,
    done_older_than: std::time::Duration,
    dead_older_than: std::time::Duration,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let age = |d: std::time::Duration| {
        chrono::Duration::from_std(d).map_err(|e| sqlx::Error::Encode(Box::new(e)))
    };
    let done = sqlx::query(
        "delete from apalis.jobs where id in (
            select id from apalis.jobs
             where (status = 'Done' and coalesce(done_at, run_at) < now() - $1)
                or ((status = 'Killed' or (status = 'Failed' and attempts >= max_attempts))
                    and coalesce(done_at, run_at) < now() - $2)
             limit $3)",
    )
    .bind(age(done_older_than)?)
    .bind(age(dead_older_than)?)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
