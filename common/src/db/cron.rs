//! Periodic job slots: one row per (job, slot) decides which worker enqueues a periodic run.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Claims a slot; true for the one caller across the fleet that should enqueue it.
pub async fn claim_slot(
    conn: &mut PgConnection,
    job: &str,
    slot: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("insert into cron_slots (job, slot) values ($1, $2) on conflict do nothing")
            .bind(job)
            .bind(slot)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}
