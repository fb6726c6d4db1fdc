//! Periodic sweep: looks again at quotes nobody has looked at lately (a watcher chain that
//! ran out of attempts, or a worker fleet that was down) by enqueueing a fresh watcher.
//!
//! Safe to repeat: it only enqueues watchers, whose idempotency keys include the sweep slot
//! (a restarted chain of looks has keys of its own), and watching is itself idempotent. A quote
//! whose watcher is still in the queue (waiting behind a backlog, or held by a worker that died
//! and not yet handed back) gets no second chain: each sweep would otherwise add one per quote.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::db::quotes;
use openpleb_common::jobs::{enqueue, queries, SweepQuotes, WatchMintQuote};

use crate::WorkerContext;

/// A quote untouched for this long is considered forgotten.
const STALE_SECS: i64 = 120;

/// Handles one sweep.
pub async fn handle(job: SweepQuotes, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(run(job, &ctx)).await
}

async fn run(job: SweepQuotes, ctx: &WorkerContext) -> Result<(), BoxDynError> {
    let stale = quotes::stale_open(&ctx.pool, STALE_SECS, 500).await?;
    let watched = queries::watched_quotes(&ctx.pool, &stale).await?;
    let mut conn = ctx.pool.acquire().await?;
    for quote_id in stale.into_iter().filter(|q| !watched.contains(q)) {
        let watch = WatchMintQuote {
            chain: Some(format!("sweep:{}", job.slot.timestamp())),
            ..WatchMintQuote::first(&quote_id)
        };
        enqueue(&mut conn, &watch).await?;
    }
    Ok(())
}
