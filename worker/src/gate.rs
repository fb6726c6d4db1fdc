//! Queue workers that wait for their dependencies instead of failing jobs or exiting.
//!
//! apalis ends a queue worker whose backend fails (PostgreSQL gone at registration, heartbeat,
//! fetch or acknowledgement), and a monitor that does not restart it ends with its last worker,
//! the process with it. So every failed worker is restarted (`crate::run`), under a name of its
//! own ([`worker_name`]): the jobs the old one held are handed back once its heartbeat is stale
//! (apalis' orphan rule), which a worker re-registered under the same name would keep fresh.
//!
//! [`Gated`] wraps each queue's backend. Before the worker registers it waits out the restart's
//! pause and until this process' watcher finds the database up again, so a long outage costs a
//! check every two seconds, not a crash loop. A queue whose jobs need the mint fetches only
//! while the mint is usable: during a mint outage its jobs stay queued instead of spending
//! their attempts (apalis hands a failed job out again at once) and run once it is back.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use apalis::prelude::{Backend, WorkerContext};
use apalis_core::backend::{BackendConfig, WireFormatBackend};
use openpleb_common::health::{Dependency, Health};

/// How long a restarted queue worker pauses before it registers again.
pub const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// A wait in progress: for the restart's pause, or for a dependency.
type Wait = Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// A queue's backend that waits for the database before registering, and for the mint before
/// fetching when its jobs need it.
pub struct Gated<B> {
    backend: B,
    health: Health,
    needs_mint: bool,
    pause: Option<Duration>,
    registered: bool,
    start_wait: Option<Wait>,
    mint_wait: Option<Wait>,
}

impl<B> std::fmt::Debug for Gated<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gated")
            .field("needs_mint", &self.needs_mint)
            .field("registered", &self.registered)
            .finish_non_exhaustive()
    }
}

impl<B> Gated<B> {
    /// `backend` of the `restarts`-th run of a queue worker (0: the first, which does not
    /// pause), reading `health`; `needs_mint` for queues whose jobs call the mint.
    pub fn new(backend: B, health: Health, needs_mint: bool, restarts: usize) -> Self {
        Self {
            backend,
            health,
            needs_mint,
            pause: (restarts > 0).then_some(RESTART_PAUSE),
            registered: false,
            start_wait: None,
            mint_wait: None,
        }
    }
}

/// Polls `wait` if there is one, clearing it once done.
fn poll_wait(wait: &mut Option<Wait>, cx: &mut Context<'_>) -> Poll<()> {
    if let Some(w) = wait.as_mut() {
        ready!(w.as_mut().poll(cx));
        *wait = None;
    }
    Poll::Ready(())
}

/// Waits until `dep` is usable.
fn usable(health: &Health, dep: Dependency) -> Wait {
    let health = health.clone();
    Box::pin(async move { health.usable(dep).await })
}

impl<B: Backend> Backend for Gated<B> {
    type Task = B::Task;
    type Error = B::Error;

    fn poll_ready(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        while !self.registered {
            ready!(poll_wait(&mut self.start_wait, cx));
            if let Some(pause) = self.pause.take() {
                self.start_wait = Some(Box::pin(tokio::time::sleep(pause)));
            } else if !self.health.is_usable(Dependency::Database) {
                self.start_wait = Some(usable(&self.health, Dependency::Database));
            } else {
                // From here on a lost database fails the backend, and the monitor restarts it.
                self.registered = true;
            }
        }
        self.backend.poll_ready(cx, worker)
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        if self.needs_mint {
            loop {
                ready!(poll_wait(&mut self.mint_wait, cx));
                if self.health.is_usable(Dependency::Mint) {
                    break;
                }
                self.mint_wait = Some(usable(&self.health, Dependency::Mint));
            }
        }
        self.backend.poll_next(cx, worker)
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        worker: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        self.backend.poll_close(cx, worker)
    }
}

impl<B: BackendConfig> BackendConfig for Gated<B> {
    type Args = B::Args;
    type Id = B::Id;
    type Kind = B::Kind;
    type Config = B::Config;
    type Layer = B::Layer;

    fn config(&self) -> &Self::Config {
        self.backend.config()
    }

    fn middleware(&mut self, worker: &mut WorkerContext) -> Self::Layer {
        self.backend.middleware(worker)
    }
}

impl<B: WireFormatBackend> WireFormatBackend for Gated<B> {
    type Codec = B::Codec;
    type Compact = B::Compact;

    fn codec(&self) -> &Self::Codec {
        self.backend.codec()
    }
}

/// The name of a queue worker: `<queue>@<process>` on its first run, with `#<n>` after the
/// n-th restart, so each run registers anew.
pub fn worker_name(queue: &str, process: &str, restarts: usize) -> String {
    if restarts == 0 {
        format!("{queue}@{process}")
    } else {
        format!("{queue}@{process}#{restarts}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_run_has_a_name_of_its_own() {
        assert_eq!(worker_name("q", "host:1:a", 0), "q@host:1:a");
        assert_eq!(worker_name("q", "host:1:a", 2), "q@host:1:a#2");
    }
}
