//! Fencing a wallet's writes by its lease, so a process that lost its lease cannot write a
//! wallet another process now holds.
//!
//! A lease ([`crate::db::leases`]) has a generation, a number PostgreSQL gives every take, so
//! a take by another process (or a later take by this one) makes every older generation stale.
//! Each open wallet carries the [`Fence`] of the generation it was opened under, and its SQLite
//! store asks the fence before every statement ([`super::store::WriteFence`]): a revoked
//! fence, or one whose lease may have run out, refuses the statement, so a process whose lease
//! was taken stops before its next write instead of writing beside the new holder.
//!
//! Three things keep a fence honest:
//! - every operation confirms its generation in PostgreSQL before it starts (one statement
//!   that also extends the lease), and reopens the wallet under a new lease if it is stale;
//! - the renewal task extends every live fence, and revokes the ones PostgreSQL no longer
//!   knows, so an operation running when the lease is taken stops at its next statement;
//! - without a confirmation a fence runs out by itself a little before the lease could have
//!   lapsed in PostgreSQL (measured from before the statement that extended it was sent), so a
//!   process that stalls, or cannot reach PostgreSQL, stops writing before anyone else may
//!   take the wallet.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::store::WriteFence;

/// The write permission of one lease generation on one open wallet.
#[derive(Debug)]
pub struct Fence {
    generation: i64,
    /// The lease lifetime, less a margin for the clocks' rates.
    valid_for: Duration,
    origin: Instant,
    /// Milliseconds after `origin` until which writes are allowed.
    valid_until_ms: AtomicU64,
    revoked: AtomicBool,
}

impl Fence {
    /// The fence of a lease of `generation` taken for `ttl` by a statement sent at `sent`.
    pub fn new(generation: i64, ttl: Duration, sent: Instant) -> Self {
        // A tenth of the lifetime (at most 2 s) for the difference between our clock's rate
        // and PostgreSQL's; it also covers the statement that checks the fence.
        let margin = (ttl / 10).min(Duration::from_secs(2));
        let fence = Self {
            generation,
            valid_for: ttl.saturating_sub(margin),
            origin: sent,
            valid_until_ms: AtomicU64::new(0),
            revoked: AtomicBool::new(false),
        };
        fence.extended(sent);
        fence
    }

    /// The lease generation this fence stands for.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// The lease was extended by a statement sent at `sent`.
    pub fn extended(&self, sent: Instant) {
        let until = sent
            .saturating_duration_since(self.origin)
            .saturating_add(self.valid_for);
        let ms = u64::try_from(until.as_millis()).unwrap_or(u64::MAX);
        self.valid_until_ms.fetch_max(ms, Ordering::SeqCst);
    }

    /// The lease is gone (taken by another holder, or lapsed): refuse every write from now on.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::SeqCst);
    }

    /// Whether writes are still allowed.
    pub fn holds(&self) -> bool {
        self.refusal().is_none()
    }

    /// Why a write would be refused now, if it would.
    pub fn refusal(&self) -> Option<String> {
        if self.revoked.load(Ordering::SeqCst) {
            return Some(format!(
                "lease generation {} was taken or lost",
                self.generation
            ));
        }
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        if now >= self.valid_until_ms.load(Ordering::SeqCst) {
            return Some(format!(
                "lease generation {} ran out without renewal",
                self.generation
            ));
        }
        None
    }
}

impl WriteFence for Fence {
    fn check(&self) -> Result<(), String> {
        match self.refusal() {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_holds_until_revoked() {
        let fence = Fence::new(7, Duration::from_secs(30), Instant::now());
        assert!(fence.holds());
        assert_eq!(fence.generation(), 7);
        fence.revoke();
        let why = fence.refusal().expect("refused");
        assert!(why.contains("generation 7"), "{why}");
    }

    #[test]
    fn a_fence_runs_out_before_its_lease_and_extends() {
        let long_ago = Instant::now() - Duration::from_secs(10);
        let fence = Fence::new(1, Duration::from_secs(10), long_ago);
        assert!(!fence.holds(), "a 10 s lease taken 10 s ago is gone");
        fence.extended(Instant::now());
        assert!(fence.holds());
        // A late answer to an older renewal does not shorten it.
        fence.extended(long_ago);
        assert!(fence.holds());
    }
}
