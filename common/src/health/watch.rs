//! The watchers: one task per dependency that checks it (the mint's `GET /v1/info`,
//! PostgreSQL's `select 1`) and records the verdict in [`Health`].
//!
//! While a dependency answers it is checked every [`UP_EVERY`]; once it does not, again after
//! [`DOWN_FIRST`], doubling to at most [`DOWN_AT_MOST`]: a service that comes back is noticed
//! within about two seconds, and a long outage costs one request every two seconds. A caller
//! that met a failure asks for a check at once ([`Health::suspect`]).
//!
//! The database watcher also brings the schema up to date, so a process starts without
//! PostgreSQL and migrates as soon as it answers (sqlx's advisory lock keeps concurrent starts
//! apart); until then the database counts as down. The mint watcher checks what the process
//! relies on at the mint ([`MintNeeds`]) at the first `/v1/info` that answers: a mint that
//! answers without it is a configuration error no waiting fixes, reported as [`Fatal`] for the
//! binary to exit on; one that passes tells what else it offers ([`Watchers::capabilities`]).

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::watch as channel;

use super::{Dependency, Health};
use crate::mint::{MintCapabilities, MintClient, MintNeeds};

/// How often a dependency that answers is checked.
pub const UP_EVERY: Duration = Duration::from_secs(5);
/// The first wait after a failed check; it doubles with every further failure.
pub const DOWN_FIRST: Duration = Duration::from_millis(250);
/// The longest wait between two checks of a dependency that does not answer.
pub const DOWN_AT_MOST: Duration = Duration::from_secs(2);
/// How long one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// A problem waiting cannot fix: the binary prints `message` (one line) and exits with
/// `exit_code`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Fatal {
    /// What is wrong, in one line.
    pub message: String,
    /// [`crate::config::CONFIG_EXIT_CODE`] for a mint that lacks what we rely on, 1 for a
    /// schema migration that failed against a database that answers.
    pub exit_code: i32,
}

/// The running watchers of one process; dropping this stops them.
#[derive(Debug)]
pub struct Watchers {
    tasks: Vec<tokio::task::AbortHandle>,
    fatal: channel::Receiver<Option<Fatal>>,
    offers: channel::Receiver<Option<MintCapabilities>>,
}

/// What the mint offers beyond the requirements, known once its first answer passed the
/// check; a handle a task can wait on.
#[derive(Debug, Clone)]
pub struct MintOffers(channel::Receiver<Option<MintCapabilities>>);

impl MintOffers {
    /// Resolves at the mint's first answer that passed the check; `None` once the watchers
    /// stopped without one. Never, while the mint is down (or lacks something: the process
    /// exits on that).
    pub async fn known(mut self) -> Option<MintCapabilities> {
        let found = self.0.wait_for(Option::is_some).await.ok()?;
        *found
    }
}

impl Watchers {
    /// Starts watching `pool` (migrating it once it answers) and `mint` (checking `needs` at
    /// its first answer), recording into `health`. Outside a Tokio runtime nothing is started.
    pub fn start(health: &Health, pool: PgPool, mint: MintClient, needs: MintNeeds) -> Self {
        let (tx, fatal) = channel::channel(None);
        let (offered, offers) = channel::channel(None);
        let mut tasks = Vec::new();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let database = rt.spawn(watch_database(health.clone(), pool, tx.clone()));
            let found = Found { fatal: tx, offered };
            let mint = rt.spawn(watch_mint(health.clone(), mint, needs, found));
            tasks = vec![database.abort_handle(), mint.abort_handle()];
        }
        Self {
            tasks,
            fatal,
            offers,
        }
    }

    /// What the mint offers beyond the requirements (NUT-17 websockets), for a task to wait
    /// on.
    pub fn capabilities(&self) -> MintOffers {
        MintOffers(self.offers.clone())
    }

    /// Resolves with the first fatal problem a watcher found; never, while there is none.
    pub async fn fatal(&self) -> Fatal {
        let mut rx = self.fatal.clone();
        if let Ok(found) = rx.wait_for(Option::is_some).await {
            if let Some(fatal) = found.clone() {
                return fatal;
            }
        }
        // The watchers are gone without finding anything: nothing will come.
        std::future::pending().await
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Waits between checks: doubling from [`DOWN_FIRST`] while the dependency is down.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Self(DOWN_FIRST)
    }

    /// How long to wait after a check that found the dependency `up`.
    fn after(&mut self, up: bool) -> Duration {
        if up {
            self.0 = DOWN_FIRST;
            return UP_EVERY;
        }
        let wait = self.0;
        self.0 = (self.0 * 2).min(DOWN_AT_MOST);
        wait
    }
}

/// Sleeps until the next check of `dep` is due, or someone asked for one.
async fn pause(health: &Health, dep: Dependency, wait: Duration) {
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = health.kicked(dep) => {}
    }
}

async fn ping(pool: &PgPool) -> bool {
    let query = sqlx::query_scalar::<_, i32>("select 1").fetch_one(pool);
    matches!(tokio::time::timeout(CHECK_TIMEOUT, query).await, Ok(Ok(_)))
}

async fn watch_database(health: Health, pool: PgPool, fatal: channel::Sender<Option<Fatal>>) {
    let mut backoff = Backoff::new();
    let mut migrated = false;
    loop {
        let mut up = ping(&pool).await;
        if up && !migrated {
            match crate::db::migrate(&pool).await {
                Ok(()) => {
                    migrated = true;
                    tracing::info!("database schema up to date");
                }
                // Lost again meanwhile: an outage like any other.
                Err(_) if !ping(&pool).await => up = false,
                Err(e) => {
                    let message = format!("migrate: {e:#}");
                    tracing::error!(error = %message, "database migration failed");
                    health.record(Dependency::Database, false);
                    fatal.send_replace(Some(Fatal {
                        message,
                        exit_code: 1,
                    }));
                    return;
                }
            }
        }
        health.record(Dependency::Database, up);
        pause(&health, Dependency::Database, backoff.after(up)).await;
    }
}

/// Where the mint watcher reports what its first answer showed.
struct Found {
    fatal: channel::Sender<Option<Fatal>>,
    offered: channel::Sender<Option<MintCapabilities>>,
}

async fn watch_mint(health: Health, mint: MintClient, needs: MintNeeds, found: Found) {
    let mut backoff = Backoff::new();
    let mut checked = false;
    loop {
        let info = mint.info(CHECK_TIMEOUT).await;
        if let (Some(info), false) = (&info, checked) {
            checked = true;
            match needs.check(mint.url(), info) {
                Ok(offers) => {
                    tracing::info!(
                        quote_websockets = offers.quote_websockets,
                        "the mint offers what this process relies on"
                    );
                    found.offered.send_replace(Some(offers));
                }
                Err(e) => {
                    tracing::error!(error = %e, "the mint lacks what this process relies on");
                    found.fatal.send_replace(Some(Fatal {
                        message: e.to_string(),
                        exit_code: crate::config::CONFIG_EXIT_CODE,
                    }));
                }
            }
        }
        let up = info.is_some();
        health.record(Dependency::Mint, up);
        pause(&health, Dependency::Mint, backoff.after(up)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_back_off_while_down_and_start_over_once_up() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..6).map(|_| b.after(false)).collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 2000, 2000].map(Duration::from_millis)
        );
        assert_eq!(b.after(true), UP_EVERY);
        assert_eq!(b.after(false), DOWN_FIRST);
    }
}
