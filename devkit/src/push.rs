//! A push service and a webhook receiver for tests and the demo, doing what a browser's push
//! service plus the browser, and an integrator's webhook endpoint, would do with what we send:
//!
//! - push (RFC 8030): checks the VAPID token (RFC 8292: ES256 by the key `GET /push/key`
//!   publishes, `aud` this service's origin, `exp` within 24 h) and decrypts the message
//!   (RFC 8291, `aes128gcm`) with the subscriber's private key and auth secret;
//! - webhooks: checks the Standard Webhooks signature with the secret the party was given.
//!
//! Each can be told to answer 404, 410, 429 or 500 for its next deliveries. Everything it
//! received is kept for the test to read; what it refused is counted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256PublicKey};
use web_push_native::jwt_simple::claims::NoCustomClaims;
use web_push_native::jwt_simple::common::VerificationOptions;
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
use web_push_native::{p256, Auth};

/// One delivery as the browser (or the webhook's owner) saw it.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The decrypted (or posted) JSON.
    pub body: Value,
    /// `TTL` (push).
    pub ttl: Option<u64>,
    /// `Urgency` (push).
    pub urgency: Option<String>,
    /// `Topic` (push).
    pub topic: Option<String>,
    /// `webhook-id` (webhooks).
    pub id: Option<String>,
    /// When it arrived.
    pub at: std::time::Instant,
}

/// A subscribed browser, as `PushSubscription.toJSON()` would describe it.
#[derive(Debug, Clone)]
pub struct Browser {
    /// Its endpoint at this push service.
    pub endpoint: String,
    /// Its public key (uncompressed, base64url).
    pub p256dh: String,
    /// Its auth secret (base64url).
    pub auth: String,
    id: String,
}

impl Browser {
    /// The subscription as JSON, the way a client sends it.
    pub fn json(&self) -> Value {
        serde_json::json!({"endpoint": self.endpoint,
                           "keys": {"p256dh": self.p256dh, "auth": self.auth}})
    }
}

/// A webhook endpoint.
#[derive(Debug, Clone)]
pub struct Hook {
    /// Where to post.
    pub url: String,
    id: String,
}

struct Sub {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

#[derive(Default)]
struct Inner {
    vapid_public: Option<String>,
    subs: HashMap<String, Sub>,
    hook_secrets: HashMap<String, String>,
    received: HashMap<String, Vec<Delivered>>,
    fail: HashMap<String, VecDeque<(u16, Option<u64>)>>,
    refused: Vec<String>,
}

#[derive(Clone)]
struct Shared {
    origin: String,
    inner: Arc<Mutex<Inner>>,
}

/// The running service.
pub struct PushService {
    origin: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PushService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(16) {
        let u = uuid::Uuid::new_v4();
        chunk.copy_from_slice(&u.as_bytes()[..chunk.len()]);
    }
    out
}

impl PushService {
    /// Starts on 127.0.0.1 (an ephemeral port), checking tokens against `vapid_public` (the
    /// key `GET /push/key` gives; `None` to be set later with [`PushService::expect_key`]).
    pub async fn start(vapid_public: Option<String>) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let inner = Arc::new(Mutex::new(Inner {
            vapid_public,
            ..Inner::default()
        }));
        let shared = Shared {
            origin: origin.clone(),
            inner: inner.clone(),
        };
        let app = Router::new()
            .route("/push/{id}", post(push))
            .route("/hook/{id}", post(hook))
            .with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            origin,
            inner,
            task,
        })
    }

    /// Checks tokens against this VAPID public key from now on.
    pub fn expect_key(&self, vapid_public: &str) {
        lock(&self.inner).vapid_public = Some(vapid_public.to_owned());
    }

    /// A new browser subscribed here.
    pub fn subscribe(&self) -> Browser {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let secret = loop {
            if let Ok(k) = p256::SecretKey::from_slice(&random_bytes::<32>()) {
                break k;
            }
        };
        let auth = random_bytes::<16>();
        let p256dh = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        lock(&self.inner)
            .subs
            .insert(id.clone(), Sub { secret, auth });
        Browser {
            endpoint: format!("{}/push/{id}", self.origin),
            p256dh,
            auth: URL_SAFE_NO_PAD.encode(auth),
            id,
        }
    }

    /// A new webhook endpoint here; give it its secret with [`PushService::hook_secret`].
    pub fn hook(&self) -> Hook {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Hook {
            url: format!("{}/hook/{id}", self.origin),
            id,
        }
    }

    /// The signing secret the party was given for `hook`.
    pub fn hook_secret(&self, hook: &Hook, secret: &str) {
        lock(&self.inner)
            .hook_secrets
            .insert(hook.id.clone(), secret.to_owned());
    }

    /// Answers the next `times` deliveries to `browser` with `status` (and `Retry-After`).
    pub fn fail_next(
        &self,
        browser: &Browser,
        status: u16,
        times: usize,
        retry_after: Option<u64>,
    ) {
        let mut inner = lock(&self.inner);
        let q = inner.fail.entry(browser.id.clone()).or_default();
        for _ in 0..times {
            q.push_back((status, retry_after));
        }
    }

    /// What `browser` received, oldest first.
    pub fn messages(&self, browser: &Browser) -> Vec<Delivered> {
        lock(&self.inner)
            .received
            .get(&browser.id)
            .cloned()
            .unwrap_or_default()
    }

    /// What `hook` received, oldest first (duplicates included: see
    /// [`PushService::duplicates`]).
    pub fn hook_messages(&self, hook: &Hook) -> Vec<Delivered> {
        lock(&self.inner)
            .received
            .get(&hook.id)
            .cloned()
            .unwrap_or_default()
    }

    /// Deliveries to `hook` whose `webhook-id` arrived before.
    pub fn duplicates(&self, hook: &Hook) -> usize {
        let got = self.hook_messages(hook);
        let mut seen = std::collections::HashSet::new();
        got.iter()
            .filter(|d| !seen.insert(d.id.clone().unwrap_or_default()))
            .count()
    }

    /// Why deliveries were refused (bad token, bad signature, undecryptable), in order.
    pub fn refused(&self) -> Vec<String> {
        lock(&self.inner).refused.clone()
    }

    /// Waits until `browser` holds at least `n` messages (up to `within`); what it holds.
    pub async fn wait_for(
        &self,
        browser: &Browser,
        n: usize,
        within: std::time::Duration,
    ) -> Vec<Delivered> {
        let until = std::time::Instant::now() + within;
        loop {
            let got = self.messages(browser);
            if got.len() >= n || std::time::Instant::now() > until {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

fn refuse(shared: &Shared, why: String, status: StatusCode) -> Response {
    lock(&shared.inner).refused.push(why);
    status.into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Pops a failure queued for `id`, if any.
fn queued_failure(shared: &Shared, id: &str) -> Option<Response> {
    let (status, retry) = lock(&shared.inner).fail.get_mut(id)?.pop_front()?;
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = code.into_response();
    if let Some(r) = retry {
        if let Ok(v) = r.to_string().parse() {
            resp.headers_mut().insert("retry-after", v);
        }
    }
    Some(resp)
}

/// Checks `Authorization: vapid t=…, k=…`: the key is the one expected, the token is signed
/// by it, names this origin and expires within a day.
fn check_vapid(shared: &Shared, headers: &HeaderMap) -> Result<(), String> {
    let value = header(headers, "authorization").ok_or("no Authorization")?;
    let rest = value
        .strip_prefix("vapid ")
        .ok_or("not a vapid Authorization")?;
    let mut token = None;
    let mut key = None;
    for part in rest.split(',').map(str::trim) {
        if let Some(t) = part.strip_prefix("t=") {
            token = Some(t);
        } else if let Some(k) = part.strip_prefix("k=") {
            key = Some(k);
        }
    }
    let (token, key) = (token.ok_or("no t=")?, key.ok_or("no k=")?);
    let expected = lock(&shared.inner).vapid_public.clone();
    if expected.as_deref() != Some(key) {
        return Err("k= is not the server's VAPID key".to_owned());
    }
    let raw = URL_SAFE_NO_PAD
        .decode(key)
        .map_err(|_| "k= is not base64url")?;
    let public = ES256PublicKey::from_bytes(&raw).map_err(|e| format!("k=: {e}"))?;
    let options = VerificationOptions {
        allowed_audiences: Some(std::collections::HashSet::from([shared.origin.clone()])),
        ..VerificationOptions::default()
    };
    let claims = public
        .verify_token::<NoCustomClaims>(token, Some(options))
        .map_err(|e| format!("token: {e}"))?;
    let exp = claims.expires_at.ok_or("no exp")?;
    let now = web_push_native::jwt_simple::prelude::Clock::now_since_epoch();
    if exp.as_secs() > now.as_secs() + 24 * 3600 {
        return Err("exp is more than 24 h away".to_owned());
    }
    if claims.subject.is_none() {
        return Err("no sub".to_owned());
    }
    Ok(())
}

async fn push(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(why) = check_vapid(&shared, &headers) {
        return refuse(&shared, why, StatusCode::FORBIDDEN);
    }
    if header(&headers, "content-encoding") != Some("aes128gcm") {
        return refuse(&shared, "not aes128gcm".to_owned(), StatusCode::BAD_REQUEST);
    }
    let keys = {
        let inner = lock(&shared.inner);
        inner.subs.get(&id).map(|s| (s.secret.clone(), s.auth))
    };
    let Some((secret, auth)) = keys else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(failure) = queued_failure(&shared, &id) {
        return failure;
    }
    let plain = match web_push_native::decrypt(body.to_vec(), &secret, &Auth::from(auth)) {
        Ok(p) => p,
        Err(e) => return refuse(&shared, format!("decrypt: {e}"), StatusCode::BAD_REQUEST),
    };
    let Ok(json) = serde_json::from_slice::<Value>(&plain) else {
        return refuse(&shared, "not JSON".to_owned(), StatusCode::BAD_REQUEST);
    };
    let delivered = Delivered {
        body: json,
        ttl: header(&headers, "ttl").and_then(|v| v.parse().ok()),
        urgency: header(&headers, "urgency").map(str::to_owned),
        topic: header(&headers, "topic").map(str::to_owned),
        id: None,
        at: std::time::Instant::now(),
    };
    keep(&shared, id, delivered);
    StatusCode::CREATED.into_response()
}

async fn hook(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let secret = lock(&shared.inner).hook_secrets.get(&id).cloned();
    let Some(secret) = secret else {
        return refuse(
            &shared,
            "a webhook with no secret".to_owned(),
            StatusCode::NOT_FOUND,
        );
    };
    let (Some(msg_id), Some(ts), Some(sigs)) = (
        header(&headers, "webhook-id"),
        header(&headers, "webhook-timestamp"),
        header(&headers, "webhook-signature"),
    ) else {
        return refuse(
            &shared,
            "webhook headers missing".to_owned(),
            StatusCode::BAD_REQUEST,
        );
    };
    let Ok(ts) = ts.parse::<i64>() else {
        return refuse(&shared, "bad timestamp".to_owned(), StatusCode::BAD_REQUEST);
    };
    if (chrono::Utc::now().timestamp() - ts).abs() > 300 {
        return refuse(
            &shared,
            "stale timestamp".to_owned(),
            StatusCode::BAD_REQUEST,
        );
    }
    if !signed_by(&secret, msg_id, ts, &body, sigs) {
        return refuse(
            &shared,
            "bad signature".to_owned(),
            StatusCode::UNAUTHORIZED,
        );
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return refuse(&shared, "not JSON".to_owned(), StatusCode::BAD_REQUEST);
    };
    let delivered = Delivered {
        body: json,
        ttl: None,
        urgency: None,
        topic: None,
        id: Some(msg_id.to_owned()),
        at: std::time::Instant::now(),
    };
    keep(&shared, id, delivered);
    StatusCode::OK.into_response()
}

/// Keeps a message delivered to subscription or webhook `id`.
fn keep(shared: &Shared, id: String, delivered: Delivered) {
    lock(&shared.inner)
        .received
        .entry(id)
        .or_default()
        .push(delivered);
}

/// Whether any `v1,` signature in `sigs` is the HMAC-SHA256 of `id.ts.body` under `secret`, as
/// a Standard Webhooks receiver checks it.
fn signed_by(secret: &str, id: &str, ts: i64, body: &[u8], sigs: &str) -> bool {
    use hmac::{Hmac, Mac};
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| STANDARD.decode(k).ok())
    else {
        return false;
    };
    sigs.split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| {
            let Ok(sig) = STANDARD.decode(s) else {
                return false;
            };
            let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&key) else {
                return false;
            };
            mac.update(format!("{id}.{ts}.").as_bytes());
            mac.update(body);
            mac.verify_slice(&sig).is_ok()
        })
}
