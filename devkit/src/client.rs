//! A trader's HTTP client for a running stack (`scripts/dev`, `scripts/chaos`): registration,
//! login at the dev OIDC issuer, BATs, sessions, receipts, redeeming payouts.
//!
//! Every request has a deadline and transport failures (refused, reset, timed out: the api or
//! the mint was killed or stopped mid-request) are retried with backoff. A repeated POST may find
//! its first attempt already applied; callers of side-effecting requests look at the state
//! before repeating them (see `chaos`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use cdk::nuts::{CurrencyUnit, SecretKey};
use cdk::wallet::{ReceiveOptions, WalletBuilder};
use openpleb_common::domain::dispute::reveal_digest;
use openpleb_common::domain::role::Role;
use openpleb_common::wallet::store::{SqlxSqliteConfig, WalletSqlxDatabase};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::oidc::login_digest;
pub use crate::scenario::party::{payout_key, Party};
use crate::scenario::transport::{Reply, Upload, PNG};
use crate::stack::mint_bats;
use crate::Trader;

/// Where the stack listens.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Public API base, e.g. `http://127.0.0.1:3000/api/v1`.
    pub api: String,
    /// Admin API base.
    pub admin: String,
    /// An admin bearer token.
    pub admin_token: String,
    /// The mint.
    pub mint: String,
    /// The dev OIDC issuer.
    pub issuer: String,
}

/// How one request failed.
#[derive(Debug)]
pub enum CallError {
    /// No answer: refused, reset or timed out. The request may or may not have been applied.
    Transport(String),
    /// An answer with this status and body.
    Status(u16, String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "no answer: {e}"),
            Self::Status(s, body) => write!(f, "{s} {body}"),
        }
    }
}

impl std::error::Error for CallError {}

impl CallError {
    /// The stable error code of an API error body, if any.
    pub fn code(&self) -> Option<String> {
        match self {
            Self::Status(_, body) => serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| v["error"]["code"].as_str().map(str::to_owned)),
            Self::Transport(_) => None,
        }
    }

    /// Whether trying again may help: no answer, or a gateway/availability status.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport(_) => true,
            Self::Status(s, _) => matches!(s, 429 | 500 | 502 | 503 | 504),
        }
    }
}

/// One attempt: `method` `url` with an optional bearer and JSON body, at most 45 s (a debug
/// build under load answers a new offer in 10-20 s; a shorter wait repeats requests that were
/// on their way).
pub async fn request(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<Value, CallError> {
    let reply = exchange(method, url, bearer, body).await?;
    if !reply.is_success() {
        return Err(CallError::Status(reply.status, reply.body.to_string()));
    }
    // A 2xx body that is not JSON reads as null, as before.
    Ok(match reply.body {
        Value::String(_) => Value::Null,
        v => v,
    })
}

/// [`request`]'s one attempt, any status being an answer.
pub async fn exchange(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<Reply, CallError> {
    let http = cdk::http_client::HttpClient::new();
    let mut req = match method {
        "GET" => http.get(url),
        "PUT" => http.put(url),
        "PATCH" => http.patch(url),
        "POST" => http.post(url),
        // cdk's client has no DELETE.
        _ => {
            return Err(CallError::Status(
                0,
                format!("{method}: not supported here"),
            ))
        }
    };
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(token) = bearer {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let resp = match tokio::time::timeout(Duration::from_secs(45), req.send()).await {
        Err(_) => return Err(CallError::Transport(format!("{method} {url}: timed out"))),
        Ok(Err(e)) => return Err(CallError::Transport(format!("{method} {url}: {e}"))),
        Ok(Ok(r)) => r,
    };
    Ok(Reply::from_text(resp.status(), resp.body_lossy()))
}

/// Backoff before attempt `n` (0-based): 200 ms doubling to 3 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis((200u64 << n.min(4)).min(3000))
}

/// `request`, repeated on transient failures for up to about two minutes.
pub async fn call_retrying(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<Value, CallError> {
    let mut n = 0;
    loop {
        match request(method, url, bearer, body).await {
            Err(e) if e.is_transient() && n < 50 => {
                tokio::time::sleep(backoff(n)).await;
                n += 1;
            }
            other => return other,
        }
    }
}

/// [`call_retrying`] with the error as `anyhow`.
pub async fn call(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Value> {
    call_retrying(method, url, bearer, body)
        .await
        .with_context(|| format!("{method} {url}"))
}

/// An invite, a registration, a login and a session, each repeated until it holds. Progress
/// goes to stderr when `verbose`.
pub async fn new_party(env: &Endpoints, name: &str, verbose: bool) -> anyhow::Result<Party> {
    let say = |m: String| {
        if verbose {
            eprintln!("[{name}] {m}");
        }
    };
    let invite = call(
        "POST",
        &format!("{}/admin/invite-codes", env.admin),
        Some(&env.admin_token),
        Some(&json!({})),
    )
    .await?;
    let code = invite["code"].as_str().context("invite code")?;
    say(format!("got invite code {code}"));
    let trader = Trader::new();
    let url = format!("{}/users/register", env.api);
    match call_retrying("POST", &url, None, Some(&trader.registration(code))).await {
        Ok(_) => {}
        // A repeat of a registration whose answer was lost: the server records the nonce in
        // the transaction that registers the key, so a fresh nonce "reused" means it went in.
        Err(e)
            if matches!(
                e.code().as_deref(),
                Some("pubkey_registered" | "nonce_reused")
            ) => {}
        Err(e) => bail!("POST {url}: {e}"),
    }
    say(format!("registered pubkey {}", trader.pubkey()));
    for attempt in 0..10 {
        let bat = fresh_bat(env, &trader).await?;
        if attempt == 0 {
            say("logged in at the OIDC issuer and minted a blind auth token".to_owned());
        }
        let body = json!({"bat": bat});
        match request("POST", &format!("{}/sessions", env.api), None, Some(&body)).await {
            Ok(_) => {
                say("opened an anonymous session with it".to_owned());
                return Ok(Party { trader, bat });
            }
            Err(CallError::Transport(_)) => {
                // The session may exist: ask with the BAT before spending another.
                let current = format!("{}/sessions/current", env.api);
                if call_retrying("GET", &current, Some(&bat), None)
                    .await
                    .is_ok()
                {
                    return Ok(Party { trader, bat });
                }
            }
            Err(e) if e.is_transient() => {}
            Err(e) => bail!("POST /sessions: {e}"),
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
    bail!("no session after 10 BATs")
}

/// Logs `trader` in at the issuer and mints one BAT, repeating on transient failures.
pub async fn fresh_bat(env: &Endpoints, trader: &Trader) -> anyhow::Result<String> {
    let mut last = None;
    for n in 0..40 {
        let ts = chrono::Utc::now().timestamp_millis();
        let login = json!({
            "grant_type": "openpleb_pubkey", "pubkey": trader.pubkey(), "timestamp": ts,
            "signature": trader.sign_digest(login_digest(&trader.pubkey(), ts)),
        });
        let token = call("POST", &format!("{}/token", env.issuer), None, Some(&login)).await?;
        let cat = token["access_token"].as_str().context("access token")?;
        match tokio::time::timeout(Duration::from_secs(20), mint_bats(&env.mint, cat, 1)).await {
            Ok(Ok(mut bats)) if !bats.is_empty() => return Ok(bats.remove(0)),
            Ok(Ok(_)) => last = Some(anyhow::anyhow!("the mint gave no BAT")),
            Ok(Err(e)) => last = Some(e),
            Err(_) => last = Some(anyhow::anyhow!("minting a BAT timed out")),
        }
        tokio::time::sleep(backoff(n)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no BAT")))
}

/// Uploads a 1×1 PNG as the receipt of `id` (multipart/form-data over plain HTTP).
pub async fn upload_receipt(env: &Endpoints, who: &Party, id: &str) -> Result<(), CallError> {
    let url = format!("{}/offers/{id}/receipt", env.api);
    let file = Upload::image(PNG.to_vec(), "receipt.png").note("paid by the demo");
    let reply = post_upload(&url, Some(&who.bat), &file).await?;
    if reply.status != 200 {
        return Err(CallError::Status(reply.status, reply.body.to_string()));
    }
    Ok(())
}

/// POSTs `file` as multipart/form-data field `image` (and its note as `note`) over plain HTTP.
pub async fn post_upload(
    url: &str,
    bearer: Option<&str>,
    file: &Upload,
) -> Result<Reply, CallError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| CallError::Status(0, "the dev client speaks plain HTTP".to_owned()))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| CallError::Status(0, "url".to_owned()))?;
    let boundary = "openplebdemoboundary";
    let mut body = Vec::new();
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n", file.filename, file.content_type).as_bytes());
    body.extend_from_slice(&file.bytes);
    if let Some(note) = &file.note {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n{note}"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let auth = bearer
        .map(|b| format!("Authorization: Bearer {b}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(host).await?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match tokio::time::timeout(Duration::from_secs(20), exchange).await {
        Err(_) => return Err(CallError::Transport("upload timed out".to_owned())),
        Ok(Err(e)) => return Err(CallError::Transport(format!("upload: {e}"))),
        Ok(Ok(a)) => a,
    };
    let status: u16 = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status == 0 {
        return Err(CallError::Transport("upload: no status line".to_owned()));
    }
    let text = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok(Reply::from_text(status, text.to_owned()))
}

/// Redeems `tokens` into a fresh wallet with `key`; returns the sats.
pub async fn redeem(mint: &str, tokens: &[String], key: &SecretKey) -> anyhow::Result<u64> {
    let db = Arc::new(WalletSqlxDatabase::new(SqlxSqliteConfig::memory()).await?);
    let mut seed = [0u8; 64];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..32].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let wallet = WalletBuilder::new()
        .mint_url(mint.parse().context("mint url")?)
        .unit(CurrencyUnit::Sat)
        .localstore(db)
        .seed(seed)
        .without_rate_limiting()
        .build()?;
    let mut total = 0u64;
    for t in tokens {
        let opts = ReceiveOptions {
            p2pk_signing_keys: vec![key.clone()],
            ..Default::default()
        };
        total += u64::from(wallet.receive(t, opts).await?);
    }
    Ok(total)
}

/// The registered key of `who` as a cdk key (payouts lock to it after a reveal).
pub fn registered_key(who: &Party) -> anyhow::Result<SecretKey> {
    Ok(SecretKey::from_slice(
        &who.trader.secret_key().secret_bytes(),
    )?)
}

/// A reveal of `who`'s registered key for offer `id` as `role`, signed now.
pub fn reveal(who: &Party, id: &str, role: Role) -> anyhow::Result<Value> {
    let ts = chrono::Utc::now().timestamp_millis();
    let offer: uuid::Uuid = id.parse()?;
    Ok(json!({
        "pubkey": who.trader.pubkey(), "timestamp": ts,
        "signature": who.trader.sign_digest(reveal_digest(offer, role, ts)),
    }))
}
