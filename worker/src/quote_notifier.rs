//! NUT-17: one websocket per worker, subscribed to every quote still waiting for payment (each
//! new quote as its row commits, announced on [`quotes::QUOTES_CHANNEL`]; a refresh from the
//! table every few seconds as the fallback). When the mint reports a quote PAID, the quote's watcher job is enqueued at once instead of at its
//! next polling round; the polling chain stays as the fallback (the websocket can drop, and a
//! mint may not offer NUT-17 at all).
//!
//! Safe to run in every worker: the job it enqueues is idempotent and keyed per quote.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use cdk_http_client::ws::WsSender;
use openpleb_common::db::quotes;
use openpleb_common::jobs::{enqueue, WatchMintQuote, PAID_CHAIN};
use serde_json::{json, Value};
use sqlx::postgres::PgListener;

use crate::WorkerContext;

/// How often the subscription is compared with the table (new quotes come in at once through
/// their announcement; this catches any that were missed).
const REFRESH: Duration = Duration::from_secs(5);

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

/// Subscribes `new` quotes (those not yet in `subscribed`) on the websocket.
async fn subscribe(
    tx: &mut WsSender,
    subscribed: &mut HashSet<String>,
    next_id: &mut usize,
    new: Vec<String>,
) -> anyhow::Result<()> {
    let new: Vec<String> = new
        .into_iter()
        .filter(|q| !subscribed.contains(q))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let request = json!({
        "jsonrpc": "2.0", "id": *next_id, "method": "subscribe",
        "params": {"kind": "bolt11_mint_quote", "filters": new,
                   "subId": uuid::Uuid::new_v4().to_string()},
    });
    *next_id += 1;
    tx.send(request.to_string())
        .await
        .map_err(|e| anyhow::anyhow!("send: {e}"))?;
    subscribed.extend(new);
    Ok(())
}

/// Subscriptions one connection makes before it is replaced by a fresh one (which subscribes
/// every open quote in one request): cdk's mint refuses more than 100 per connection, and the
/// refusal is only an error message on the socket, so quotes past it were silently left to
/// polling (settlement p95 4.7 s over 200 offers).
const SUBSCRIPTIONS_PER_CONNECTION: usize = 90;

/// How long announcements are gathered into one subscription request.
const GATHER: Duration = Duration::from_millis(20);

/// Runs one websocket connection; `Ok` when it used up its subscriptions.
async fn session(ctx: &WorkerContext, url: &str) -> anyhow::Result<()> {
    // Listening starts before the first refresh, so a quote made in between is not missed.
    let mut created = PgListener::connect_with(&ctx.pool).await?;
    created.listen(quotes::QUOTES_CHANNEL).await?;
    let (mut tx, mut rx) = cdk_http_client::ws::connect(url, &[])
        .await
        .map_err(|e| anyhow::anyhow!("connect {url}: {e}"))?;
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut next_id = 1usize;
    let mut tick = tokio::time::interval(REFRESH);
    loop {
        if next_id > SUBSCRIPTIONS_PER_CONNECTION {
            return Ok(());
        }
        tokio::select! {
            _ = tick.tick() => {
                // The fallback for announcements missed while the listener reconnected; also
                // forgets quotes no longer waiting, so the set stays as small as the open ones.
                let open: HashSet<String> =
                    quotes::open_ids(&ctx.pool, 1000).await?.into_iter().collect();
                subscribed.retain(|q| open.contains(q));
                subscribe(&mut tx, &mut subscribed, &mut next_id, open.into_iter().collect())
                    .await?;
            }
            announced = created.recv() => {
                let mut batch = vec![announced?.payload().to_owned()];
                // A burst of new quotes goes in one request, to spare the connection's budget.
                while let Ok(more) = tokio::time::timeout(GATHER, created.recv()).await {
                    batch.push(more?.payload().to_owned());
                    if batch.len() >= 1000 {
                        break;
                    }
                }
                subscribe(&mut tx, &mut subscribed, &mut next_id, batch).await?;
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { anyhow::bail!("websocket closed") };
                let text = msg.map_err(|e| anyhow::anyhow!("receive: {e}"))?;
                if let Some(quote) = paid_quote(&text) {
                    notify(ctx, quote).await?;
                }
            }
        }
    }
}

/// Runs until the task is dropped, reconnecting after errors.
pub async fn run(ctx: Arc<WorkerContext>) {
    let url = ws_url(&ctx.config.mint.url);
    loop {
        match session(&ctx, &url).await {
            // Its subscriptions used up: a new connection at once.
            Ok(()) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "mint websocket ended; polling covers until it is back");
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
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
