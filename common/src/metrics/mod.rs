//! Prometheus metrics: the process-wide recorder, every metric's name (documented in
//! `docs/operations.md`, "Metrics"), and the few helpers the code records through.
//!
//! Counters and histograms are recorded where things happen (HTTP middleware, wallet
//! manager, job wrapper, trade steps) through the `metrics` facade; gauges that need the
//! database are computed at scrape time by [`gauges::DbGauges`] behind a short cache, so a
//! scrape costs one round trip however many series it reports; database statement and pool
//! wait times come from sqlx's own timing events through [`db::layer`]. `render` serves both the admin
//! listener's `/metrics` and each worker's `WORKER_METRICS_ADDR`.

pub mod db;
pub mod gauges;
pub mod names;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Instant;

use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::domain::money::Outcome;

/// Histogram buckets, seconds: from a fast HTTP answer (5 ms) to a slow wallet saga or job
/// (2 min). One set for every histogram keeps the series count predictable.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Trade durations, seconds: a minute to a week (offers may sit in the book for days).
const TRADE_BUCKETS: &[f64] = &[
    60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21_600.0, 86_400.0, 259_200.0, 604_800.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process (later calls are no-ops) and describes
/// every metric. Without it the `metrics` macros record into nothing, which is what unit
/// tests want. `None` if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            names::OFFER_DURATION.to_owned(),
                        ),
                        TRADE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            names::SESSION_DURATION.to_owned(),
                        ),
                        TRADE_BUCKETS,
                    )
                });
            let handle = match builder.map(PrometheusBuilder::install_recorder) {
                Ok(Ok(handle)) => handle,
                Ok(Err(e)) | Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    return None;
                }
            };
            names::describe();
            Some(handle)
        })
        .as_ref()
}

/// The current metrics in Prometheus text format (installing the recorder if needed).
pub fn render() -> String {
    match install() {
        Some(handle) => {
            // Drains histogram buffers even when scrapes are rare.
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// A wallet operation slower than this is logged: a mint round trip or a wallet's commit
/// normally takes milliseconds, so seconds mean a stalled mint connection, lease or disk.
const SLOW_WALLET_OP: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs a wallet operation of `kind`, counting it by result and timing it; a slow one is also
/// logged (its kind and duration only).
pub async fn wallet_op<T, E, F>(kind: &'static str, op: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
{
    let start = Instant::now();
    let result = op.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    let took = start.elapsed();
    if took > SLOW_WALLET_OP {
        tracing::warn!(
            kind,
            outcome,
            ms = took.as_millis(),
            "slow wallet operation"
        );
    }
    metrics::counter!(names::WALLET_OPERATIONS, "kind" => kind, "result" => outcome).increment(1);
    metrics::histogram!(names::WALLET_OPERATION_DURATION, "kind" => kind)
        .record(took.as_secs_f64());
    result
}

/// Counts a job run of `queue` that took `started.elapsed()`.
pub fn job_finished(queue: &'static str, ok: bool, started: Instant) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!(names::JOBS_RUN, "queue" => queue, "outcome" => outcome).increment(1);
    metrics::histogram!(names::JOB_DURATION, "queue" => queue)
        .record(started.elapsed().as_secs_f64());
}

/// Counts a delivered notice on `channel` and the time since its move (`enqueued_at_ms`).
pub fn notice_sent(channel: &'static str, enqueued_at_ms: i64) {
    metrics::counter!(names::NOTICES_SENT, "channel" => channel).increment(1);
    let took = Utc::now()
        .timestamp_millis()
        .saturating_sub(enqueued_at_ms)
        .max(0);
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!(names::NOTICE_DELIVERY_DURATION).record(took as f64 / 1000.0);
}

/// Counts a failed delivery on `channel` by `class`.
pub fn notice_failed(channel: &'static str, class: &'static str) {
    metrics::counter!(names::NOTICES_FAILED, "channel" => channel, "class" => class).increment(1);
}

/// Counts a created offer.
pub fn offer_created() {
    metrics::counter!(names::OFFERS_CREATED).increment(1);
}

/// Counts an offer settled by `outcome` and how long it lived. Recorded inside the settling
/// transaction: a transaction that then fails to commit over-counts by one, which is rare (the
/// compare-and-set that won the move already succeeded) and harmless for a rate.
pub fn offer_settled(outcome: Outcome, created_at: DateTime<Utc>) {
    metrics::counter!(names::OFFERS_SETTLED, "outcome" => outcome.as_str()).increment(1);
    let age = (Utc::now() - created_at).num_milliseconds().max(0);
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!(names::OFFER_DURATION, "outcome" => outcome.as_str())
        .record(age as f64 / 1000.0);
}

/// Counts a BAT verification at the mint by `result` (`ok`, `rejected`, `error`) and its
/// latency.
pub fn bat_verified(result: &'static str, started: Instant) {
    metrics::counter!(names::BAT_VERIFICATIONS, "result" => result).increment(1);
    metrics::histogram!(names::BAT_VERIFICATION_DURATION).record(started.elapsed().as_secs_f64());
}

/// Counts a session whose wallet the cleanup removed; `lived_secs` is how long it was live.
pub fn session_cleaned(lived_secs: f64) {
    metrics::counter!(names::SESSIONS_CLEANED).increment(1);
    metrics::histogram!(names::SESSION_DURATION).record(lived_secs);
}

/// Counts a wallet file copied into the archive.
pub fn wallet_archived() {
    metrics::counter!(names::WALLETS_ARCHIVED).increment(1);
}

/// Counts a quote the mint reported ISSUED that its wallet never minted.
pub fn quote_issued_elsewhere() {
    metrics::counter!(names::QUOTES_ISSUED_ELSEWHERE).increment(1);
}

/// Counts a watcher's look at an unpaid quote (`asked`, `subscribed`, `ended`).
pub fn quote_look(look: &'static str) {
    metrics::counter!(names::QUOTE_LOOKS, "look" => look).increment(1);
}

/// Sets the number of quotes this worker's subscriptions at the mint cover.
pub fn quotes_subscribed(count: usize) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(names::QUOTES_SUBSCRIBED).set(count as f64);
}

/// Sets the number of wallets this process holds open.
pub fn wallets_open(count: usize) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(names::WALLETS_OPEN).set(count as f64);
}
