//! Gauges that need the database, computed at scrape time: one query (a `UNION ALL` of small
//! aggregates) per refresh, at most once per `ttl`, however many scrapers and series there
//! are. Fleet-wide numbers, so only the api's admin listener reports them; workers report what
//! happens inside their own process.

use std::time::{Duration, Instant};

use sqlx::PgPool;
use tokio::sync::Mutex;

use super::names;
use crate::db::alerts::OVERDUE_PAYOUT_GRACE;
use crate::domain::offer::ALL_STATUSES;
use crate::jobs::queues;

/// The states `openpleb_jobs` reports.
const JOB_STATES: &[&str] = &["queued", "running", "failed", "dead"];

/// The scrape-time gauges of one database, refreshed at most once per `ttl`.
#[derive(Debug)]
pub struct DbGauges {
    pool: PgPool,
    ttl: Duration,
    reconcile_window: Duration,
    last: Mutex<Option<Instant>>,
}

impl DbGauges {
    /// Gauges over `pool`, cached for `ttl`; `reconcile_window` is how long a live wallet may
    /// go unreconciled before it counts as behind.
    pub fn new(pool: PgPool, ttl: Duration, reconcile_window: Duration) -> Self {
        Self {
            pool,
            ttl,
            reconcile_window,
            last: Mutex::new(None),
        }
    }

    /// Refreshes the gauges unless they are younger than the cache time. Concurrent scrapes
    /// wait for one refresh instead of each running the query.
    pub async fn refresh(&self) {
        let mut last = self.last.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.ttl) {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        {
            let size = self.pool.size() as f64;
            let idle = self.pool.num_idle() as f64;
            let max = f64::from(self.pool.options().get_max_connections());
            metrics::gauge!(names::DB_POOL, "state" => "idle").set(idle);
            metrics::gauge!(names::DB_POOL, "state" => "used").set(size - idle);
            metrics::gauge!(names::DB_POOL, "state" => "max").set(max);
        }
        match self.query().await {
            Ok(rows) => {
                metrics::gauge!(names::DB_UP).set(1.0);
                apply(&rows);
                *last = Some(Instant::now());
            }
            Err(e) => {
                // Not cached: the next scrape tries again.
                tracing::warn!(error = %e, "metrics query failed");
                metrics::gauge!(names::DB_UP).set(0.0);
            }
        }
    }

    async fn query(&self) -> Result<Vec<Row>, sqlx::Error> {
        let grace = chrono::Duration::from_std(OVERDUE_PAYOUT_GRACE)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let window = chrono::Duration::from_std(self.reconcile_window)
            .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query_as(
            "select 'offers' as kind, status as a, '' as b, count(*)::float8 as v
               from offers group by status
             union all
             select 'sessions', '', '', count(*)::float8 from sessions
              where ended_at is null and expires_at > now()
             union all
             select 'wallets', '', '', count(*)::float8 from sessions
              where wallet_removed_at is null
             union all
             select 'ecash', '', '', coalesce(sum(case direction when 'in' then amount_sats
                                                              else -amount_sats end), 0)::float8
               from ledger_entries
             union all
             select 'jobs', job_type,
                    case when status in ('Pending', 'Queued') then 'queued'
                         when status = 'Running' then 'running'
                         when status = 'Killed' or attempts >= max_attempts then 'dead'
                         else 'failed' end,
                    count(*)::float8
               from apalis.jobs where status in ('Pending', 'Queued', 'Running', 'Failed', 'Killed')
              group by 2, 3
             union all
             select 'overdue', '', '', count(*)::float8 from payouts
              where (state = 'RECORDED' and created_at < now() - $1)
                 or (state = 'RELEASED' and party = 'platform' and released_at < now() - $1)
             union all
             select 'behind', '', '', count(*)::float8 from sessions s
               left join wallet_checks c on c.wallet_id = session_wallet_id(s.id)
              where s.wallet_removed_at is null and s.created_at < now() - $2
                and (c.checked_at is null or c.checked_at < now() - $2)
             union all
             select 'disputes_admin', '', '', count(*)::float8 from disputes
              where stage = 'waiting_admin'
             union all
             select 'disputes_24h', '', '', count(*)::float8 from disputes
              where opened_at > now() - interval '24 hours'
             union all
             select 'settled_24h', '', '', count(*)::float8 from offers
              where status in ('COMPLETED', 'RESOLVED')
                and state_entered_at > now() - interval '24 hours'
             union all
             select 'treasury', '', '', balance_sats::float8 from treasury
             union all
             select 'reconcile_age', '', '',
                    coalesce(extract(epoch from now() - max(checked_at)), -1)::float8
               from wallet_checks",
        )
        .bind(grace)
        .bind(window)
        .fetch_all(&self.pool)
        .await
    }
}

/// One aggregate: which gauge, up to two labels, the value.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    kind: String,
    a: String,
    b: String,
    v: f64,
}

/// Sets every gauge from `rows`; labelled series absent from the rows are set to zero, so a
/// status or queue that empties reads 0 instead of its last value.
fn apply(rows: &[Row]) {
    for s in ALL_STATUSES {
        metrics::gauge!(names::OFFERS, "status" => s.as_str()).set(0.0);
    }
    for q in queues::ALL {
        for st in JOB_STATES {
            metrics::gauge!(names::JOBS, "queue" => *q, "state" => *st).set(0.0);
        }
    }
    for r in rows {
        match r.kind.as_str() {
            "offers" => metrics::gauge!(names::OFFERS, "status" => r.a.clone()).set(r.v),
            "sessions" => metrics::gauge!(names::SESSIONS_ACTIVE).set(r.v),
            "wallets" => metrics::gauge!(names::SESSION_WALLETS).set(r.v),
            "ecash" => metrics::gauge!(names::ECASH_HELD).set(r.v),
            "treasury" => metrics::gauge!(names::TREASURY_BALANCE).set(r.v),
            "jobs" => {
                metrics::gauge!(names::JOBS, "queue" => r.a.clone(), "state" => r.b.clone())
                    .set(r.v);
            }
            "overdue" => metrics::gauge!(names::PAYOUTS_OVERDUE).set(r.v),
            "behind" => metrics::gauge!(names::RECONCILE_BEHIND).set(r.v),
            "reconcile_age" => metrics::gauge!(names::RECONCILE_AGE).set(r.v),
            "disputes_admin" => metrics::gauge!(names::DISPUTES_WAITING_ADMIN).set(r.v),
            "disputes_24h" => metrics::gauge!(names::DISPUTES_24H).set(r.v),
            "settled_24h" => metrics::gauge!(names::TRADES_SETTLED_24H).set(r.v),
            _ => {}
        }
    }
    // The average from two rows the query already returns, so it costs no query of its own and
    // is consistent with them (one snapshot).
    let value = |kind: &str| rows.iter().find(|r| r.kind == kind).map(|r| r.v);
    if let (Some(ecash), Some(wallets)) = (value("ecash"), value("wallets")) {
        let average = if wallets > 0.0 { ecash / wallets } else { 0.0 };
        metrics::gauge!(names::ECASH_PER_WALLET).set(average);
    }
}
