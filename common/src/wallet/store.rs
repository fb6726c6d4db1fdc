//! cdk storage on sqlx's SQLite driver.
//!
//! cdk-sqlite links rusqlite and an old `libsqlite3-sys`, which cannot live in one binary with
//! sqlx 0.9 (Cargo allows one `links = "sqlite3"` crate). cdk-sql-common is generic over a small
//! pool/executor/transaction contract, so this module implements that contract on
//! `sqlx::SqliteConnection`. The same adapter backs the per-session wallets
//! ([`WalletSqlxDatabase`]) and the in-process test/dev mint ([`MintSqlxDatabase`],
//! [`MintSqlxAuthDatabase`]). cdk-common's conformance suites run against it in
//! `common/tests/cdk_store_conformance.rs`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cdk_common::database::Error;
use cdk_sql_common::database::{DatabaseConnector, DatabaseExecutor, DatabaseTransaction};
use cdk_sql_common::pool::{self, DatabasePool};
use cdk_sql_common::stmt::{Column, SqlPart, Statement};
use cdk_sql_common::value::Value;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection, TypeInfo, ValueRef};
use tokio::sync::{Mutex, Notify};

/// A cdk wallet database stored in one SQLite file through sqlx.
pub type WalletSqlxDatabase = cdk_sql_common::SQLWalletDatabase<SqlxSqlitePool>;
/// A cdk mint database through sqlx (used by the embedded test and dev mint).
pub type MintSqlxDatabase = cdk_sql_common::SQLMintDatabase<SqlxSqlitePool>;
/// The mint's NUT-21/22 auth database through sqlx.
pub type MintSqlxAuthDatabase = cdk_sql_common::mint::SQLMintAuthDatabase<SqlxSqlitePool>;

/// How a statement refused by the store's [`WriteFence`] starts its error message.
pub const FENCED: &str = "write fenced";

/// How long a statement waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts live SQLite connections of one database so a caller can wait until every one of them
/// is closed (and the WAL checkpointed) before it deletes the file.
#[derive(Debug, Default)]
pub struct OpenConnections {
    count: AtomicUsize,
    closed: Notify,
}

impl OpenConnections {
    /// Number of connections currently open.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no connection is open, or the timeout passes. Returns whether all closed.
    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.closed.notified();
            if self.count() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.count() == 0;
            }
        }
    }

    fn opened(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn closed(&self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
        self.closed.notify_waiters();
    }
}

/// Asked before every statement a database runs (a wallet's lease, see
/// [`super::fence`]): an error refuses the statement. Rolling back is always allowed.
pub trait WriteFence: fmt::Debug + Send + Sync {
    /// `Err(why)` when statements may no longer run.
    fn check(&self) -> Result<(), String>;
}

/// Where a database lives and how many connections its pool may hold.
pub struct SqlxSqliteConfig {
    path: Option<PathBuf>,
    max_size: usize,
    open: Arc<OpenConnections>,
    fence: Option<Arc<dyn WriteFence>>,
    /// An in-memory database exists only inside its one connection; once that connection has
    /// been handed out, a replacement would silently be an empty database.
    in_memory_opened: AtomicBool,
}

impl SqlxSqliteConfig {
    /// A file-backed database with one connection: session wallets do short operations and
    /// never hold a transaction across an HTTP call, and every connection costs an OS thread.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::file_with_pool(path, 1)
    }

    /// A file-backed database with a pool of `max_size` connections (the mint).
    pub fn file_with_pool(path: impl Into<PathBuf>, max_size: usize) -> Self {
        Self {
            path: Some(path.into()),
            max_size: max_size.max(1),
            open: Arc::default(),
            fence: None,
            in_memory_opened: AtomicBool::new(false),
        }
    }

    /// A private in-memory database (one connection, by necessity).
    pub fn memory() -> Self {
        Self {
            path: None,
            max_size: 1,
            open: Arc::default(),
            fence: None,
            in_memory_opened: AtomicBool::new(false),
        }
    }

    /// Every statement first asks `fence` (rollbacks excepted).
    pub fn fenced(mut self, fence: Arc<dyn WriteFence>) -> Self {
        self.fence = Some(fence);
        self
    }

    /// The tracker of this database's open connections.
    pub fn open_connections(&self) -> Arc<OpenConnections> {
        self.open.clone()
    }

    fn connect_options(&self) -> SqliteConnectOptions {
        let base = match &self.path {
            Some(path) => SqliteConnectOptions::new().filename(path),
            None => SqliteConnectOptions::from_str("sqlite::memory:")
                .unwrap_or_else(|_| SqliteConnectOptions::new()),
        };
        // Same pragmas as cdk-sqlite; synchronous=FULL because these files hold bearer money.
        let base = base
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        if self.max_size > 1 || self.path.is_none() {
            return base
                .pragma("mmap_size", "5242880")
                .statement_cache_capacity(64);
        }
        // A session wallet: thousands are open at once and each file is a few hundred KiB, which
        // the OS page cache holds anyway. No memory map (its pages count as the process' own),
        // a 16 KiB page cache and 8 cached statements: 0.47 MiB per open wallet with SQLite's
        // defaults, 0.258 with a 32 KiB cache, less with 16 (`scripts/bench --only wallets`).
        base.pragma("mmap_size", "0")
            .pragma("cache_size", "-16")
            .statement_cache_capacity(8)
    }
}

impl Clone for SqlxSqliteConfig {
    /// A clone describes a new pool: it gets its own connection tracker and, for `:memory:`, its
    /// own database.
    fn clone(&self) -> Self {
        Self {
            path: self.path.clone(),
            max_size: self.max_size,
            open: Arc::default(),
            fence: self.fence.clone(),
            in_memory_opened: AtomicBool::new(false),
        }
    }
}

impl fmt::Debug for SqlxSqliteConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlxSqliteConfig")
            .field("path", &self.path)
            .field("max_size", &self.max_size)
            .finish()
    }
}

impl pool::DatabaseConfig for SqlxSqliteConfig {
    fn max_size(&self) -> usize {
        self.max_size
    }

    fn default_timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
}

impl From<&str> for SqlxSqliteConfig {
    fn from(path: &str) -> Self {
        if path.contains(":memory:") {
            Self::memory()
        } else {
            Self::file(path)
        }
    }
}

impl From<PathBuf> for SqlxSqliteConfig {
    fn from(path: PathBuf) -> Self {
        Self::file(path)
    }
}

impl From<&Path> for SqlxSqliteConfig {
    fn from(path: &Path) -> Self {
        Self::file(path)
    }
}

/// Error raised while creating a connection.
#[derive(Debug, thiserror::Error)]
pub enum SqlxSqliteError {
    /// The in-memory database's only connection was discarded, so its data is gone.
    #[error("in-memory database was lost after its connection was discarded")]
    InMemoryLost,
}

/// The cdk-sql-common pool manager for sqlx SQLite connections.
#[derive(Debug)]
pub struct SqlxSqlitePool;

impl DatabasePool for SqlxSqlitePool {
    type Connection = SqlxSqliteConnection;
    type Config = SqlxSqliteConfig;
    type Error = SqlxSqliteError;

    fn new_resource(
        config: &Self::Config,
        stale: Arc<AtomicBool>,
        _timeout: Duration,
    ) -> Result<Self::Connection, pool::Error<Self::Error>> {
        if config.path.is_none() && config.in_memory_opened.swap(true, Ordering::SeqCst) {
            tracing::error!("in-memory SQLite connection was discarded; its database is lost");
            return Err(pool::Error::Resource(SqlxSqliteError::InMemoryLost));
        }
        // Connecting is async in sqlx but this hook is sync, so connect on first use.
        Ok(SqlxSqliteConnection {
            options: config.connect_options(),
            conn: Mutex::new(None),
            stale,
            in_transaction: AtomicBool::new(false),
            open: config.open.clone(),
            fence: config.fence.clone(),
        })
    }

    fn drop(resource: Self::Connection) {
        resource.close_in_background();
    }
}

/// One lazily opened sqlx SQLite connection.
pub struct SqlxSqliteConnection {
    options: SqliteConnectOptions,
    conn: Mutex<Option<SqliteConnection>>,
    stale: Arc<AtomicBool>,
    in_transaction: AtomicBool,
    open: Arc<OpenConnections>,
    fence: Option<Arc<dyn WriteFence>>,
}

impl fmt::Debug for SqlxSqliteConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlxSqliteConnection")
            .field("filename", &self.options.get_filename())
            .finish()
    }
}

impl SqlxSqliteConnection {
    /// Runs `op` on the connection, opening it first if needed, if the fence allows it.
    async fn with_conn<T, F>(&self, op: F) -> Result<T, Error>
    where
        F: for<'c> FnOnce(
            &'c mut SqliteConnection,
        ) -> futures::future::BoxFuture<'c, Result<T, sqlx::Error>>,
    {
        if let Some(fence) = &self.fence {
            fence
                .check()
                .map_err(|why| Error::Internal(format!("{FENCED}: {why}")))?;
        }
        self.with_conn_unfenced(op).await
    }

    /// [`Self::with_conn`] without asking the fence: for rolling back only.
    async fn with_conn_unfenced<T, F>(&self, op: F) -> Result<T, Error>
    where
        F: for<'c> FnOnce(
            &'c mut SqliteConnection,
        ) -> futures::future::BoxFuture<'c, Result<T, sqlx::Error>>,
    {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            let conn = SqliteConnection::connect_with(&self.options)
                .await
                .map_err(|e| self.map_error(e))?;
            self.open.opened();
            *guard = Some(conn);
        }
        let conn = guard
            .as_mut()
            .ok_or_else(|| Error::Internal("sqlite connection missing".to_owned()))?;
        op(conn).await.map_err(|e| self.map_error(e))
    }

    fn map_error(&self, err: sqlx::Error) -> Error {
        match &err {
            sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {
                return Error::Duplicate;
            }
            sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::PoolClosed => {
                self.stale.store(true, Ordering::SeqCst);
            }
            _ => {}
        }
        tracing::debug!(error = %err, "sqlite statement failed");
        Error::Database(Box::new(err))
    }

    fn close_in_background(self) {
        let Some(conn) = self.conn.into_inner() else {
            return;
        };
        let open = self.open;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    // close() checkpoints the WAL; an error still ends the connection.
                    let _ = conn.close().await;
                    open.closed();
                });
            }
            Err(_) => {
                drop(conn);
                open.closed();
            }
        }
    }

    async fn run_plain(&self, sql: &'static str) -> Result<(), Error> {
        // Undoing a transaction writes nothing: allowed after the fence closes.
        if sql == "ROLLBACK" {
            self.with_conn_unfenced(move |c| plain(c, sql)).await
        } else {
            self.with_conn(move |c| plain(c, sql)).await
        }
    }
}

/// Runs one statement without parameters.
fn plain<'c>(
    c: &'c mut SqliteConnection,
    sql: &'static str,
) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>> {
    Box::pin(async move {
        sqlx::raw_sql(sql).execute(c).await?;
        Ok(())
    })
}

/// Turns a cdk statement into SQL text and sqlx arguments.
fn prepare(statement: Statement) -> Result<(String, SqliteArguments), Error> {
    use sqlx::Arguments;
    let (sql, values) = statement.to_sql()?;
    // SQLite has no row locks; cdk's Postgres-flavoured queries end in FOR UPDATE.
    let sql = sql.trim().trim_end_matches("FOR UPDATE").to_owned();
    let mut args = SqliteArguments::default();
    for value in values {
        let added = match value {
            Value::Null => args.add(None::<i64>),
            Value::Integer(i) => args.add(i),
            Value::Real(f) => args.add(f),
            Value::Text(s) => args.add(s),
            Value::Blob(b) => args.add(b),
        };
        added.map_err(|e| Error::Internal(e.to_string()))?;
    }
    Ok((sql, args))
}

/// Converts one row to cdk's column values by each value's runtime storage class.
fn row_to_columns(row: &SqliteRow) -> Result<Vec<Column>, sqlx::Error> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Value::Null);
            }
            let class = raw.type_info().name().to_owned();
            Ok(match class.as_str() {
                "INTEGER" => Value::Integer(row.try_get_unchecked::<i64, _>(i)?),
                "REAL" => Value::Real(row.try_get_unchecked::<f64, _>(i)?),
                "BLOB" => Value::Blob(row.try_get_unchecked::<Vec<u8>, _>(i)?),
                _ => Value::Text(row.try_get_unchecked::<String, _>(i)?),
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl DatabaseExecutor for SqlxSqliteConnection {
    fn name() -> &'static str {
        // Selects cdk's `migrations/sqlite/*`; files are byte-compatible with cdk-sqlite's.
        "sqlite"
    }

    async fn execute(&self, statement: Statement) -> Result<usize, Error> {
        let (sql, args) = prepare(statement)?;
        self.with_conn(move |c| {
            Box::pin(async move {
                let done = sqlx::query_with(AssertSqlSafe(sql), args)
                    .execute(c)
                    .await?;
                // Exact: cdk treats "0 rows" from ON CONFLICT DO NOTHING as a duplicate.
                Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
            })
        })
        .await
    }

    async fn fetch_one(&self, statement: Statement) -> Result<Option<Vec<Column>>, Error> {
        let (sql, args) = prepare(statement)?;
        self.with_conn(move |c| {
            Box::pin(async move {
                let row = sqlx::query_with(AssertSqlSafe(sql), args)
                    .fetch_optional(c)
                    .await?;
                row.as_ref().map(row_to_columns).transpose()
            })
        })
        .await
    }

    async fn fetch_all(&self, statement: Statement) -> Result<Vec<Vec<Column>>, Error> {
        let (sql, args) = prepare(statement)?;
        self.with_conn(move |c| {
            Box::pin(async move {
                let rows = sqlx::query_with(AssertSqlSafe(sql), args)
                    .fetch_all(c)
                    .await?;
                rows.iter().map(row_to_columns).collect()
            })
        })
        .await
    }

    async fn pluck(&self, statement: Statement) -> Result<Option<Column>, Error> {
        Ok(self
            .fetch_one(statement)
            .await?
            .and_then(|row| row.into_iter().next()))
    }

    async fn batch(&self, mut statement: Statement) -> Result<(), Error> {
        let part = statement
            .parts
            .pop()
            .ok_or_else(|| Error::Internal("empty SQL".to_owned()))?;
        let sql = match part {
            SqlPart::Raw(sql) if statement.parts.is_empty() => sql.to_string(),
            _ => {
                return Err(Error::Internal(
                    "batch does not support placeholders".to_owned(),
                ))
            }
        };
        self.with_conn(move |c| {
            Box::pin(async move {
                sqlx::raw_sql(AssertSqlSafe(sql)).execute(c).await?;
                Ok(())
            })
        })
        .await
    }
}

/// Transactions as cdk-sqlite does them: `BEGIN IMMEDIATE` takes the write lock up front because
/// SQLite has no row locks to take later.
#[derive(Debug)]
pub struct SqlxSqliteTransaction;

#[async_trait::async_trait]
impl DatabaseTransaction<SqlxSqliteConnection> for SqlxSqliteTransaction {
    async fn begin(conn: &mut SqlxSqliteConnection) -> Result<(), Error> {
        conn.run_plain("BEGIN IMMEDIATE").await?;
        conn.in_transaction.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn commit(conn: &mut SqlxSqliteConnection) -> Result<(), Error> {
        conn.run_plain("COMMIT").await?;
        conn.in_transaction.store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn rollback(conn: &mut SqlxSqliteConnection) -> Result<(), Error> {
        // Nothing to undo when BEGIN never ran. Failing here would mark the connection stale,
        // which for an in-memory database throws the database away.
        if !conn.in_transaction.load(Ordering::SeqCst) {
            return Ok(());
        }
        conn.run_plain("ROLLBACK").await?;
        conn.in_transaction.store(false, Ordering::SeqCst);
        Ok(())
    }
}

impl DatabaseConnector for SqlxSqliteConnection {
    type Transaction = SqlxSqliteTransaction;
}

#[cfg(test)]
mod tests;
