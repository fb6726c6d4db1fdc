//! Periodic sweep: looks again at quotes nobody is watching (a watcher chain that ran out of
//! attempts, a run cut before it scheduled its next look) by enqueueing a fresh watcher.
//!
//! A quote with a watcher waiting in the queue is left alone, however long that watcher waits:
//! a quote whose offer or claim ended has one look left, due at its expiry at the mint, and a
//! covered quote's next look can be a minute away; and under a backlog (workers killed, the
//! mint stopped) a watcher can wait longer than the sweep's period. Adding a chain for each
//! such quote would bring back the looks the watcher's schedule saves, or add one more chain
//! per open quote each minute to a backlog. A fresh chain follows the same schedule as the
//! first one (an ended quote's chain goes straight to its last look).
//!
//! Safe to repeat: it only enqueues watchers, whose idempotency keys include the sweep slot
//! (a restarted chain of looks has keys of its own), and watching is itself idempotent.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use openpleb_common::db::quotes;
use openpleb_common::jobs::{enqueue, queries, SweepQuotes, WatchMintQuote};

use crate::WorkerContext;

/// A quote untouched for this long may have been forgotten.
const STALE_SECS: i64 = 120;

/// Quotes read per page.
const PAGE: i64 = 500;

/// Pages read per sweep: the rest wait for the next one.
const PAGES: usize = 20;

/// Handles one sweep.
pub async fn handle(job: SweepQuotes, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    super::with_timeout(run(job, &ctx)).await
}

async fn run(job: SweepQuotes, ctx: &WorkerContext) -> Result<(), BoxDynError> {
    let mut after = None;
    for _ in 0..PAGES {
        let page = quotes::stale_open(&ctx.pool, STALE_SECS, after.as_ref(), PAGE).await?;
        let ids: Vec<String> = page.iter().map(|(_, q)| q.clone()).collect();
        let watched = queries::watched_quotes(&ctx.pool, &ids).await?;
        let mut conn = ctx.pool.acquire().await?;
        for quote_id in ids.iter().filter(|q| !watched.contains(*q)) {
            let watch = WatchMintQuote {
                chain: Some(format!("sweep:{}", job.slot.timestamp())),
                ..WatchMintQuote::first(quote_id)
            };
            enqueue(&mut conn, &watch).await?;
        }
        if page.len() < PAGE as usize {
            break;
        }
        after = page.into_iter().last();
    }
    Ok(())
}
