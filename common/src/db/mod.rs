//! PostgreSQL access: the pool, the migrations, and one repository module per aggregate.
//!
//! Queries are runtime-checked (`sqlx::query_as`) and covered by integration tests against a
//! real database, so builds need no live database. State changes are compare-and-set
//! (`UPDATE .. WHERE state = $expected`) and report whether they won.

pub mod admin_actions;
pub mod alerts;
pub mod claims;
pub mod cron;
pub mod disputes;
pub mod fund_intents;
pub mod invites;
pub mod leases;
pub mod ledger;
pub mod limits;
pub mod notify_targets;
pub mod offers;
pub mod payouts;
pub mod providers;
pub mod quotes;
pub mod receipts;
pub mod reputation;
pub mod retention;
pub mod sealed;
pub mod sessions;
pub mod treasury;
pub mod types;
pub mod users;
pub mod wallet_checks;

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

/// The application's migrations (`migrations/`), tracked in `public._sqlx_migrations`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens a pool of at most `size` connections that fails fast when the database is down.
pub async fn connect(url: &str, size: u32) -> Result<PgPool, sqlx::Error> {
    pool_options(size).connect(url).await
}

/// A pool like [`connect`]'s that opens no connection yet: a process starts while PostgreSQL
/// is down and connects once it answers (`crate::health::watch` migrates it then).
pub fn connect_lazy(url: &str, size: u32) -> Result<PgPool, sqlx::Error> {
    pool_options(size).connect_lazy(url)
}

/// Whether `err` means PostgreSQL could not be reached or is going away (connection refused or
/// lost, no connection within the pool's timeout, the server shutting down or starting up),
/// rather than a problem with the statement: an outage, answered 503 and retried later.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P01-57P03: admin or crash shutdown, starting up.
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// The pool settings of [`connect`]: at most `size` connections, a 5 s acquire timeout,
/// every acquire reported as a debug event, which [`crate::metrics::db`] records as the pool
/// wait (sqlx reports statements by default), and no connection returned to the pool inside a
/// transaction ([`still_in_transaction`]).
pub fn pool_options(size: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(5))
        .acquire_time_level(log::LevelFilter::Debug)
        .after_release(|conn, _meta| {
            Box::pin(async move {
                let leaked = still_in_transaction(conn).await?;
                if leaked {
                    tracing::warn!("a pooled connection came back inside a transaction; closed");
                }
                Ok(!leaked)
            })
        })
}

/// Whether `conn` is inside a transaction the server opened and sqlx no longer tracks. A
/// `BEGIN` whose future was dropped after the server took it (a request or job cancelled at
/// that instant) leaves one: the next user's own `BEGIN` would then run inside it, with
/// `now()` frozen at the old start, and deadlines compared with `now()` would be judged in
/// the past. Inside an explicit transaction a statement's time differs from the
/// transaction's; in a statement of its own they are the same. (Sent as one simple query: the
/// extended protocol's several messages would make them differ anyway.)
pub async fn still_in_transaction(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::raw_sql("select now() <> statement_timestamp()")
        .fetch_one(conn)
        .await?;
    row.try_get(0)
}

/// Brings the schema up to date: the application's migrations, then apalis' queue schema.
///
/// Both migrators take sqlx's advisory lock, so an api and several workers starting at once
/// apply each migration exactly once.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    apalis_postgres::PostgresStorage::<()>::setup(pool).await?;
    Ok(())
}

/// The constraint a unique violation broke, if `err` is one.
pub fn violated_unique(err: &sqlx::Error) -> Option<String> {
    match err {
        sqlx::Error::Database(e) if e.code().as_deref() == Some("23505") => {
            Some(e.constraint().unwrap_or_default().to_owned())
        }
        _ => None,
    }
}

/// Whether an error is a foreign-key violation (SQLSTATE 23503): the row is still referenced.
pub fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.code().as_deref() == Some("23503"))
}

/// Whether an error is a unique-constraint violation (SQLSTATE 23505).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.code().as_deref() == Some("23505"))
}
