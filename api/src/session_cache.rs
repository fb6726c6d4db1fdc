//! Live sessions by BAT hash, kept a moment for reads.
//!
//! A client following its trade reads far more often than it writes (`GET /offers/{id}`, its
//! own book page), and each read began with a session look-up in PostgreSQL before the query
//! it asked for. Reads (`GET`, `HEAD`) are answered with a session seen at
//! most `SESSION_CACHE_MS` ago; writes always look the session up afresh, so nothing is ever
//! written under a session that has ended.
//!
//! What a cached session may get wrong, and why that is acceptable:
//! - Expiry is checked on every use against the cached `expires_at`, so an expired session is
//!   refused exactly when it would be without the cache.
//! - A logout in this process forgets the session at once ([`SessionCache::forget`]). A logout
//!   through another api process, or a renewal (which moves the session onto a new BAT), leaves
//!   the old BAT able to *read* for at most `SESSION_CACHE_MS`: the reader is the session's
//!   own holder, and it sees nothing it could not see a moment before.
//!
//! Keys are the BAT's hash, never the BAT.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use openpleb_common::db::sessions::Session;
use uuid::Uuid;

/// Most sessions kept: when full, the cache starts over (each entry lives a moment anyway).
const MAX_ENTRIES: usize = 100_000;

/// The cache; one per api process.
#[derive(Debug)]
pub struct SessionCache {
    max_age: Duration,
    entries: Mutex<HashMap<[u8; 32], (Session, Instant)>>,
}

impl SessionCache {
    /// A cache serving sessions read at most `max_age` ago (zero: off).
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: Mutex::default(),
        }
    }

    /// The live session of `bat_hash`, if one was read recently enough.
    pub fn get(&self, bat_hash: &[u8; 32]) -> Option<Session> {
        if self.max_age.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (session, read) = entries.get(bat_hash)?;
        let live = session.ended_at.is_none() && session.expires_at > Utc::now();
        (live && read.elapsed() < self.max_age).then(|| session.clone())
    }

    /// Keeps `session`, just read for `bat_hash`.
    pub fn put(&self, bat_hash: [u8; 32], session: Session) {
        if self.max_age.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&bat_hash) {
            let max_age = self.max_age;
            entries.retain(|_, (_, read)| read.elapsed() < max_age);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(bat_hash, (session, Instant::now()));
    }

    /// Forgets `session` under every BAT (it ended or moved to a new BAT).
    pub fn forget(&self, session: Uuid) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (s, _)| s.id != session);
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

    #[test]
    fn a_session_is_served_until_it_ages_out_or_is_forgotten() {
        let cache = SessionCache::new(Duration::from_secs(60));
        let s = session(chrono::Duration::minutes(10));
        cache.put([1; 32], s.clone());
        assert_eq!(cache.get(&[1; 32]).map(|s| s.id), Some(s.id));
        assert_eq!(cache.get(&[2; 32]), None, "another BAT");
        cache.forget(s.id);
        assert_eq!(cache.get(&[1; 32]), None, "logged out");

        let short = SessionCache::new(Duration::from_millis(20));
        short.put([1; 32], s);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(short.get(&[1; 32]), None, "older than the cache's age");
    }

    #[test]
    fn an_expired_or_ended_session_is_never_served() {
        let cache = SessionCache::new(Duration::from_secs(60));
        cache.put([1; 32], session(chrono::Duration::seconds(-1)));
        assert_eq!(cache.get(&[1; 32]), None, "expired");
        let mut ended = session(chrono::Duration::minutes(10));
        ended.ended_at = Some(Utc::now());
        cache.put([2; 32], ended);
        assert_eq!(cache.get(&[2; 32]), None, "ended");
    }

    #[test]
    fn zero_turns_it_off() {
        let cache = SessionCache::new(Duration::ZERO);
        cache.put([1; 32], session(chrono::Duration::minutes(10)));
        assert_eq!(cache.get(&[1; 32]), None);
    }
}
