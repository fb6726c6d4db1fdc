//! The OpenPleb worker: apalis workers on the PostgreSQL queue plus the fleet-wide cron.
//!
//! Any number of worker processes may run on any number of machines: apalis hands each job to
//! one of them (`FOR UPDATE SKIP LOCKED`), periodic jobs are claimed per slot in PostgreSQL
//! ([`cron`]), and every job is safe to run twice (each file under [`jobs`] says why).

pub mod cron;
pub mod jobs;
pub mod observe;
pub mod poll;
pub mod quote_notifier;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config as QueueConfig, PostgresStorage};
use openpleb_common::jobs::{
    CleanupWallets, ExpireOffers, Job, LapseClaim, LapseOffer, Prune, ReconcileWallets,
    ReleasePayouts, SweepQuotes, WatchMintQuote,
};

/// What every job handler gets: the trade steps' context (database, wallets, configuration,
/// prices, clock). Handlers read `config.worker`, `config.timers`, `config.wallets` and
/// `config.mint`; tests shorten its intervals before wrapping it.
pub use openpleb_common::trade::TradeCtx as WorkerContext;

/// How often the queues a trader waits on (a paid quote's minting, a payout's release) are
/// polled at most: a job enqueued for them should start within this, not within the
/// `queue_poll_interval` the housekeeping queues use, or settlement would wait for it.
pub const URGENT_QUEUE_POLL: Duration = Duration::from_millis(100);

/// One apalis worker for job type `$job`, polling often (delayed jobs and retries are not
/// announced by PostgreSQL's insert notification) and running up to `$concurrency` at once;
/// `urgent` queues are polled every [`URGENT_QUEUE_POLL`].
macro_rules! worker {
    ($ctx:ident, $name:ident, $job:ty, $concurrency:expr, $handler:path) => {
        worker!($ctx, $name, $job, $concurrency, $handler, false)
    };
    ($ctx:ident, $name:ident, $job:ty, $concurrency:expr, $handler:path, urgent) => {
        worker!($ctx, $name, $job, $concurrency, $handler, true)
    };
    ($ctx:ident, $name:ident, $job:ty, $concurrency:expr, $handler:path, $urgent:expr) => {{
        let ctx = $ctx.clone();
        let name = format!("{}@{}", <$job as Job>::QUEUE, $name);
        let concurrency = $concurrency;
        let poll = if $urgent {
            ctx.config.worker.queue_poll_interval.min(URGENT_QUEUE_POLL)
        } else {
            ctx.config.worker.queue_poll_interval
        };
        move |_restarts| {
            let backend = PostgresStorage::<$job>::new(&ctx.pool)
                .with_config(queue_config(<$job as Job>::QUEUE, concurrency))
                .poll_with_strategy(poll::ArmedInterval::new(poll));
            WorkerBuilder::new(name.clone())
                .backend(backend)
                .data(ctx.clone())
                .enable_tracing()
                .concurrency(concurrency)
                .build(
                    |job: $job, ctx: Data<Arc<WorkerContext>>, meta: MetadataStore| async move {
                        observe::observed(<$job as Job>::QUEUE, &meta, $handler(job, ctx)).await
                    },
                )
        }
    }};
}

/// Runs the workers and the cron until `shutdown` resolves. `name` must be unique per process
/// (apalis keys worker registrations by name).
pub async fn run<S>(ctx: Arc<WorkerContext>, name: &str, shutdown: S) -> anyhow::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    openpleb_common::metrics::install();
    let metrics = ctx.config.ops.worker_metrics_addr.clone().map(|addr| {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = observe::serve_metrics(ctx, addr, std::future::pending()).await {
                tracing::error!(error = %e, "worker metrics listener stopped");
            }
        })
    });
    let scheduler = cron::start(ctx.clone()).await?;
    let notifier = ctx
        .config
        .worker
        .quote_subscription
        .then(|| tokio::spawn(quote_notifier::run(ctx.clone())));
    let concurrency = ctx.config.worker.concurrency;

    let monitor = Monitor::new()
        .register(worker!(
            ctx,
            name,
            WatchMintQuote,
            concurrency,
            jobs::watch_mint_quote::handle,
            urgent
        ))
        .register(worker!(
            ctx,
            name,
            SweepQuotes,
            1,
            jobs::sweep_quotes::handle
        ))
        .register(worker!(
            ctx,
            name,
            ReleasePayouts,
            concurrency,
            jobs::release_payouts::handle,
            urgent
        ))
        .register(worker!(
            ctx,
            name,
            LapseOffer,
            concurrency,
            jobs::lapse_offer::handle
        ))
        .register(worker!(
            ctx,
            name,
            LapseClaim,
            concurrency,
            jobs::lapse_claim::handle
        ))
        .register(worker!(
            ctx,
            name,
            ExpireOffers,
            1,
            jobs::expire_offers::handle
        ))
        .register(worker!(
            ctx,
            name,
            CleanupWallets,
            1,
            jobs::cleanup_wallets::handle
        ))
        .register(worker!(
            ctx,
            name,
            ReconcileWallets,
            1,
            jobs::reconcile_wallets::handle
        ))
        .register(worker!(ctx, name, Prune, 1, jobs::prune::handle))
        .shutdown_timeout(Duration::from_secs(25));

    let result = monitor
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await;
    if let Some(notifier) = notifier {
        notifier.abort();
    }
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    let mut scheduler = scheduler;
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = %e, "cron scheduler shutdown");
    }
    ctx.wallets.close_all().await;
    result.map_err(|e| anyhow::anyhow!("worker monitor: {e}"))
}

fn queue_config(queue: &str, batch: usize) -> QueueConfig {
    QueueConfig::default()
        .queue(queue)
        .batch_size(batch.max(1))
        .heartbeat_interval(Duration::from_secs(10))
        .missed_heartbeats(3)
}
