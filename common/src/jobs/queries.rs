//! Read-only questions about apalis' own `apalis.jobs` table: whether a release is already on
//! its way, and which jobs gave up. Kept here, beside the job definitions, so no repository
//! reaches into the queue's tables.

use sqlx::PgPool;
use uuid::Uuid;

use super::{Job, ReleasePayouts};

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
