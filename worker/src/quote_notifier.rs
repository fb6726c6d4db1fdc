//! NUT-17: the worker's websockets to the mint, subscribed to every quote still waiting for
//! payment (each new quote as its row commits, announced on [`quotes::QUOTES_CHANNEL`]; a
//! refresh from the table every few seconds as the fallback). When the mint reports a quote
//! PAID, the quote's watcher job is enqueued at once instead of at its next polling round; the
//! polling chain stays as the fallback (a websocket can drop). A mint that does not offer
//! NUT-17 for bolt11 mint quotes in its `/v1/info` is not asked: its quotes are polled
//! ([`run_if_offered`]).
//!
//! cdk's mint takes at most 100 subscriptions per connection and refuses the 101st with only an
//! error message, and it queues at most 100 notifications per connection, dropping the rest
//! (each filter's current state is sent at once on subscribe). So a subscription carries at
//! most [`Limits::filters_per_subscription`] quotes, a connection makes at most
//! [`Limits::subscriptions_per_connection`], and when one has used them up the next quotes go to a new
//! connection while the old one stays open for the quotes it already watches, until none of
//! them is waiting any more. No quote is ever between two connections: replacing a full
//! connection by a fresh one that subscribed everything again left a gap, and a burst of
//! current states, in which payments were lost to polling (settlement p95 3.6 s over 200
//! offers).
//!
//! The quotes its open connections have subscribed are recorded in the worker's context
//! ([`openpleb_common::health::Subscribed`]): a quote's watcher asks the mint rarely while the
//! mint will report a payment of it, and at the base interval while not (no notifier, or
//! between a dropped connection and the next refresh's subscription anew).
//!
//! Safe to run in every worker: the job it enqueues is idempotent and keyed per quote.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cdk_http_client::ws::{WsReceiver, WsSender};
use openpleb_common::db::quotes;
use openpleb_common::health::watch::MintOffers;
use openpleb_common::jobs::{enqueue, WatchMintQuote, PAID_CHAIN};
use serde_json::{json, Value};
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::WorkerContext;

/// How often the subscriptions are compared with the table (new quotes come in at once through
/// their announcement; this catches any that were missed, and lets drained connections go).
const REFRESH: Duration = Duration::from_secs(5);

/// How much one connection and one subscription carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Subscriptions one connection makes.
    pub subscriptions_per_connection: usize,
    /// Quotes per subscription.
    pub filters_per_subscription: usize,
}

impl Limits {
    /// For cdk's mint: it refuses a connection's 101st subscription, and 40 quotes stay well
    /// under the 100 notifications it queues per connection, so the current states a
    /// subscription brings back are not dropped.
    pub const CDK: Limits = Limits {
        subscriptions_per_connection: 90,
        filters_per_subscription: 40,
    };
}

/// How long announcements are gathered into one subscription request.
const GATHER: Duration = Duration::from_millis(20);

/// Quotes read from the table per refresh.
const REFRESH_LIMIT: i64 = 1000;

fn ws_url(mint_url: &str) -> String {
    let base = mint_url.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{ws}/v1/ws")
}

/// The quote id of a "paid" notification, if `text` is one.
pub fn paid_quote(text: &str) -> Option<String> {
    let v: Value = serde_json::from_str(text).ok()?;
    if v.get("method")?.as_str()? != "subscribe" {
        return None;
    }
    let payload = v.get("params")?.get("payload")?;
    let state = payload.get("state")?.as_str()?;
    if state != "PAID" && state != "ISSUED" {
        return None;
    }
    payload.get("quote")?.as_str().map(str::to_owned)
}

async fn notify(ctx: &WorkerContext, quote_id: String) -> anyhow::Result<()> {
    let mut conn = ctx.pool.acquire().await?;
    let job = WatchMintQuote {
        chain: Some(PAID_CHAIN.to_owned()),
        ..WatchMintQuote::first(&quote_id)
    };
    enqueue(&mut conn, &job).await?;
    tracing::debug!(quote = %quote_id, "mint reported the quote paid");
    Ok(())
}

/// One websocket connection and the quotes subscribed on it.
struct Connection {
    /// The filters of each subscription to make; dropping it closes the connection.
    requests: mpsc::Sender<Vec<String>>,
    quotes: HashSet<String>,
    subscriptions: usize,
    task: JoinHandle<()>,
}

impl Connection {
    async fn open(url: &str, paid: mpsc::UnboundedSender<String>) -> anyhow::Result<Self> {
        let (tx, rx) = cdk_http_client::ws::connect(url, &[])
            .await
            .map_err(|e| anyhow::anyhow!("connect {url}: {e}"))?;
        let (requests, asked) = mpsc::channel(8);
        let task = tokio::spawn(async move {
            if let Err(e) = pump(tx, rx, asked, paid).await {
                tracing::debug!(error = %e, "a mint websocket ended; its quotes are subscribed anew");
            }
        });
        Ok(Self {
            requests,
            quotes: HashSet::new(),
            subscriptions: 0,
            task,
        })
    }

    fn is_full(&self, limits: Limits) -> bool {
        self.subscriptions >= limits.subscriptions_per_connection || self.task.is_finished()
    }
}

/// Sends the subscriptions asked for and passes on the quotes reported paid, until the
/// connection drops (`Err`) or its [`Connection`] is let go (`Ok`).
async fn pump(
    mut tx: WsSender,
    mut rx: WsReceiver,
    mut asked: mpsc::Receiver<Vec<String>>,
    paid: mpsc::UnboundedSender<String>,
) -> anyhow::Result<()> {
    let mut next_id = 1usize;
    loop {
        tokio::select! {
            filters = asked.recv() => {
                let Some(filters) = filters else {
                    let _ = tx.close().await;
                    return Ok(());
                };
                let request = json!({
                    "jsonrpc": "2.0", "id": next_id, "method": "subscribe",
                    "params": {"kind": "bolt11_mint_quote", "filters": filters,
                               "subId": uuid::Uuid::new_v4().to_string()},
                });
                next_id += 1;
                tx.send(request.to_string())
                    .await
                    .map_err(|e| anyhow::anyhow!("send: {e}"))?;
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { anyhow::bail!("websocket closed") };
                let text = msg.map_err(|e| anyhow::anyhow!("receive: {e}"))?;
                if let Some(quote) = paid_quote(&text) {
                    if paid.send(quote).is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

/// The connections of one worker; the last one takes new subscriptions.
struct Connections {
    url: String,
    limits: Limits,
    paid: mpsc::UnboundedSender<String>,
    open: Vec<Connection>,
}

impl Connections {
    fn is_subscribed(&self, quote: &str) -> bool {
        self.open.iter().any(|c| c.quotes.contains(quote))
    }

    /// Subscribes those of `quotes` not subscribed yet.
    async fn subscribe(&mut self, quotes: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
        let mut new: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        for q in quotes {
            if !self.is_subscribed(&q) && seen.insert(q.clone()) {
                new.push(q);
            }
        }
        let limits = self.limits;
        for chunk in new.chunks(limits.filters_per_subscription.max(1)) {
            if self.open.last().is_none_or(|c| c.is_full(limits)) {
                let fresh = Connection::open(&self.url, self.paid.clone()).await?;
                self.open.push(fresh);
            }
            let Some(conn) = self.open.last_mut() else {
                anyhow::bail!("no websocket connection");
            };
            conn.requests
                .send(chunk.to_vec())
                .await
                .map_err(|_| anyhow::anyhow!("websocket task ended"))?;
            conn.subscriptions += 1;
            conn.quotes.extend(chunk.iter().cloned());
        }
        Ok(())
    }

    /// The quotes subscribed on connections still open.
    fn covered(&self) -> HashSet<String> {
        self.open
            .iter()
            .filter(|c| !c.task.is_finished())
            .flat_map(|c| c.quotes.iter().cloned())
            .collect()
    }

    /// Tells the watchers which quotes the mint will report.
    fn publish(&self, ctx: &WorkerContext) {
        openpleb_common::metrics::quotes_subscribed(ctx.subscribed.replace(self.covered()));
    }

    /// Forgets quotes no longer waiting, lets go of connections that dropped (their quotes
    /// are subscribed again by the caller) and of full ones with nothing left to watch.
    fn prune(&mut self, waiting: &HashSet<String>) {
        // A full read may have left waiting quotes out; only their answers are forgotten.
        let complete = waiting.len() < REFRESH_LIMIT as usize;
        for conn in &mut self.open {
            if complete {
                conn.quotes.retain(|q| waiting.contains(q));
            }
        }
        let last = self.open.len().saturating_sub(1);
        let mut i = 0;
        self.open.retain(|conn| {
            let keep = !conn.task.is_finished() && (i == last || !conn.quotes.is_empty());
            i += 1;
            keep
        });
    }
}

/// Runs the subscriptions until an error (the database listener, a connection refused).
async fn session(ctx: &WorkerContext, url: &str, limits: Limits) -> anyhow::Result<()> {
    // Listening starts before the first refresh, so a quote made in between is not missed.
    let mut created = PgListener::connect_with(&ctx.pool).await?;
    created.listen(quotes::QUOTES_CHANNEL).await?;
    let (paid, mut reported) = mpsc::unbounded_channel();
    let mut conns = Connections {
        url: url.to_owned(),
        limits,
        paid,
        open: Vec::new(),
    };
    let mut tick = tokio::time::interval(REFRESH);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let waiting: HashSet<String> =
                    quotes::open_ids(&ctx.pool, REFRESH_LIMIT).await?.into_iter().collect();
                conns.prune(&waiting);
                conns.subscribe(waiting).await?;
                conns.publish(ctx);
            }
            announced = created.recv() => {
                let mut batch = vec![announced?.payload().to_owned()];
                // A burst of new quotes goes in few requests, to spare the connection's budget.
                while let Ok(more) = tokio::time::timeout(GATHER, created.recv()).await {
                    batch.push(more?.payload().to_owned());
                    if batch.len() >= limits.filters_per_subscription {
                        break;
                    }
                }
                conns.subscribe(batch).await?;
                conns.publish(ctx);
            }
            Some(quote) = reported.recv() => notify(ctx, quote).await?,
        }
    }
}

/// [`run`] once the mint's first answer says it offers NUT-17 subscriptions to bolt11 mint
/// quotes; without them, nothing (the watchers poll at the base interval).
pub async fn run_if_offered(ctx: Arc<WorkerContext>, offers: MintOffers) {
    match offers.known().await {
        Some(offers) if offers.quote_websockets => run(ctx).await,
        Some(_) => tracing::info!(
            "the mint offers no NUT-17 subscriptions to mint quotes: quotes are polled"
        ),
        None => {}
    }
}

/// Runs until the task is dropped, reconnecting after errors.
pub async fn run(ctx: Arc<WorkerContext>) {
    run_with(ctx, Limits::CDK).await;
}

/// [`run`] with other limits (a mint that allows less, or a test that fills connections fast).
pub async fn run_with(ctx: Arc<WorkerContext>, limits: Limits) {
    let url = ws_url(&ctx.config.mint.url);
    // Stopped (the task aborted with the worker), nothing is covered any more.
    let _uncover = Uncover(ctx.subscribed.clone());
    loop {
        if let Err(e) = session(&ctx, &url, limits).await {
            tracing::debug!(error = %e, "mint subscriptions ended; polling covers until they are back");
        }
        // Nothing is subscribed any more: the watchers poll at the base interval meanwhile.
        openpleb_common::metrics::quotes_subscribed(ctx.subscribed.replace(HashSet::new()));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Clears what the notifier covered when it stops.
struct Uncover(openpleb_common::health::Subscribed);

impl Drop for Uncover {
    fn drop(&mut self) {
        openpleb_common::metrics::quotes_subscribed(self.0.replace(HashSet::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_notifications() {
        assert_eq!(ws_url("http://127.0.0.1:3338"), "ws://127.0.0.1:3338/v1/ws");
        assert_eq!(ws_url("https://mint.example/"), "wss://mint.example/v1/ws");
        let paid = r#"{"jsonrpc":"2.0","method":"subscribe","params":{"subId":"x","payload":{"quote":"q1","state":"PAID"}}}"#;
        assert_eq!(paid_quote(paid), Some("q1".to_owned()));
        let unpaid = r#"{"jsonrpc":"2.0","method":"subscribe","params":{"subId":"x","payload":{"quote":"q1","state":"UNPAID"}}}"#;
        assert_eq!(paid_quote(unpaid), None);
        assert_eq!(
            paid_quote(r#"{"jsonrpc":"2.0","result":{"status":"OK"},"id":1}"#),
            None
        );
    }
}
