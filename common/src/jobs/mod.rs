//! Jobs: what each carries, which queue it runs on, how often it may be tried, what makes two
//! enqueues of it one job, and enqueueing inside the caller's transaction.
//!
//! A trade step writes its domain change and enqueues the follow-up job in one PostgreSQL
//! transaction, so a job exists exactly when its cause was committed. Handlers live in the
//! worker crate, one file each; the worker registers each by its [`Job`] type.

pub mod queries;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sqlx::{Acquire, PgConnection};

use crate::domain::offer::OfferStatus;

/// Queue names. Set explicitly: the default is derived from a Rust type name and would change
/// with a rename, stranding queued jobs.
pub mod queues {
    /// Watches a mint quote and mints into its wallet once paid.
    pub const WATCH_MINT_QUOTE: &str = "openpleb.watch_mint_quote";
    /// Periodic sweep that re-enqueues watchers of quotes nobody looked at lately.
    pub const SWEEP_QUOTES: &str = "openpleb.sweep_quotes";
    /// Releases an offer's recorded payouts.
    pub const RELEASE_PAYOUTS: &str = "openpleb.release_payouts";
    /// Receives a funding token the api sealed to the workers' key.
    pub const RECEIVE_FUNDING: &str = "openpleb.receive_funding";
    /// Applies the lapse of an offer's state at its deadline.
    pub const LAPSE_OFFER: &str = "openpleb.lapse_offer";
    /// Ends a claim whose bond was not paid by its deadline.
    pub const LAPSE_CLAIM: &str = "openpleb.lapse_claim";
    /// Delivers one notice to one push subscription or webhook.
    pub const DELIVER_NOTICE: &str = "openpleb.deliver_notice";
    /// Reminds a party before the deadline at which its silence decides.
    pub const REMIND_PARTY: &str = "openpleb.remind_party";
    /// Periodic backstop: lapses every overdue offer.
    pub const EXPIRE_OFFERS: &str = "openpleb.expire_offers";
    /// Periodic: refunds idle money of ended sessions and deletes their empty wallets.
    pub const CLEANUP_WALLETS: &str = "openpleb.cleanup_wallets";
    /// Periodic: reconciles live wallets with the mint and re-enqueues overdue releases.
    pub const RECONCILE_WALLETS: &str = "openpleb.reconcile_wallets";
    /// Periodic: prunes what grows without bound (finished jobs, old events, nonces, slots).
    pub const PRUNE: &str = "openpleb.prune";
    /// Pays the treasury withdrawal in flight (a locked token or a Lightning invoice).
    pub const WITHDRAW_TREASURY: &str = "openpleb.withdraw_treasury";

    /// Every queue (the metrics report each, zero included).
    pub const ALL: &[&str] = &[
        WATCH_MINT_QUOTE,
        SWEEP_QUOTES,
        RELEASE_PAYOUTS,
        RECEIVE_FUNDING,
        LAPSE_OFFER,
        LAPSE_CLAIM,
        DELIVER_NOTICE,
        REMIND_PARTY,
        EXPIRE_OFFERS,
        CLEANUP_WALLETS,
        RECONCILE_WALLETS,
        PRUNE,
        WITHDRAW_TREASURY,
    ];
}

/// A kind of job.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + Unpin + 'static {
    /// The queue it runs on.
    const QUEUE: &'static str;
    /// Attempts before it is given up (apalis' own default is 25; we never rely on it). The
    /// queue retries a failed job at once; each handler bounds its own run with a timeout.
    const MAX_ATTEMPTS: usize;

    /// A key that makes a second enqueue of the same work a no-op; `None` when every enqueue
    /// is new work (periodic jobs are deduplicated by their cron slot instead).
    fn idempotency_key(&self) -> Option<String> {
        None
    }

    /// Jobs of higher priority are fetched first from their queue.
    fn priority(&self) -> usize {
        0
    }
}

/// Periodic jobs: one run per cron slot, claimed fleet-wide before it is enqueued.
pub trait Periodic: Job {
    /// The run of `slot`.
    fn for_slot(slot: DateTime<Utc>) -> Self;
}

macro_rules! periodic {
    ($(#[$meta:meta])* $name:ident, $queue:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $name {
            /// The cron slot this run belongs to.
            pub slot: DateTime<Utc>,
        }

        impl Job for $name {
            const QUEUE: &'static str = $queue;
            const MAX_ATTEMPTS: usize = 3;
        }

        impl Periodic for $name {
            fn for_slot(slot: DateTime<Utc>) -> Self {
                Self { slot }
            }
        }
    };
}

periodic!(
    /// A periodic run of the wallet reconciliation.
    ReconcileWallets,
    queues::RECONCILE_WALLETS
);
periodic!(
    /// A periodic run of the wallet cleanup.
    CleanupWallets,
    queues::CLEANUP_WALLETS
);
periodic!(
    /// A periodic run of the overdue-offer sweep.
    ExpireOffers,
    queues::EXPIRE_OFFERS
);
periodic!(
    /// A periodic run of the quote sweep.
    SweepQuotes,
    queues::SWEEP_QUOTES
);
periodic!(
    /// A periodic run of the retention job.
    Prune,
    queues::PRUNE
);

/// Apply the lapse of an offer's state, if it is still in that state past its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapseOffer {
    /// The offer.
    pub offer_id: uuid::Uuid,
    /// The status whose timer this is.
    #[serde(with = "text")]
    pub status: OfferStatus,
    /// When the offer entered that status (tells repeated visits of a state apart).
    pub entered_at_micros: i64,
}

impl Job for LapseOffer {
    const QUEUE: &'static str = queues::LAPSE_OFFER;
    const MAX_ATTEMPTS: usize = 25;

    /// One job per visit of a state: the delayed job and the cron's backstop are one job.
    fn idempotency_key(&self) -> Option<String> {
        Some(format!(
            "lapse:{}:{}:{}",
            self.offer_id, self.status, self.entered_at_micros
        ))
    }
}

/// End a claim if its bond is still unpaid past its deadline (after asking the mint).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LapseClaim {
    /// The claim.
    pub claim_id: uuid::Uuid,
}

impl Job for LapseClaim {
    const QUEUE: &'static str = queues::LAPSE_CLAIM;
    const MAX_ATTEMPTS: usize = 25;

    /// A claim lapses once: the delayed job and the expiry sweep's are one job.
    fn idempotency_key(&self) -> Option<String> {
        Some(format!("lapse-claim:{}", self.claim_id))
    }
}

/// Deliver one notice to one target (push subscription or webhook), retried by re-enqueueing
/// itself with a growing delay (the queue itself would retry at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverNotice {
    /// The push subscription or webhook.
    pub target_id: uuid::Uuid,
    /// What it says.
    pub notice: crate::domain::notify::Notice,
    /// A reminder (delivered with high urgency).
    pub urgent: bool,
    /// What happened to whom: one notice per key and target.
    pub key: String,
    /// Which try this is (0 first).
    pub attempt: u32,
    /// When the move that caused it was enqueued (milliseconds since the epoch), for the
    /// time-to-delivery metric.
    pub enqueued_at_ms: i64,
}

impl Job for DeliverNotice {
    const QUEUE: &'static str = queues::DELIVER_NOTICE;
    const MAX_ATTEMPTS: usize = 3;

    /// One job per notice, target and try.
    fn idempotency_key(&self) -> Option<String> {
        Some(format!(
            "notice:{}:{}:{}",
            self.key, self.target_id, self.attempt
        ))
    }

    /// A trader waits on it.
    fn priority(&self) -> usize {
        1
    }
}

/// Remind the party whose silence decides `status` of an offer, if it is still there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemindParty {
    /// The offer.
    pub offer_id: uuid::Uuid,
    /// The status whose deadline it is.
    #[serde(with = "text")]
    pub status: OfferStatus,
    /// When the offer entered it (tells repeated visits apart).
    pub entered_at_micros: i64,
    /// Who is reminded.
    #[serde(with = "text")]
    pub role: crate::domain::role::Role,
    /// How long before the deadline.
    pub before_secs: u64,
}

impl Job for RemindParty {
    const QUEUE: &'static str = queues::REMIND_PARTY;
    const MAX_ATTEMPTS: usize = 10;

    /// One reminder per visit of a state and offset.
    fn idempotency_key(&self) -> Option<String> {
        Some(format!(
            "remind:{}:{}:{}:{}",
            self.offer_id, self.status, self.entered_at_micros, self.before_secs
        ))
    }
}

/// The chain the NUT-17 notifier starts for a quote the mint reported paid.
pub const PAID_CHAIN: &str = "paid";

/// Release every recorded payout of an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasePayouts {
    /// The offer.
    pub offer_id: uuid::Uuid,
}

impl Job for ReleasePayouts {
    const QUEUE: &'static str = queues::RELEASE_PAYOUTS;
    const MAX_ATTEMPTS: usize = 25;
}

/// Receive the token of one funding intent into its session wallet and move the offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveFunding {
    /// The intent.
    pub intent_id: uuid::Uuid,
}

impl Job for ReceiveFunding {
    const QUEUE: &'static str = queues::RECEIVE_FUNDING;
    // A mint outage is waited out by the queue's gate; the reconciliation settles an intent
    // whose job gave up.
    const MAX_ATTEMPTS: usize = 25;

    fn idempotency_key(&self) -> Option<String> {
        Some(format!("receive_funding:{}", self.intent_id))
    }
}

/// Pay one treasury withdrawal out of the treasury wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WithdrawTreasury {
    /// The withdrawal (a row in `treasury_withdrawals`).
    pub withdrawal_id: uuid::Uuid,
}

impl Job for WithdrawTreasury {
    const QUEUE: &'static str = queues::WITHDRAW_TREASURY;
    const MAX_ATTEMPTS: usize = 25;
}

/// Watch one mint quote until it is paid, then mint it into its wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchMintQuote {
    /// The mint's quote id (a row in `wallet_quotes`).
    pub quote_id: String,
    /// Which look this is; each unpaid look schedules round + 1.
    #[serde(default)]
    pub round: u32,
    /// What started this chain of looks when it was not the quote's creation (the quote
    /// sweep's slot, the mint's paid notification): such a chain has keys of its own, so it
    /// runs beside the first one instead of being swallowed by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

impl WatchMintQuote {
    /// The first look at a new quote.
    pub fn first(quote_id: &str) -> Self {
        Self {
            quote_id: quote_id.to_owned(),
            round: 0,
            chain: None,
        }
    }

    /// The look after this one.
    pub fn next(&self) -> Self {
        Self {
            round: self.round + 1,
            ..self.clone()
        }
    }
}

impl Job for WatchMintQuote {
    const QUEUE: &'static str = queues::WATCH_MINT_QUOTE;
    const MAX_ATTEMPTS: usize = 10;

    /// Dedupes a round: two runs of round n schedule round n + 1 once.
    fn idempotency_key(&self) -> Option<String> {
        Some(match &self.chain {
            None => format!("watch:{}:{}", self.quote_id, self.round),
            Some(chain) => format!("{chain}:{}:{}", self.quote_id, self.round),
        })
    }

    /// A quote the mint reported paid goes before the routine looks at unpaid ones: a trader
    /// is waiting for it.
    fn priority(&self) -> usize {
        usize::from(self.chain.as_deref() == Some(PAID_CHAIN))
    }
}

/// The task metadata key carrying the correlation id of what enqueued a job.
pub const REQUEST_ID_META: &str = "request_id";

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

/// Enqueues `job` to run now, using `conn`, which may be inside the caller's transaction.
pub async fn enqueue<J: Job>(conn: &mut PgConnection, job: &J) -> Result<Enqueued, EnqueueError> {
    push(conn, job, None).await
}

/// Enqueues `job` to run no earlier than `delay` from now.
pub async fn enqueue_in<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    delay: Duration,
) -> Result<Enqueued, EnqueueError> {
    push(conn, job, Some(delay)).await
}

/// The insert runs under a savepoint, so a duplicate idempotency key does not abort the
/// caller's transaction; it reports [`Enqueued::AlreadyQueued`] instead.
async fn push<J: Job>(
    conn: &mut PgConnection,
    job: &J,
    delay: Option<Duration>,
) -> Result<Enqueued, EnqueueError> {
    let id = ulid::Ulid::generate();
    let mut builder = TaskBuilder::new(serde_json::to_vec(job)?)
        .task_id(TaskId::from_ulid(id))
        .max_attempts(J::MAX_ATTEMPTS);
    if let Some(delay) = delay {
        builder = builder.run_after(delay);
    }
    if let Some(key) = job.idempotency_key() {
        builder = builder.idempotency_key(key);
    }
    if job.priority() != 0 {
        builder = builder.priority(job.priority());
    }
    // The request (or job) that caused this job, so its log lines carry the same id.
    if let Some(request_id) = crate::telemetry::request_id() {
        let mut meta = apalis::prelude::MetadataStore::new();
        if meta.insert(REQUEST_ID_META, request_id).is_ok() {
            builder = builder.with_metadata(meta);
        }
    }
    let task = builder.build();

    let mut savepoint = conn.begin().await?;
    match apalis_postgres::queries::push_tasks(&mut *savepoint, J::QUEUE, vec![task]).await {
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

/// Serde for values whose wire form is their `Display`/`FromStr` text (the domain's enums).
mod text {
    use super::*;

    pub fn serialize<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: fmt::Display,
        D: Deserializer<'de>,
    {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapse_job_keeps_its_wire_form() {
        let job = LapseOffer {
            offer_id: uuid::Uuid::nil(),
            status: OfferStatus::TakerBondPaid,
            entered_at_micros: 7,
        };
        let json = serde_json::to_value(&job).expect("json");
        assert_eq!(json["status"], "TAKER_BOND_PAID");
        let back: LapseOffer = serde_json::from_value(json).expect("parse");
        assert_eq!(back, job);
        let bad = serde_json::json!({"offer_id": uuid::Uuid::nil(), "status": "NOPE", "entered_at_micros": 1});
        assert!(serde_json::from_value::<LapseOffer>(bad).is_err());
    }

    #[test]
    fn a_restarted_watch_chain_has_keys_of_its_own() {
        let first = WatchMintQuote::first("q");
        let restarted = WatchMintQuote {
            chain: Some("sweep:60".to_owned()),
            ..first.clone()
        };
        assert_eq!(first.idempotency_key().as_deref(), Some("watch:q:0"));
        assert_eq!(first.next().idempotency_key().as_deref(), Some("watch:q:1"));
        assert_eq!(
            restarted.next().idempotency_key().as_deref(),
            Some("sweep:60:q:1")
        );
        let old: WatchMintQuote =
            serde_json::from_str(r#"{"quote_id":"q","round":2}"#).expect("old payload");
        assert_eq!(old.chain, None);
    }
}
