//! What this process knows about the services it depends on (the mint and PostgreSQL), kept
//! current by the watchers in [`watch`].
//!
//! A dependency that does not answer is an outage, not a configuration error: the process keeps
//! running and says so (`/ready`, the `openpleb_dependency_up` gauge, one log line per change),
//! refuses at once what needs the missing service (503 with `Retry-After`; queue workers stop
//! fetching), and asks again with backoff until it answers. Only a mint that answers but lacks
//! what the platform relies on is a configuration error, reported once as
//! [`watch::Fatal`] (exit code 2).
//!
//! One [`Health`] per process, shared by everything that talks to the dependencies: the
//! wallet manager reports the mint failures it meets ([`Health::suspect`]), so the watcher
//! looks again at once instead of at its next round.

pub mod subscribed;
pub mod watch;

pub use subscribed::Subscribed;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch as channel, Notify};

use crate::metrics::names;

/// A service the process depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dependency {
    /// The Cashu mint (`MINT_URL`).
    Mint,
    /// PostgreSQL (`DATABASE_URL`), with this version's schema applied.
    Database,
}

impl Dependency {
    /// Every dependency, in the order `/ready` names them.
    pub const ALL: [Dependency; 2] = [Dependency::Database, Dependency::Mint];

    /// The name operators see: the gauge's `dependency` label, `/ready`'s field.
    pub fn name(self) -> &'static str {
        match self {
            Dependency::Mint => "mint",
            Dependency::Database => "database",
        }
    }

    fn index(self) -> usize {
        match self {
            Dependency::Mint => 0,
            Dependency::Database => 1,
        }
    }
}

/// What the last check of a dependency found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not checked yet (the first moments of the process).
    Unknown,
    /// It answered.
    Up,
    /// It did not answer.
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    status: Status,
    /// A caller met a failure since the last check: the watcher is looking again.
    suspected: bool,
}

#[derive(Debug)]
struct Slot {
    state: channel::Sender<State>,
    kick: Notify,
}

/// The process' view of its dependencies; cheap to clone, all clones share it.
#[derive(Debug, Clone)]
pub struct Health {
    slots: Arc<[Slot; 2]>,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Every dependency [`Status::Unknown`]; nothing watches it until [`watch::Watchers`] start.
    pub fn new() -> Self {
        let slot = || Slot {
            state: channel::Sender::new(State {
                status: Status::Unknown,
                suspected: false,
            }),
            kick: Notify::new(),
        };
        Self {
            slots: Arc::new([slot(), slot()]),
        }
    }

    fn slot(&self, dep: Dependency) -> &Slot {
        &self.slots[dep.index()]
    }

    /// The last check's verdict.
    pub fn status(&self, dep: Dependency) -> Status {
        self.slot(dep).state.borrow().status
    }

    /// Whether the last check reached `dep`.
    pub fn is_up(&self, dep: Dependency) -> bool {
        self.status(dep) == Status::Up
    }

    /// Whether `dep` is up and nobody has reported a failure since it was last checked: what
    /// [`Health::usable`] waits for.
    pub fn is_usable(&self, dep: Dependency) -> bool {
        let state = *self.slot(dep).state.borrow();
        state.status == Status::Up && !state.suspected
    }

    /// Whether the last check failed to reach `dep` (not merely unchecked yet): what needs it
    /// is refused at once instead of waiting for its timeouts.
    pub fn is_down(&self, dep: Dependency) -> bool {
        self.status(dep) == Status::Down
    }

    /// Records a check of `dep`: the gauge, and one log line when the verdict changes.
    pub fn record(&self, dep: Dependency, up: bool) {
        let status = if up { Status::Up } else { Status::Down };
        let before = self.slot(dep).state.send_replace(State {
            status,
            suspected: false,
        });
        metrics::gauge!(names::DEPENDENCY_UP, "dependency" => dep.name()).set(if up {
            1.0
        } else {
            0.0
        });
        match (before.status, status) {
            (Status::Up | Status::Unknown, Status::Down) => {
                tracing::warn!(
                    dependency = dep.name(),
                    "dependency down; checking again with backoff"
                );
            }
            (Status::Down, Status::Up) => {
                tracing::info!(dependency = dep.name(), "dependency back up");
            }
            _ => {}
        }
    }

    /// A caller met a failure that may mean `dep` is gone: its watcher checks now, and
    /// [`Health::usable`] waits for that check.
    pub fn suspect(&self, dep: Dependency) {
        let slot = self.slot(dep);
        slot.state.send_if_modified(|s| {
            let changed = s.status == Status::Up && !s.suspected;
            if changed {
                s.suspected = true;
            }
            changed
        });
        slot.kick.notify_one();
    }

    /// Resolves when `dep` is up and nobody has reported a failure since it was last checked.
    pub async fn usable(&self, dep: Dependency) {
        let mut rx = self.slot(dep).state.subscribe();
        // The sender lives as long as `self`: `wait_for` only ends in an error when it is gone.
        let _ = rx
            .wait_for(|s| s.status == Status::Up && !s.suspected)
            .await;
    }

    /// The verdict on `dep` once it has been checked at all, waiting at most `within` for the
    /// first check (`Unknown` when that did not end in time).
    pub async fn known(&self, dep: Dependency, within: Duration) -> Status {
        let mut rx = self.slot(dep).state.subscribe();
        let checked = tokio::time::timeout(within, rx.wait_for(|s| s.status != Status::Unknown))
            .await
            .map(|seen| seen.map(|state| state.status));
        match checked {
            Ok(Ok(status)) => status,
            _ => self.status(dep),
        }
    }

    /// Resolves when someone asked for a check of `dep` ([`Health::suspect`]).
    pub(crate) async fn kicked(&self, dep: Dependency) {
        self.slot(dep).kick.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_suspected_dependency_is_not_usable_until_checked_again() {
        let health = Health::new();
        assert_eq!(health.status(Dependency::Mint), Status::Unknown);
        assert!(!health.is_down(Dependency::Mint), "unknown is not down");
        health.record(Dependency::Mint, true);
        let usable =
            tokio::time::timeout(Duration::from_millis(50), health.usable(Dependency::Mint));
        assert!(usable.await.is_ok());

        health.suspect(Dependency::Mint);
        assert!(health.is_up(Dependency::Mint), "a suspicion is no verdict");
        let waiting =
            tokio::time::timeout(Duration::from_millis(50), health.usable(Dependency::Mint));
        assert!(waiting.await.is_err(), "waits for the check");

        let h = health.clone();
        let after = tokio::spawn(async move { h.usable(Dependency::Mint).await });
        health.record(Dependency::Mint, false);
        assert!(health.is_down(Dependency::Mint));
        health.record(Dependency::Mint, true);
        tokio::time::timeout(Duration::from_secs(1), after)
            .await
            .expect("usable again once up")
            .expect("task");
        assert!(
            !health.is_down(Dependency::Database),
            "each dependency apart"
        );
    }

    #[tokio::test]
    async fn known_waits_for_the_first_check_only() {
        let health = Health::new();
        let within = Duration::from_millis(30);
        assert_eq!(
            health.known(Dependency::Database, within).await,
            Status::Unknown
        );
        let h = health.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            h.record(Dependency::Database, false);
        });
        assert_eq!(
            health
                .known(Dependency::Database, Duration::from_secs(2))
                .await,
            Status::Down
        );
    }
}
