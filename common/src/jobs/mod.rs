//! Job definitions: queue names, argument types, and enqueueing inside the caller's transaction.
//!
//! The api writes its domain change and enqueues the follow-up job in one PostgreSQL
//! transaction, so a job exists exactly when its cause was committed. Job handlers live in the
//! worker crate, one file each.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{Acquire, PgConnection};

/// Queue names. Set explicitly: the default is derived from a Rust type name and would change
/// with a rename, stranding queued jobs.
pub mod queues {
    /// Watches a mint quote and mints into its wallet once paid.
    pub const WATCH_MINT_QUOTE: &str = "openpleb.watch_mint_quote";
    /// Periodic sweep that re-enqueues watchers of quotes nobody looked at lately.
    pub const SWEEP_QUOTES: &str = "openpleb.sweep_quotes";
    /// Releases an offer's recorded payouts.
    pub const RELEASE_PAYOUTS: &str = "openpleb.release_payouts";
    /// Applies the lapse of an offer's state at its deadline.
    pub const LAPSE_OFFER: &str = "openpleb.lapse_offer";
    /// Periodic backstop: lapses every overdue offer.
    pub const EXPIRE_OFFERS: &str = "openpleb.expire_offers";
    /// Periodic: refunds idle money of ended sessions and deletes their empty wallets.
    pub const CLEANUP_WALLETS: &str = "openpleb.cleanup_wallets";
    /// Periodic: reconciles live wallets with the mint and re-enqueues overdue releases.
    pub const RECONCILE_WALLETS: &str = "openpleb.reconcile_wallets";
}

/// A periodic run of the wallet reconciliation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileWallets {
    /// The cron slot this run belongs to.
    pub slot: DateTime<Utc>,
}

/// A periodic run of the wallet cleanup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupWallets {
    /// The cron slot this run belongs to.
    pub slot: DateTime<Utc>,
}

/// Apply the lapse of an offer's state, if it is still in that state past its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapseOffer {
    /// The offer.
    pub offer_id: uuid::Uuid,
    /// The status whose timer this is.
    pub status: String,
    /// When the offer entered that status (tells repeated visits of a state apart).
    pub entered_at_micros: i64,
}

impl LapseOffer {
    /// One job per visit of a state.
    pub fn idempotency_key(&self) -> String {
        format!(
            "lapse:{}:{}:{}",
            self.offer_id, self.status, self.entered_at_micros
        )
    }
}

/// A periodic run of the overdue-offer sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireOffers {
    /// The cron slot this run belongs to.
    pub slot: DateTime<Utc>,
}

/// Release every recorded payout of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePayouts {
    /// The offer.
    pub offer_id: uuid::Uuid,
}

/// Watch one mint quote until it is paid, then mint it into its wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchMintQuote {
    /// The mint's quote id (a row in `wallet_quotes`).
    pub quote_id: String,
    /// Which look this is; each unpaid look schedules round + 1.
    #[serde(default)]
    pub round: u32,
}

impl WatchMintQuote {
    /// Dedupes a round: two runs of round n schedule round n + 1 once.
    pub fn idempotency_key(&self) -> String {
        format!("watch:{}:{}", self.quote_id, self.round)
    }
}

/// A periodic run of the quote sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SweepQuotes {
    /// The cron slot this run belongs to.
    pub slot: DateTime<Utc>,
}

/// How a job is scheduled.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Run no earlier than this from now.
    pub delay: Option<Duration>,
    /// Attempts before the job is given up (apalis' own default is 25; we never rely on it).
    pub max_attempts: Option<usize>,
    /// A key that makes a second enqueue of the same work a no-op.
    pub idempotency_key: Option<String>,
}

/// The result of an enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job with this id.
    New(String),
    /// A job with the same idempotency key already exists.
    AlreadyQueued,
}

/// Errors while enqueueing.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The arguments could not be serialised.
    #[error("job arguments: {0}")]
    Encode(#[from] serde_json::Error),
    /// The database refused the insert.
    #[error("enqueue: {0}")]
    Database(#[from] sqlx::Error),
    /// apalis refused the insert.
    #[error("enqueue: {0}")]
    Queue(#[from] apalis_postgres::Error),
}

/// Enqueues `args` on `queue` using `conn`, which may be inside the caller's transaction.
///
/// The insert runs under a savepoint, so a duplicate idempotency key does not abort the
/// caller's transaction; it reports [`Enqueued::AlreadyQueued`] instead.
pub async fn enqueue<T: Serialize>(
    conn: &mut PgConnection,
    queue: &str,
    args: &T,
    schedule: Schedule,
) -> Result<Enqueued, EnqueueError> {
    let id = ulid::Ulid::generate();
    let mut builder = TaskBuilder::new(serde_json::to_vec(args)?)
        .task_id(TaskId::from_ulid(id))
        .max_attempts(schedule.max_attempts.unwrap_or(10));
    if let Some(delay) = schedule.delay {
        builder = builder.run_after(delay);
    }
    if let Some(key) = &schedule.idempotency_key {
        builder = builder.idempotency_key(key);
    }
    let task = builder.build();

    let mut savepoint = conn.begin().await?;
    match apalis_postgres::queries::push_tasks(&mut *savepoint, queue, vec![task]).await {
        Ok(()) => {
            savepoint.commit().await?;
            Ok(Enqueued::New(id.to_string()))
        }
        Err(apalis_postgres::Error::Database(e)) if crate::db::is_unique_violation(&e) => {
            savepoint.rollback().await?;
            Ok(Enqueued::AlreadyQueued)
        }
        Err(e) => Err(e.into()),
    }
}
