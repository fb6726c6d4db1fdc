//! The fleet-wide cron: every worker ticks, PostgreSQL decides which one enqueues.
//!
//! On each tick a worker rounds the time to the schedule's nearest slot (rounding, not flooring,
//! so a timer that fires a little early still lands in the right slot) and inserts
//! `(job, slot)` into `cron_slots` with `ON CONFLICT DO NOTHING` in the same transaction that
//! enqueues the job. N workers, one run per slot.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use openpleb_common::db::cron::claim_slot;
use openpleb_common::jobs::{
    enqueue, CleanupWallets, ExpireOffers, Periodic, Prune, ReconcileWallets, SweepQuotes,
};
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

/// Claims `slot` of the periodic job `J` and enqueues its run; true if this worker won.
async fn enqueue_periodic<J: Periodic>(
    ctx: &WorkerContext,
    slot: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let mut tx = ctx.pool.begin().await?;
    let won = claim_slot(&mut tx, J::QUEUE, slot).await?;
    if won {
        enqueue(&mut tx, &J::for_slot(slot)).await?;
    }
    tx.commit().await?;
    Ok(won)
}

/// Claims `slot` for the quote sweep and enqueues it; true if this worker won the slot.
pub async fn enqueue_sweep(ctx: &WorkerContext, slot: DateTime<Utc>) -> anyhow::Result<bool> {
    enqueue_periodic::<SweepQuotes>(ctx, slot).await
}

/// Claims `slot` for the wallet cleanup and enqueues it; true if this worker won.
pub async fn enqueue_cleanup(ctx: &WorkerContext, slot: DateTime<Utc>) -> anyhow::Result<bool> {
    enqueue_periodic::<CleanupWallets>(ctx, slot).await
}

/// Claims `slot` for the overdue-offer sweep and enqueues it; true if this worker won.
pub async fn enqueue_expiry(ctx: &WorkerContext, slot: DateTime<Utc>) -> anyhow::Result<bool> {
    enqueue_periodic::<ExpireOffers>(ctx, slot).await
}

/// Claims `slot` for the wallet reconciliation and enqueues it; true if this worker won.
pub async fn enqueue_reconcile(ctx: &WorkerContext, slot: DateTime<Utc>) -> anyhow::Result<bool> {
    enqueue_periodic::<ReconcileWallets>(ctx, slot).await
}

/// Claims `slot` for the retention job and enqueues it; true if this worker won.
pub async fn enqueue_prune(ctx: &WorkerContext, slot: DateTime<Utc>) -> anyhow::Result<bool> {
    enqueue_periodic::<Prune>(ctx, slot).await
}

/// Claims one slot of a periodic job: `(ctx, slot) -> won?`.
type Enqueuer = for<'a> fn(
    &'a WorkerContext,
    DateTime<Utc>,
) -> futures::future::BoxFuture<'a, anyhow::Result<bool>>;

/// Adds a job that, every `every`, claims the current slot of `name` and enqueues it.
async fn add_repeated(
    scheduler: &JobScheduler,
    ctx: &Arc<WorkerContext>,
    name: &'static str,
    every: Duration,
    enqueue: Enqueuer,
) -> anyhow::Result<()> {
    let secs = every.as_secs().max(1);
    let period = i64::try_from(secs).unwrap_or(i64::MAX);
    let ctx = ctx.clone();
    let job = Job::new_repeated_async(Duration::from_secs(secs), move |_id, _lock| {
        let ctx = ctx.clone();
        Box::pin(async move {
            let slot = nearest_slot(Utc::now(), period);
            if let Err(e) = enqueue(&ctx, slot).await {
                tracing::warn!(job = name, error = %e, "could not enqueue a periodic job");
            }
        })
    })?;
    scheduler.add(job).await?;
    Ok(())
}

/// Starts this worker's scheduler.
pub async fn start(ctx: Arc<WorkerContext>) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new().await?;
    let sweep_ctx = ctx.clone();
    let job = Job::new_async(SWEEP_QUOTES_SCHEDULE, move |_id, _lock| {
        let ctx = sweep_ctx.clone();
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
    let cfg = &ctx.config;
    add_repeated(
        &scheduler,
        &ctx,
        "expire_offers",
        cfg.worker.expiry_sweep,
        |c, t| Box::pin(enqueue_expiry(c, t)),
    )
    .await?;
    add_repeated(
        &scheduler,
        &ctx,
        "cleanup_wallets",
        ctx.wallets()?.cleanup_interval(),
        |c, t| Box::pin(enqueue_cleanup(c, t)),
    )
    .await?;
    add_repeated(
        &scheduler,
        &ctx,
        "reconcile_wallets",
        cfg.worker.reconcile_interval,
        |c, t| Box::pin(enqueue_reconcile(c, t)),
    )
    .await?;
    add_repeated(&scheduler, &ctx, "prune", cfg.retention.interval, |c, t| {
        Box::pin(enqueue_prune(c, t))
    })
    .await?;
    scheduler.start().await?;
    Ok(scheduler)
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
