//! Every metric's name, in one place: the code records through these constants,
//! `docs/operations.md` lists them, and a test checks that the alert rules and the dashboard name only these.

/// Counter: HTTP requests by `listener` (public, admin), `method`, `route` (the matched route
/// template, or `unmatched`) and `status`.
pub const HTTP_REQUESTS: &str = "openpleb_http_requests_total";
/// Histogram: HTTP request latency by `listener`, `method` and `route`, seconds.
pub const HTTP_REQUEST_DURATION: &str = "openpleb_http_request_duration_seconds";
/// Counter: wallet operations by `kind` and `result` (ok, error).
pub const WALLET_OPERATIONS: &str = "openpleb_wallet_operations_total";
/// Histogram: wallet operation latency by `kind`, seconds.
pub const WALLET_OPERATION_DURATION: &str = "openpleb_wallet_operation_duration_seconds";
/// Gauge: session wallets this process holds open.
pub const WALLETS_OPEN: &str = "openpleb_wallets_open";
/// Counter: job runs by `queue` and `outcome` (ok, error).
pub const JOBS_RUN: &str = "openpleb_jobs_run_total";
/// Histogram: job run latency by `queue`, seconds.
pub const JOB_DURATION: &str = "openpleb_job_duration_seconds";
/// Counter: offers created.
pub const OFFERS_CREATED: &str = "openpleb_offers_created_total";
/// Counter: offers settled by `outcome` (COMPLETED, REFUND_MAKER, MAKER_WINS, ...).
pub const OFFERS_SETTLED: &str = "openpleb_offers_settled_total";
/// Histogram: time from an offer's creation to its settlement by `outcome`, seconds.
pub const OFFER_DURATION: &str = "openpleb_offer_duration_seconds";
/// Counter: BAT verifications at the mint by `result` (ok, rejected, error).
pub const BAT_VERIFICATIONS: &str = "openpleb_bat_verifications_total";
/// Histogram: BAT verification latency, seconds.
pub const BAT_VERIFICATION_DURATION: &str = "openpleb_bat_verification_duration_seconds";
/// Counter: session wallets removed by the cleanup.
pub const SESSIONS_CLEANED: &str = "openpleb_sessions_cleaned_total";
/// Histogram: lifetime of a session (opening to its end or expiry), recorded when the cleanup
/// removes its wallet, seconds.
pub const SESSION_DURATION: &str = "openpleb_session_duration_seconds";
/// Counter: rows deleted by the retention job by `table`.
pub const RETENTION_PRUNED: &str = "openpleb_retention_pruned_total";
/// Counter: trade data rows re-sealed under the current `DATA_SECRETS` key.
pub const TRADE_DATA_RESEALED: &str = "openpleb_trade_data_resealed_total";
/// Counter: wallet files copied into the archive before their deletion.
pub const WALLETS_ARCHIVED: &str = "openpleb_wallets_archived_total";
/// Histogram: time of one database statement by `op` (select, insert, update, delete,
/// other), seconds.
pub const DB_QUERY_DURATION: &str = "openpleb_db_query_duration_seconds";
/// Histogram: time spent waiting for a connection from the pool, seconds.
pub const DB_POOL_WAIT: &str = "openpleb_db_pool_wait_seconds";
/// Gauge: 1 while this process reaches a `dependency` (mint, database), else 0; each
/// process reports its own view (`crate::health`).
pub const DEPENDENCY_UP: &str = "openpleb_dependency_up";
/// Counter: notices delivered (the push service or webhook answered 2xx) by `channel`
/// (webpush, webhook).
pub const NOTICES_SENT: &str = "openpleb_notices_sent_total";
/// Counter: failed deliveries by `channel` and `class` (gone, rate_limited, server_error,
/// rejected, blocked, network, given_up, unsendable); a retried failure counts each time.
pub const NOTICES_FAILED: &str = "openpleb_notices_failed_total";
/// Histogram: time from the move that caused a notice to its delivery's 2xx, seconds.
pub const NOTICE_DELIVERY_DURATION: &str = "openpleb_notice_delivery_seconds";
/// Counter: looks at unpaid quotes by their watchers, by `look`: `asked` (the mint was
/// asked), `subscribed` (left to the mint's subscription, which had just reported its state),
/// `ended` (its offer or claim ended: left to the subscription until one last look at its
/// expiry).
pub const QUOTE_LOOKS: &str = "openpleb_quote_looks_total";
/// Gauge: quotes this worker's NUT-17 subscriptions at the mint cover.
pub const QUOTES_SUBSCRIBED: &str = "openpleb_quotes_subscribed";
/// Counter: platform tokens the treasury sweep found spent by someone else.
pub const PLATFORM_TOKENS_SPENT_ELSEWHERE: &str = "openpleb_platform_tokens_spent_elsewhere_total";
/// Counter: quotes the mint reported ISSUED that their wallet never minted (not credited).
pub const QUOTES_ISSUED_ELSEWHERE: &str = "openpleb_quotes_issued_elsewhere_total";
/// Counter: treasury withdrawals ended, by `outcome` (sent: a locked token; paid: an invoice;
/// failed: nothing left the treasury).
pub const TREASURY_WITHDRAWALS: &str = "openpleb_treasury_withdrawals_total";

/// Gauge (scrape): offers by `status`.
pub const OFFERS: &str = "openpleb_offers";
/// Gauge (scrape): sessions not ended and not expired.
pub const SESSIONS_ACTIVE: &str = "openpleb_sessions_active";
/// Gauge (scrape): session wallets not yet removed (on disk or restorable).
pub const SESSION_WALLETS: &str = "openpleb_session_wallets";
/// Gauge (scrape): the treasury wallet's spendable sats, as a worker last read them.
pub const TREASURY_BALANCE: &str = "openpleb_treasury_balance_sats";
/// Gauge (scrape): sats the platform holds for traders (the ledger's ins minus outs).
pub const ECASH_HELD: &str = "openpleb_ecash_held_sats";
/// Gauge (scrape): [`ECASH_HELD`] per session wallet not yet removed (0 with no wallet).
pub const ECASH_PER_WALLET: &str = "openpleb_ecash_per_wallet_sats";
/// Gauge (scrape): jobs by `queue` and `state` (queued, running, failed, dead).
pub const JOBS: &str = "openpleb_jobs";
/// Gauge (scrape): payouts owed and not moving past the grace.
pub const PAYOUTS_OVERDUE: &str = "openpleb_payouts_overdue";
/// Gauge (scrape): live session wallets the reconciliation has not checked within its window.
pub const RECONCILE_BEHIND: &str = "openpleb_reconcile_wallets_behind";
/// Gauge (scrape): seconds since the reconciliation last checked any wallet.
pub const RECONCILE_AGE: &str = "openpleb_reconcile_last_check_age_seconds";
/// Gauge (scrape): 1 when the scrape's database query succeeded, else 0.
pub const DB_UP: &str = "openpleb_db_up";
/// Gauge (scrape): the api's connection pool by `state` (idle, used, max).
pub const DB_POOL: &str = "openpleb_db_pool_connections";

/// Gauge (scrape): disputes waiting for an admin's resolution.
pub const DISPUTES_WAITING_ADMIN: &str = "openpleb_disputes_waiting_admin";
/// Gauge (scrape): issues opened over the last 24 hours.
pub const DISPUTES_24H: &str = "openpleb_disputes_24h";
/// Gauge (scrape): trades settled (completed or resolved) over the last 24 hours.
pub const TRADES_SETTLED_24H: &str = "openpleb_trades_settled_24h";

/// Every name above: what the code exports.
pub const ALL: &[&str] = &[
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    WALLET_OPERATIONS,
    WALLET_OPERATION_DURATION,
    WALLETS_OPEN,
    DEPENDENCY_UP,
    JOBS_RUN,
    JOB_DURATION,
    OFFERS_CREATED,
    OFFERS_SETTLED,
    OFFER_DURATION,
    BAT_VERIFICATIONS,
    BAT_VERIFICATION_DURATION,
    SESSIONS_CLEANED,
    SESSION_DURATION,
    RETENTION_PRUNED,
    TRADE_DATA_RESEALED,
    WALLETS_ARCHIVED,
    DB_QUERY_DURATION,
    DB_POOL_WAIT,
    PLATFORM_TOKENS_SPENT_ELSEWHERE,
    QUOTES_ISSUED_ELSEWHERE,
    TREASURY_WITHDRAWALS,
    NOTICES_SENT,
    NOTICES_FAILED,
    NOTICE_DELIVERY_DURATION,
    QUOTE_LOOKS,
    QUOTES_SUBSCRIBED,
    OFFERS,
    SESSIONS_ACTIVE,
    SESSION_WALLETS,
    ECASH_HELD,
    ECASH_PER_WALLET,
    TREASURY_BALANCE,
    JOBS,
    PAYOUTS_OVERDUE,
    RECONCILE_BEHIND,
    RECONCILE_AGE,
    DB_UP,
    DB_POOL,
    DISPUTES_WAITING_ADMIN,
    DISPUTES_24H,
    TRADES_SETTLED_24H,
];

/// The histograms among them (exported as `_bucket`, `_sum` and `_count` series).
pub const HISTOGRAMS: &[&str] = &[
    HTTP_REQUEST_DURATION,
    WALLET_OPERATION_DURATION,
    JOB_DURATION,
    OFFER_DURATION,
    BAT_VERIFICATION_DURATION,
    SESSION_DURATION,
    DB_QUERY_DURATION,
    DB_POOL_WAIT,
    NOTICE_DELIVERY_DURATION,
];

/// Whether `series` (a name as a rule or dashboard writes it, histogram suffixes included) is
/// one of ours.
pub fn is_exported(series: &str) -> bool {
    let base = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| series.strip_suffix(s).filter(|b| HISTOGRAMS.contains(b)))
        .unwrap_or(series);
    ALL.contains(&base) && (base == series || HISTOGRAMS.contains(&base))
}

/// Registers help texts (the `# HELP` lines) for the recorder.
pub(super) fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by listener, method, route and status"
    );
    describe_histogram!(HTTP_REQUEST_DURATION, Unit::Seconds, "HTTP request latency");
    describe_counter!(WALLET_OPERATIONS, "Wallet operations by kind and result");
    describe_histogram!(
        WALLET_OPERATION_DURATION,
        Unit::Seconds,
        "Wallet operation latency"
    );
    describe_gauge!(WALLETS_OPEN, "Session wallets open in this process");
    describe_gauge!(
        DEPENDENCY_UP,
        "1 while this process reaches the dependency (mint, database), else 0"
    );
    describe_counter!(JOBS_RUN, "Job runs by queue and outcome");
    describe_histogram!(JOB_DURATION, Unit::Seconds, "Job run latency");
    describe_counter!(OFFERS_CREATED, "Offers created");
    describe_counter!(OFFERS_SETTLED, "Offers settled by outcome");
    describe_histogram!(
        OFFER_DURATION,
        Unit::Seconds,
        "Offer creation to settlement"
    );
    describe_counter!(BAT_VERIFICATIONS, "BAT verifications at the mint by result");
    describe_histogram!(
        BAT_VERIFICATION_DURATION,
        Unit::Seconds,
        "BAT verification latency"
    );
    describe_counter!(SESSIONS_CLEANED, "Session wallets removed by the cleanup");
    describe_histogram!(
        SESSION_DURATION,
        Unit::Seconds,
        "Session lifetime, opening to end or expiry"
    );
    describe_counter!(RETENTION_PRUNED, "Rows deleted by the retention job");
    describe_counter!(
        TRADE_DATA_RESEALED,
        "Trade data rows re-sealed under the current DATA_SECRETS key"
    );
    describe_counter!(WALLETS_ARCHIVED, "Wallet files archived before deletion");
    describe_counter!(
        PLATFORM_TOKENS_SPENT_ELSEWHERE,
        "Platform tokens found spent by someone other than the treasury"
    );
    describe_counter!(
        QUOTES_ISSUED_ELSEWHERE,
        "Quotes the mint reported issued that their wallet never minted"
    );
    describe_counter!(
        TREASURY_WITHDRAWALS,
        "Treasury withdrawals ended, by outcome (sent, paid, failed)"
    );
    describe_gauge!(
        TREASURY_BALANCE,
        "Treasury wallet's spendable sats as a worker last read them"
    );
    describe_counter!(NOTICES_SENT, "Notices delivered by channel");
    describe_counter!(
        NOTICES_FAILED,
        "Failed notice deliveries by channel and class"
    );
    describe_histogram!(
        NOTICE_DELIVERY_DURATION,
        Unit::Seconds,
        "Move to the notice's delivery"
    );
    describe_counter!(
        QUOTE_LOOKS,
        "Looks at unpaid quotes by their watchers, by look (asked, subscribed, ended)"
    );
    describe_gauge!(
        QUOTES_SUBSCRIBED,
        "Quotes this worker's subscriptions at the mint cover"
    );
    describe_histogram!(
        DB_QUERY_DURATION,
        Unit::Seconds,
        "Database statement time by operation"
    );
    describe_histogram!(
        DB_POOL_WAIT,
        Unit::Seconds,
        "Wait for a connection from the pool"
    );
    describe_gauge!(OFFERS, "Offers by status");
    describe_gauge!(SESSIONS_ACTIVE, "Sessions not ended and not expired");
    describe_gauge!(SESSION_WALLETS, "Session wallets not yet removed");
    describe_gauge!(ECASH_HELD, "Sats held for traders (ledger in minus out)");
    describe_gauge!(
        ECASH_PER_WALLET,
        "Sats held for traders per session wallet not yet removed"
    );
    describe_gauge!(JOBS, "Jobs by queue and state");
    describe_gauge!(PAYOUTS_OVERDUE, "Payouts owed and not moving");
    describe_gauge!(
        RECONCILE_BEHIND,
        "Live wallets not reconciled within the window"
    );
    describe_gauge!(RECONCILE_AGE, "Seconds since any wallet was reconciled");
    describe_gauge!(DB_UP, "1 if the metrics query reached PostgreSQL");
    describe_gauge!(DB_POOL, "Connection pool by state");
    describe_gauge!(
        DISPUTES_WAITING_ADMIN,
        "Disputes waiting for an admin's resolution"
    );
    describe_gauge!(DISPUTES_24H, "Issues opened over the last 24 hours");
    describe_gauge!(
        TRADES_SETTLED_24H,
        "Trades completed or resolved over the last 24 hours"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_series_count_as_their_metric() {
        assert!(is_exported("openpleb_job_duration_seconds_bucket"));
        assert!(is_exported("openpleb_jobs"));
        assert!(!is_exported("openpleb_jobs_bucket"));
        assert!(!is_exported("openpleb_disputes_24h_ratio"));
    }
}
