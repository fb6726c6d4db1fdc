//! The OpenPleb worker: apalis workers on the PostgreSQL queue plus the fleet-wide cron.
//!
//! Any number of worker processes may run on any number of machines: apalis hands each job to
//! one of them (`FOR UPDATE SKIP LOCKED`), periodic jobs are claimed per slot in PostgreSQL
//! ([`cron`]), and every job is safe to run twice (each file under [`jobs`] says why).
//!
//! A worker outlives its dependencies' outages: it starts without PostgreSQL or the mint, its
//! queues wait for what they need ([`gate`]), and it exits only on a configuration error.

pub mod cron;
pub mod gate;
pub mod jobs;
pub mod observe;
pub mod poll;
pub mod quote_notifier;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::{Config as QueueConfig, PostgresStorage};
use openpleb_common::health::watch::Watchers;
use openpleb_common::health::Dependency;
use openpleb_common::jobs::{
    CleanupWallets, DeliverNotice, ExpireOffers, Job, LapseClaim, LapseOffer, Prune,
    ReceiveFunding, ReconcileWallets, ReleasePayouts, RemindParty, SweepQuotes, WatchMintQuote,
    WithdrawTreasury,
};
use openpleb_common::mint::{MintClient, MintNeeds};

/// What every job handler gets: the trade steps' context (database, wallets, configuration,
/// prices, clock). Handlers read `config.worker`, `config.timers`, the wallets' settings and
/// `config.mint`; tests shorten its intervals before wrapping it.
pub use openpleb_common::trade::TradeCtx as WorkerContext;

/// How often the queues a trader waits on (a paid quote's minting, a payout's release) are
/// polled at most: a job enqueued for them should start within this, not within the
/// `queue_poll_interval` the housekeeping queues use, or settlement would wait for it.
pub const URGENT_QUEUE_POLL: Duration = Duration::from_millis(100);

/// How a queue's worker runs.
#[derive(Debug, Clone, Copy)]
struct Lane {
    /// Jobs at once.
    concurrency: usize,
    /// Polled every [`URGENT_QUEUE_POLL`] (a trader waits on its jobs), else every
    /// `queue_poll_interval`.
    urgent: bool,
    /// Its jobs call the mint: fetched only while the mint is usable ([`gate`]).
    needs_mint: bool,
}

impl Lane {
    /// A housekeeping queue running `concurrency` jobs at once, needing only the database.
    const fn new(concurrency: usize) -> Self {
        Self {
            concurrency,
            urgent: false,
            needs_mint: false,
        }
    }

    /// Polled every [`URGENT_QUEUE_POLL`].
    const fn urgent(self) -> Self {
        Self {
            urgent: true,
            ..self
        }
    }

    /// Its jobs call the mint.
    const fn with_mint(self) -> Self {
        Self {
            needs_mint: true,
            ..self
        }
    }
}

/// One apalis worker for job type `$job` as `$lane` says, polling often (delayed jobs and
/// retries are not announced by PostgreSQL's insert notification). Each run after a restart
/// registers under a name of its own and waits for the database first ([`gate::Gated`]).
macro_rules! worker {
    ($ctx:ident, $name:ident, $job:ty, $lane:expr, $handler:path) => {{
        let ctx = $ctx.clone();
        let process = $name.to_owned();
        let lane: Lane = $lane;
        let poll = if lane.urgent {
            ctx.config.worker.queue_poll_interval.min(URGENT_QUEUE_POLL)
        } else {
            ctx.config.worker.queue_poll_interval
        };
        move |restarts| {
            let backend = PostgresStorage::<$job>::new(&ctx.pool)
                .with_config(queue_config(<$job as Job>::QUEUE, lane.concurrency))
                .poll_with_strategy(poll::ArmedInterval::new(poll));
            let backend = gate::Gated::new(backend, ctx.health.clone(), lane.needs_mint, restarts);
            WorkerBuilder::new(gate::worker_name(<$job as Job>::QUEUE, &process, restarts))
                .backend(backend)
                .data(ctx.clone())
                .enable_tracing()
                .concurrency(lane.concurrency)
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
///
/// Watches the database (migrating it once it answers) and the mint into `ctx.health`; ends
/// early only with a [`Fatal`](openpleb_common::health::watch::Fatal) problem (a mint that
/// lacks what a worker relies on, a failed migration), which the binary exits on.
pub async fn run<S>(ctx: Arc<WorkerContext>, name: &str, shutdown: S) -> anyhow::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    openpleb_common::metrics::install();
    // The mint the jobs' wallet operations talk to (the configured one, in the binary).
    let wallets = ctx.wallets()?.clone();
    let mint = MintClient::new(wallets.mint_url()).map_err(|e| anyhow::anyhow!("MINT_URL: {e}"))?;
    let watchers = Watchers::start(&ctx.health, ctx.pool.clone(), mint, MintNeeds::Worker);
    let metrics = ctx.config.ops.worker_metrics_addr.clone().map(|addr| {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(e) = observe::serve_metrics(ctx, addr, std::future::pending()).await {
                tracing::error!(error = %e, "worker metrics listener stopped");
            }
        })
    });
    let scheduler = cron::start(ctx.clone()).await?;
    let notifier = ctx.config.worker.quote_subscription.then(|| {
        tokio::spawn(quote_notifier::run_if_offered(
            ctx.clone(),
            watchers.capabilities(),
        ))
    });
    let concurrency = ctx.config.worker.concurrency;
    let health = ctx.health.clone();

    let monitor = Monitor::new()
        .register(worker!(
            ctx,
            name,
            WatchMintQuote,
            Lane::new(concurrency).urgent().with_mint(),
            jobs::watch_mint_quote::handle
        ))
        .register(worker!(
            ctx,
            name,
            SweepQuotes,
            Lane::new(1),
            jobs::sweep_quotes::handle
        ))
        // A maker waits on its token's receive, as on a paid invoice's minting.
        .register(worker!(
            ctx,
            name,
            ReceiveFunding,
            Lane::new(concurrency).urgent().with_mint(),
            jobs::receive_funding::handle
        ))
        .register(worker!(
            ctx,
            name,
            ReleasePayouts,
            Lane::new(concurrency).urgent().with_mint(),
            jobs::release_payouts::handle
        ))
        // One withdrawal is in flight at a time: one at a time per process is plenty.
        .register(worker!(
            ctx,
            name,
            WithdrawTreasury,
            Lane::new(1).with_mint(),
            jobs::withdraw_treasury::handle
        ))
        // Lapses ask the mint whether a deposit or a bond was paid after all; the backstop runs
        // the same lapses.
        .register(worker!(
            ctx,
            name,
            LapseOffer,
            Lane::new(concurrency).with_mint(),
            jobs::lapse_offer::handle
        ))
        .register(worker!(
            ctx,
            name,
            LapseClaim,
            Lane::new(concurrency).with_mint(),
            jobs::lapse_claim::handle
        ))
        .register(worker!(
            ctx,
            name,
            ExpireOffers,
            Lane::new(1).with_mint(),
            jobs::expire_offers::handle
        ))
        .register(worker!(
            ctx,
            name,
            CleanupWallets,
            Lane::new(1).with_mint(),
            jobs::cleanup_wallets::handle
        ))
        .register(worker!(
            ctx,
            name,
            ReconcileWallets,
            Lane::new(1).with_mint(),
            jobs::reconcile_wallets::handle
        ))
        // Notices need neither the mint nor a wallet: a deployment may run these queues on
        // hosts that hold no wallet secret, apart from the ones that do.
        .register(worker!(
            ctx,
            name,
            DeliverNotice,
            Lane::new(concurrency).urgent(),
            jobs::deliver_notice::handle
        ))
        .register(worker!(
            ctx,
            name,
            RemindParty,
            Lane::new(concurrency),
            jobs::remind_party::handle
        ))
        .register(worker!(ctx, name, Prune, Lane::new(1), jobs::prune::handle))
        // A queue worker ends when its backend fails (the database went away): start it again,
        // and have the database checked now so the restart waits for its verdict.
        .should_restart(move |worker, error| {
            if worker.is_shutting_down() {
                return false;
            }
            tracing::warn!(
                worker = worker.name(),
                error = %error,
                "queue worker stopped; restarting once the database answers"
            );
            health.suspect(Dependency::Database);
            true
        })
        .shutdown_timeout(Duration::from_secs(25));

    let result = tokio::select! {
        ran = monitor.run_with_signal(async move {
            shutdown.await;
            Ok(())
        }) => ran.map_err(|e| anyhow::anyhow!("worker monitor: {e}")),
        fatal = watchers.fatal() => Err(anyhow::Error::new(fatal)),
    };
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
    wallets.close_all().await;
    result
}

fn queue_config(queue: &str, batch: usize) -> QueueConfig {
    QueueConfig::default()
        .queue(queue)
        .batch_size(batch.max(1))
        .heartbeat_interval(Duration::from_secs(10))
        .missed_heartbeats(3)
}
