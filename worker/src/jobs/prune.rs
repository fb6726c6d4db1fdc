//! Retention: deletes what grows without bound once nothing needs it (`docs/operations.md`, "Retention",
//! settings `RETENTION_*`): the trade data of long-final offers (payment details, receipts,
//! evidence, dispute messages), finished jobs, events of long-settled offers, registration nonces
//! past the timestamp window, old cron slot claims, reconciliation checks of removed wallets,
//! and the push subscriptions and webhooks of offers and claims that are over (nothing is sent
//! to them any more: `NOTIFY_FORGET_AFTER_SECS` after the end, their payouts released); and
//! archived wallet files older than `WALLET_ARCHIVE_DAYS`. It also re-seals trade data still
//! under an older `DATA_SECRETS` key ([`openpleb_common::trade::reseal`], safe to repeat for
//! its own reasons).
//!
//! Safe to repeat, and to run on several workers at once: every step is a `DELETE` of rows
//! selected by age or by a final state, which a second run finds already gone; nothing it
//! deletes is ever read to decide a move of money (payouts, the ledger, disputes and the admin
//! action log are kept forever). Work is done in batches so no statement holds locks for long,
//! and a run stops early near the job timeout; the next run continues.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::db::{notify_targets, retention};
use openpleb_common::jobs::{queries, Prune};
use openpleb_common::metrics::names;
use openpleb_common::wallet::archive;

use crate::WorkerContext;

/// Rows per `DELETE`.
const BATCH: i64 = 5_000;

/// Rows per table per re-sealing transaction (each is opened and sealed in this process).
const RESEAL_BATCH: i64 = 200;

/// Offers per trade-data statement: each empties up to four rows with images and text, so
/// fewer at once than rows of the small tables.
const TRADE_DATA_BATCH: i64 = 500;

/// What one run deleted, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Finished apalis jobs.
    pub jobs: u64,
    /// Events of long-settled offers.
    pub offer_events: u64,
    /// Registration nonces.
    pub nonces: u64,
    /// Cron slot claims.
    pub cron_slots: u64,
    /// Reconciliation checks of removed wallets.
    pub wallet_checks: u64,
    /// Push subscriptions and webhooks of offers and claims that are over.
    pub notify_targets: u64,
    /// Archived wallet files (this machine's archive directory).
    pub wallet_archives: u64,
    /// Offers whose trade data was deleted.
    pub trade_data: u64,
    /// Trade data rows re-sealed under the current `DATA_SECRETS` key.
    pub resealed: u64,
}

/// Handles one retention run.
pub async fn handle(job: Prune, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    let _ = job;
    super::with_timeout(async {
        let pruned = run(&ctx).await?;
        tracing::info!(?pruned, "retention run");
        Ok(())
    })
    .await
}

/// Prunes every table once, to the end or until the time budget is spent.
pub async fn run(ctx: &WorkerContext) -> Result<Pruned, BoxDynError> {
    let r = &ctx.config.retention;
    let pool = &ctx.pool;
    // Leave room under the job timeout for the last batch in flight.
    let deadline = Instant::now() + super::JOB_TIMEOUT / 2;
    Ok(Pruned {
        jobs: drain("jobs", deadline, || {
            queries::prune_finished(pool, r.done_jobs, r.dead_jobs, BATCH)
        })
        .await?,
        offer_events: drain("offer_events", deadline, || {
            retention::prune_offer_events(pool, r.offer_events, BATCH)
        })
        .await?,
        nonces: drain("registration_nonces", deadline, || {
            retention::prune_nonces(pool, BATCH)
        })
        .await?,
        cron_slots: drain("cron_slots", deadline, || {
            retention::prune_cron_slots(pool, r.cron_slots, BATCH)
        })
        .await?,
        wallet_checks: drain("wallet_checks", deadline, || {
            retention::prune_wallet_checks(pool, BATCH)
        })
        .await?,
        notify_targets: drain("notify_targets", deadline, || {
            notify_targets::forget_finished(pool, ctx.config.notify.forget_after, BATCH)
        })
        .await?,
        wallet_archives: prune_archives(ctx).await?,
        trade_data: drain("trade_data", deadline, || {
            retention::prune_trade_data(pool, r.trade_data, TRADE_DATA_BATCH)
        })
        .await?,
        // Last: a row under a dropped key fails this step (and the job, to be seen), not the
        // deletions above.
        resealed: reseal(ctx, deadline).await?,
    })
}

/// Re-seals trade data under the current `DATA_SECRETS` key, batch by batch, until nothing is
/// left or `deadline` passes.
async fn reseal(ctx: &WorkerContext, deadline: Instant) -> Result<u64, BoxDynError> {
    let mut total = 0;
    loop {
        let n = openpleb_common::trade::reseal::batch(ctx, RESEAL_BATCH).await?;
        total += n;
        metrics::counter!(names::TRADE_DATA_RESEALED).increment(n);
        if n == 0 || Instant::now() >= deadline {
            return Ok(total);
        }
    }
}

/// Deletes archived wallet files older than `WALLET_ARCHIVE_DAYS` from this process' archive
/// directory (none when archiving is off).
async fn prune_archives(ctx: &WorkerContext) -> Result<u64, BoxDynError> {
    let Some((dir, keep)) = ctx.wallets()?.archive().map(|(d, k)| (d.to_path_buf(), k)) else {
        return Ok(0);
    };
    let n = tokio::task::spawn_blocking(move || archive::prune(&dir, keep)).await??;
    metrics::counter!(names::RETENTION_PRUNED, "table" => "wallet_archives").increment(n);
    Ok(n)
}

/// Repeats `delete` until a batch comes back short or `deadline` passes; counts the rows in
/// the metrics under `table`.
async fn drain<F, Fut>(
    table: &'static str,
    deadline: Instant,
    delete: F,
) -> Result<u64, BoxDynError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u64, sqlx::Error>>,
{
    let mut total = 0;
    loop {
        let n = delete().await?;
        total += n;
        metrics::counter!(names::RETENTION_PRUNED, "table" => table).increment(n);
        if n < u64::try_from(BATCH).unwrap_or(u64::MAX) || Instant::now() >= deadline {
            return Ok(total);
        }
    }
}
