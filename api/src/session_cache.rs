//! Live sessions by BAT hash, kept a moment for reads.
//!
//! A client following its trade reads far more often than it writes (`GET /offers/{id}`, its
//! own book page), and each read began with a session look-up in PostgreSQL before the query
//! it asked for. Reads (`GET`, `HEAD`) are answered with a session seen at most
//! `SESSION_CACHE_MS` ago (at most 5 s); writes always look the session up afresh, so nothing
//! is ever written under a session that has ended.
//!
//! A session that ends or moves onto a new BAT must stop reading through every api process,
//! not only the one that was told:
//! - Expiry is checked on every use against the cached `expires_at`, so an expired session is
//!   refused exactly when it would be without the cache.
//! - A logout or renewal in any api process is announced with a PostgreSQL `NOTIFY` when it
//!   commits, which every api process hears on its offer-change listener
//!   ([`crate::events::SessionNotice`]); the session is forgotten here as it arrives (and at
//!   once in the process that made the change).
//! - A look-up that was under way when a notice arrived is not stored (a generation counter
//!   read before the query), so it cannot bring back a session read just before its logout.
//! - While the listener is down, or after it reconnected (notices may have been missed), the
//!   hub's epoch differs from the one an entry was stored under, and nothing stored before is
//!   served.
//! - `SESSION_CACHE_MS` bounds an entry's age in any case: a notice lost without the
//!   connection dropping leaves the old BAT able to read for at most that long; the reader is
//!   the session's own holder, and it sees nothing it could not see a moment before.
//!
//! Keys are the BAT's hash, never the BAT.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use openpleb_common::db::sessions::Session;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::events::{Hub, SessionNotice};

/// Most sessions kept: when full, the cache starts over (each entry lives a moment anyway).
const MAX_ENTRIES: usize = 100_000;

/// What a look-up was started under; its session may be stored only while both still hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    generation: u64,
    epoch: u64,
}

#[derive(Debug)]
struct Entry {
    session: Session,
    read: Instant,
    epoch: u64,
}

/// The cache; one per api process.
#[derive(Debug)]
pub struct SessionCache {
    hub: Arc<Hub>,
    max_age: Duration,
    generation: AtomicU64,
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

impl SessionCache {
    /// A cache serving sessions read at most `max_age` ago (zero: off), forgetting those that
    /// `hub` hears have ended or moved.
    pub fn start(hub: Arc<Hub>, max_age: Duration) -> Arc<Self> {
        let cache = Arc::new(Self {
            hub: hub.clone(),
            max_age,
            generation: AtomicU64::new(0),
            entries: Mutex::default(),
        });
        if !max_age.is_zero() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(forget_on_notices(
                    Arc::downgrade(&cache),
                    hub.session_notices(),
                ));
            }
        }
        cache
    }

    /// Read this before looking a session up, and hand it to [`SessionCache::put`] with it.
    pub fn stamp(&self) -> Stamp {
        Stamp {
            generation: self.generation.load(Ordering::SeqCst),
            epoch: self.hub.epoch(),
        }
    }

    /// The live session of `bat_hash`, if one was read recently enough.
    pub fn get(&self, bat_hash: &[u8; 32]) -> Option<Session> {
        if self.max_age.is_zero() {
            return None;
        }
        let epoch = self.hub.epoch();
        // An even epoch: the listener is down, notices are not heard.
        if epoch.is_multiple_of(2) {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(bat_hash)?;
        let session = &entry.session;
        let live = session.ended_at.is_none() && session.expires_at > Utc::now();
        let fresh = entry.epoch == epoch && entry.read.elapsed() < self.max_age;
        (live && fresh).then(|| session.clone())
    }

    /// Keeps `session`, just read for `bat_hash` by a look-up started at `stamp`, unless a
    /// notice arrived (or the listener reconnected) since.
    pub fn put(&self, bat_hash: [u8; 32], session: Session, stamp: Stamp) {
        if self.max_age.is_zero() || stamp.epoch.is_multiple_of(2) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Checked under the lock `forget` takes, so a notice cannot slip in between.
        if self.stamp() != stamp {
            return;
        }
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&bat_hash) {
            let max_age = self.max_age;
            entries.retain(|_, e| e.read.elapsed() < max_age);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            bat_hash,
            Entry {
                session,
                read: Instant::now(),
                epoch: stamp.epoch,
            },
        );
    }

    /// Forgets `session` under every BAT (it ended or moved to a new BAT).
    pub fn forget(&self, session: Uuid) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.retain(|_, e| e.session.id != session);
    }

    /// Forgets every session (notices were missed).
    fn clear(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        entries.clear();
    }
}

async fn forget_on_notices(
    cache: std::sync::Weak<SessionCache>,
    mut notices: tokio::sync::broadcast::Receiver<SessionNotice>,
) {
    loop {
        let notice = notices.recv().await;
        let Some(cache) = cache.upgrade() else { return };
        match notice {
            Ok(n) => cache.forget(n.session()),
            // Notices were dropped unseen: any session may have ended.
            Err(RecvError::Lagged(_)) => cache.clear(),
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_in: chrono::Duration) -> Session {
        let now = Utc::now();
        Session {
            id: Uuid::new_v4(),
            created_at: now,
            expires_at: now + expires_in,
            ended_at: None,
        }
    }

    fn cache(max_age: Duration) -> Arc<SessionCache> {
        SessionCache::start(Hub::listening_to_nothing(), max_age)
    }

    #[tokio::test]
    async fn a_session_is_served_until_it_ages_out_or_is_forgotten() {
        let cache = cache(Duration::from_secs(60));
        let s = session(chrono::Duration::minutes(10));
        cache.put([1; 32], s.clone(), cache.stamp());
        assert_eq!(cache.get(&[1; 32]).map(|s| s.id), Some(s.id));
        assert_eq!(cache.get(&[2; 32]), None, "another BAT");
        cache.forget(s.id);
        assert_eq!(cache.get(&[1; 32]), None, "logged out");

        let short = self::cache(Duration::from_millis(20));
        short.put([1; 32], s, short.stamp());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(short.get(&[1; 32]), None, "older than the cache's age");
    }

    #[tokio::test]
    async fn a_lookup_that_raced_a_notice_is_not_kept() {
        let cache = cache(Duration::from_secs(60));
        let s = session(chrono::Duration::minutes(10));
        let stamp = cache.stamp();
        // The logout's notice arrives while the look-up (which read it live) is under way.
        cache.forget(s.id);
        cache.put([1; 32], s, stamp);
        assert_eq!(cache.get(&[1; 32]), None);
    }

    #[tokio::test]
    async fn an_expired_or_ended_session_is_never_served() {
        let cache = cache(Duration::from_secs(60));
        cache.put(
            [1; 32],
            session(chrono::Duration::seconds(-1)),
            cache.stamp(),
        );
        assert_eq!(cache.get(&[1; 32]), None, "expired");
        let mut ended = session(chrono::Duration::minutes(10));
        ended.ended_at = Some(Utc::now());
        cache.put([2; 32], ended, cache.stamp());
        assert_eq!(cache.get(&[2; 32]), None, "ended");
    }

    #[tokio::test]
    async fn nothing_is_served_while_the_listener_is_down_or_when_off() {
        // The hub's database does not exist: its listener never listens (epoch stays even).
        let hub = Hub::start(
            sqlx::postgres::PgPoolOptions::new()
                .connect_lazy("postgres://127.0.0.1:1/none")
                .expect("lazy pool"),
        );
        let down = SessionCache::start(hub, Duration::from_secs(60));
        down.put(
            [1; 32],
            session(chrono::Duration::minutes(10)),
            down.stamp(),
        );
        assert_eq!(down.get(&[1; 32]), None);

        let off = cache(Duration::ZERO);
        off.put([1; 32], session(chrono::Duration::minutes(10)), off.stamp());
        assert_eq!(off.get(&[1; 32]), None);
    }
}
