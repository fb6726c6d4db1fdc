//! The fleet-wide cron: every worker ticks, PostgreSQL decides which one enqueues.
//!
//! On each tick a worker rounds the time to the schedule's nearest slot (rounding, not flooring,
//! so a timer that fires a little early still lands in the right slot) and inserts
//! `(job, slot)` into `cron_slots` with `ON CONFLICT DO NOTHING` in the same transaction that
//! enqueues the job. N workers, one run per slot.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use openpleb_common::db::cron::claim_slot;
use openpleb_common::jobs::{enqueue, queues, CleanupWallets, ExpireOffers, Schedule, SweepQuotes};
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::WorkerContext;

/// Every minute, at second 0.
const SWEEP_QUOTES_SCHEDULE: &str = "0 * * * * *";
const SWEEP_QUOTES_PERIOD_SECS: i64 = 60;

/// Rounds `now` to the nearest multiple of `period_secs` since the epoch.
pub fn nearest_slot(now: DateTime<Utc>, period_secs: i64) -> DateTime<Utc> {
    let ms = now.timestamp_millis();
    let period_ms = period_secs * 1000;
    let slot = (ms + period_ms / 2).div_euclid(period_ms) * period_ms;
    Utc.timestamp_millis_opt(slot).single().unwrap_or(now)
}

/// Claims `slot` of the periodic job on `queue` and enqueues `args`; true if this worker won.
async fn enqueue_periodic<T: serde::Serialize>(
    ctx: &WorkerContext,
    queue: &str,
    slot: DateTime<Utc>,
    args: &T,
) -> anyhow::Result<bool> {
    let mut tx = ctx.pool.begin().await?;
    let won = claim_slot(&mut tx, queue, slot).await?;
    if won {
        enqueue(
            &mut tx,
            queue,
            args,
            Schedule {
                max_attempts: Some(3),
                ..Schedule::default()
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(won)
}

/// Claims `slot` for the quote sweep and enqueues it; true if this worker won the slot.
pub async fn enqueue_sweep(ctx: &WorkerContext, slot: DateTime<Utc>) -> anyhow::Result<bool> {
    enqueue_periodic(ctx, queues::SWEEP_QUOTES, slot, &SweepQuotes { slot }).await
}

/// Claims `slot` for the wallet cleanup and enqueues it; true if this worker won.
pub async fn enqueue_cleanup(ctx: &WorkerContext, slot: DateTime<Utc>) -> anyhow::Result<bool> {
    enqueue_periodic(ctx, queues::CLEANUP_WALLETS, slot, &CleanupWallets { slot }).await
}

/// Claims `slot` for the overdue-offer sweep and enqueues it; true if this worker won.
pub async fn enqueue_expiry(ctx: &WorkerContext, slot: DateTime<Utc>) -> anyhow::Result<bool> {
    enqueue_periodic(ctx, queues::EXPIRE_OFFERS, slot, &ExpireOffers { slot }).await
}

/// Starts this worker's scheduler.
pub async fn start(ctx: Arc<WorkerContext>) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new().await?;
    let expiry_ctx = ctx.clone();
    let ctx_for_cleanup = ctx.clone();
    let job = Job::new_async(SWEEP_QUOTES_SCHEDULE, move |_id, _lock| {
        let ctx = ctx.clone();
        Box::pin(async move {
            let slot = nearest_slot(Utc::now(), SWEEP_QUOTES_PERIOD_SECS);
            match enqueue_sweep(&ctx, slot).await {
                Ok(true) => tracing::debug!(%slot, "enqueued quote sweep"),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "could not enqueue quote sweep"),
            }
        })
    })?;
    scheduler.add(job).await?;
    let every = ctx_expiry_period(&expiry_ctx);
    let expiry =
        Job::new_repeated_async(std::time::Duration::from_secs(every), move |_id, _lock| {
            let ctx = expiry_ctx.clone();
            Box::pin(async move {
                let slot = nearest_slot(Utc::now(), i64::try_from(every).unwrap_or(30));
                if let Err(e) = enqueue_expiry(&ctx, slot).await {
                    tracing::warn!(error = %e, "could not enqueue the expiry sweep");
                }
            })
        })?;
    scheduler.add(expiry).await?;
    let cleanup_ctx = ctx_for_cleanup.clone();
    let cleanup_every = cleanup_ctx.settings.wallet_cleanup.as_secs().max(1);
    let cleanup = Job::new_repeated_async(
        std::time::Duration::from_secs(cleanup_every),
        move |_id, _lock| {
            let ctx = cleanup_ctx.clone();
            Box::pin(async move {
                let slot = nearest_slot(Utc::now(), i64::try_from(cleanup_every).unwrap_or(3600));
                if let Err(e) = enqueue_cleanup(&ctx, slot).await {
                    tracing::warn!(error = %e, "could not enqueue the wallet cleanup");
                }
            })
        },
    )?;
    scheduler.add(cleanup).await?;
    scheduler.start().await?;
    Ok(scheduler)
}

fn ctx_expiry_period(ctx: &WorkerContext) -> u64 {
    ctx.settings.expiry_sweep.as_secs().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_and_late_ticks_round_to_the_same_slot() {
        let slot = Utc.timestamp_opt(1_800_000_000, 0).single().expect("time");
        let early = slot - chrono::Duration::milliseconds(300);
        let late = slot + chrono::Duration::milliseconds(900);
        assert_eq!(nearest_slot(early, 60), slot);
        assert_eq!(nearest_slot(late, 60), slot);
        assert_eq!(nearest_slot(slot, 60), slot);
    }
}
