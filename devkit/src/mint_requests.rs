//! What the dev mint was asked: every request it answers, counted by route, and those that name
//! a mint quote counted per quote, so a test or the bench can say what one quote cost the mint
//! over its whole life (its creation, its websocket subscriptions, every look at its state, its
//! minting).
//!
//! Counted at the mint, not by the backend, so nothing the backend forgets to count escapes:
//! HTTP requests by the route they matched (`GET /v1/mint/quote/{method}/{quote_id}`), websocket
//! connections as `GET /v1/ws`, and each message a client sends on one (`WS subscribe`, with
//! each quote it names counted for that quote, as the mint looks each one up). cdk's websocket
//! handler is private to cdk-axum, so its messages are read by a proxy: the dev mint takes the
//! client's upgrade itself and connects on to its own `/v1/ws`, marked with a secret header
//! that lets that inner connection through uncounted.
//!
//! Read in process with [`MintRequests::snapshot`], or over HTTP at `GET /dev/requests`
//! (the dev mint's only route of its own; not counted).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The header that lets the proxy's own connection to `/v1/ws` through uncounted.
const INNER_HEADER: &str = "x-openpleb-devmint-inner";

/// The route of a websocket subscription message.
pub const WS_SUBSCRIBE: &str = "WS subscribe";

/// Bodies read to find a quote id are small JSON documents; anything larger is not read.
const BODY_LIMIT: usize = 1 << 20;

/// The counts at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Requests by route (`METHOD /path/{param}`, as cdk-axum names its routes), websocket messages by kind (`WS subscribe`).
    pub routes: BTreeMap<String, u64>,
    /// Requests and subscriptions that named a mint quote, by quote id: its creation (the id
    /// read from the answer), looks at its state, its minting, each subscription naming it.
    pub quotes: HashMap<String, u64>,
}

impl Counts {
    /// Every request and websocket message.
    pub fn total(&self) -> u64 {
        self.routes.values().sum()
    }

    /// Those that named `quote_id`.
    pub fn of_quote(&self, quote_id: &str) -> u64 {
        self.quotes.get(quote_id).copied().unwrap_or(0)
    }

    /// What was counted since `earlier` (a snapshot of the same counter).
    pub fn since(&self, earlier: &Counts) -> Counts {
        let minus = |now: u64, then: Option<&u64>| now.saturating_sub(then.copied().unwrap_or(0));
        Counts {
            routes: self
                .routes
                .iter()
                .map(|(k, v)| (k.clone(), minus(*v, earlier.routes.get(k))))
                .filter(|(_, v)| *v > 0)
                .collect(),
            quotes: self
                .quotes
                .iter()
                .map(|(k, v)| (k.clone(), minus(*v, earlier.quotes.get(k))))
                .filter(|(_, v)| *v > 0)
                .collect(),
        }
    }
}

/// The dev mint's request counter; clones share it.
#[derive(Debug, Clone, Default)]
pub struct MintRequests {
    counts: Arc<Mutex<Counts>>,
}

impl MintRequests {
    /// The counts now.
    pub fn snapshot(&self) -> Counts {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // A panic while counting leaves plain numbers behind: still good to read.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn route(&self, route: &str) {
        *self.lock().routes.entry(route.to_owned()).or_default() += 1;
    }

    fn quote(&self, quote_id: &str) {
        *self.lock().quotes.entry(quote_id.to_owned()).or_default() += 1;
    }

    /// Counts a message a client sent on a websocket.
    fn ws_message(&self, text: &str) {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            self.route("WS (unreadable)");
            return;
        };
        let method = v["method"].as_str().unwrap_or("?");
        self.route(&format!("WS {method}"));
        if method == "subscribe" && v["params"]["kind"] == "bolt11_mint_quote" {
            if let Some(filters) = v["params"]["filters"].as_array() {
                for quote in filters.iter().filter_map(Value::as_str) {
                    self.quote(quote);
                }
            }
        }
    }
}

/// What the counting layer needs.
#[derive(Debug, Clone)]
pub(crate) struct Counting {
    pub requests: MintRequests,
    /// `ws://` URL of this mint's own `/v1/ws`.
    pub ws_url: String,
    /// The value of [`INNER_HEADER`] that marks the proxy's own connection.
    pub secret: String,
}

/// `GET /dev/requests`: the counts as JSON.
pub(crate) async fn serve_counts(State(counting): State<Counting>) -> Response {
    axum::Json(counting.requests.snapshot()).into_response()
}

/// Counts `req` by its route (and its quote), then answers it; a websocket upgrade is answered
/// by the proxy.
pub(crate) async fn count(State(counting): State<Counting>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/dev/requests" {
        return next.run(req).await;
    }
    if req
        .headers()
        .get(INNER_HEADER)
        .and_then(|v| v.to_str().ok())
        == Some(&counting.secret)
    {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| path.clone());
    let method = req.method().clone();
    counting.requests.route(&format!("{method} {route}"));
    match (method.as_str(), route.as_str()) {
        ("GET", "/v1/ws") => upgrade(counting, req).await,
        // A look at a quote's state: its id is the path's last part.
        ("GET", "/v1/mint/quote/{method}/{quote_id}") => {
            if let Some(id) = path.rsplit('/').next() {
                counting.requests.quote(id);
            }
            next.run(req).await
        }
        // Minting, and looks at several quotes at once: the ids are in the body.
        (
            "POST",
            "/v1/mint/{method}" | "/v1/mint/{method}/batch" | "/v1/mint/quote/{method}/check",
        ) => {
            let (parts, body) = req.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
                return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
            };
            for id in quotes_of(&bytes) {
                counting.requests.quote(&id);
            }
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        // A new quote: its id is in the answer.
        ("POST", "/v1/mint/quote/{method}") => {
            let (parts, body) = next.run(req).await.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
                return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            for id in quotes_of(&bytes) {
                counting.requests.quote(&id);
            }
            Response::from_parts(parts, Body::from(bytes))
        }
        _ => next.run(req).await,
    }
}

/// The quote ids a JSON body names: its `quote` field, or its `quotes` list.
fn quotes_of(bytes: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    if let Some(id) = v["quote"].as_str() {
        return vec![id.to_owned()];
    }
    v["quotes"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Takes the client's websocket upgrade and proxies it to the mint's own handler.
async fn upgrade(counting: Counting, req: Request) -> Response {
    let (mut parts, _body) = req.into_parts();
    // The auth headers the mint's handler checks go along.
    let forwarded: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n.eq_ignore_ascii_case("clear-auth") || n.eq_ignore_ascii_case("blind-auth")
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws.on_upgrade(move |client| proxy(client, counting, forwarded)),
        Err(rejection) => rejection.into_response(),
    }
}

/// Passes text messages both ways until either side closes, counting the client's.
async fn proxy(mut client: WebSocket, counting: Counting, forwarded: Vec<(String, String)>) {
    let mut headers: Vec<(&str, &str)> = vec![(INNER_HEADER, counting.secret.as_str())];
    headers.extend(forwarded.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let (mut to_mint, mut from_mint) = match cdk_http_client::ws::connect(
        &counting.ws_url,
        &headers,
    )
    .await
    {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(error = %e, "dev mint: the websocket proxy could not reach the mint");
            let _ = client.send(Message::Close(None)).await;
            return;
        }
    };
    loop {
        tokio::select! {
            msg = client.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    counting.requests.ws_message(text.as_str());
                    if to_mint.send(text.to_string()).await.is_err() {
                        let _ = client.send(Message::Close(None)).await;
                        return;
                    }
                }
                Some(Ok(Message::Binary(bin))) => {
                    let text = String::from_utf8_lossy(&bin).into_owned();
                    counting.requests.ws_message(&text);
                    if to_mint.send(text).await.is_err() {
                        let _ = client.send(Message::Close(None)).await;
                        return;
                    }
                }
                // Pings are answered by the websocket itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    let _ = to_mint.close().await;
                    return;
                }
            },
            msg = from_mint.recv() => match msg {
                Some(Ok(text)) => {
                    if client.send(Message::Text(text.into())).await.is_err() {
                        let _ = to_mint.close().await;
                        return;
                    }
                }
                Some(Err(_)) | None => {
                    let _ = client.send(Message::Close(None)).await;
                    return;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_count_per_quote() {
        let r = MintRequests::default();
        r.ws_message(
            r#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"kind":"bolt11_mint_quote","filters":["a","b"],"subId":"s"}}"#,
        );
        r.ws_message("not json");
        let c = r.snapshot();
        assert_eq!(c.routes.get(WS_SUBSCRIBE), Some(&1));
        assert_eq!(c.of_quote("a"), 1);
        assert_eq!(c.of_quote("b"), 1);
        assert_eq!(c.total(), 2);
        let later = {
            r.quote("a");
            r.snapshot()
        };
        let diff = later.since(&c);
        assert_eq!(diff.of_quote("a"), 1);
        assert_eq!(diff.of_quote("b"), 0);
    }
}
