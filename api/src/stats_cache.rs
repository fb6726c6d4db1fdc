//! `GET /stats`, counted at most once per `STATS_CACHE_MS` per api process.
//!
//! The counts are over whole tables (offers by status, users) and anyone may ask for them
//! without a session, so counting per request let an anonymous caller make the database scan
//! on every request. They are figures to show, not to act on, so a few seconds' staleness is
//! fine; unlike the book there is no change notice to clear them by (every offer move and
//! every registration changes them), so age is the only bound. One count runs at a time:
//! callers arriving while it runs wait for it instead of starting their own.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::routes::meta::Stats;

/// The last count and when it was taken.
#[derive(Debug)]
pub struct StatsCache {
    max_age: Duration,
    last: Mutex<Option<(Instant, Stats)>>,
}

impl StatsCache {
    /// A cache answering with counts at most `max_age` old (zero: counts every time).
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            last: Mutex::default(),
        }
    }

    /// The stats: the last count if it is recent enough, else a new one by `count`.
    pub async fn get<E, F>(&self, count: impl FnOnce() -> F) -> Result<Stats, E>
    where
        F: std::future::Future<Output = Result<Stats, E>>,
    {
        if self.max_age.is_zero() {
            return count().await;
        }
        // Held across the count, so concurrent callers share it.
        let mut last = self.last.lock().await;
        if let Some((at, stats)) = last.as_ref() {
            if at.elapsed() < self.max_age {
                return Ok(stats.clone());
            }
        }
        let stats = count().await?;
        *last = Some((Instant::now(), stats.clone()));
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn stats(n: i64) -> Stats {
        Stats {
            open_offers: n,
            active_trades: 0,
            completed_trades: 0,
            registered_users: 0,
        }
    }

    async fn counted(cache: &StatsCache, counts: &AtomicUsize) -> i64 {
        let n = counts.fetch_add(1, Ordering::SeqCst) as i64;
        let got: Result<Stats, ()> = cache.get(|| async { Ok(stats(n)) }).await;
        got.expect("stats").open_offers
    }

    #[tokio::test]
    async fn one_count_per_period() {
        let cache = StatsCache::new(Duration::from_millis(50));
        let counts = AtomicUsize::new(0);
        assert_eq!(counted(&cache, &counts).await, 0);
        assert_eq!(counted(&cache, &counts).await, 0, "the first count again");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            counted(&cache, &counts).await,
            2,
            "a new count once it aged"
        );
    }

    #[tokio::test]
    async fn a_failed_count_is_not_kept_and_zero_turns_it_off() {
        let cache = StatsCache::new(Duration::from_secs(60));
        let failed: Result<Stats, &str> = cache.get(|| async { Err("db down") }).await;
        assert!(failed.is_err());
        let ok: Result<Stats, &str> = cache.get(|| async { Ok(stats(7)) }).await;
        assert_eq!(ok.expect("stats").open_offers, 7);

        let off = StatsCache::new(Duration::ZERO);
        let counts = AtomicUsize::new(0);
        assert_eq!(counted(&off, &counts).await, 0);
        assert_eq!(counted(&off, &counts).await, 1);
    }
}
