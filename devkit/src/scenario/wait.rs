//! Waiting for what a worker does after a request (a payment applied, a payout released, a
//! timer lapsed): ask again every 250 ms for up to 30 s, then fail naming what never came.

use std::future::Future;
use std::time::Duration;

/// How often [`poll`] asks.
pub const EVERY: Duration = Duration::from_millis(250);

/// How many times [`poll`] asks (30 s in all).
pub const TIMES: u32 = 120;

/// Calls `ask` until it gives `Some`; an error naming `what` if it never does.
pub async fn poll<T, F, Fut>(what: &str, mut ask: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    for _ in 0..TIMES {
        if let Some(v) = ask().await? {
            return Ok(v);
        }
        tokio::time::sleep(EVERY).await;
    }
    anyhow::bail!("{what}: never came")
}
