//! A small OpenID Connect issuer for tests and `scripts/dev`: what cdk's mint checks when it
//! verifies a clear auth token (NUT-21), and nothing more.
//!
//! - `GET /.well-known/openid-configuration`: issuer, jwks_uri, token_endpoint and
//!   device_authorization_endpoint (cdk requires all four).
//! - `GET /jwks`: one P-256 key (fresh per start, with its own `kid`).
//! - `POST /token` (JSON):
//!   - `{"grant_type":"openpleb_pubkey","pubkey","timestamp","signature"}`: a trader logs in by
//!     signing `SHA-256("openpleb-dev-login:" ‖ pubkey ‖ ":" ‖ timestamp)` with its registered
//!     key; the issuer asks the backend's `GET /oidc-api/pubkey/{pubkey}` (as a real
//!     nostr-oidc deployment does) and only answers for active users;
//!   - `{"grant_type":"client_credentials","client_id","client_secret"}`: the backend's own
//!     service account.
//!
//! Tokens are ES256 JWTs with `iss`, `sub`, `azp` (the client id) and a 10 minute `exp`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use cdk_common::bitcoin::hashes::{sha256, Hash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openpleb_common::domain::keys::XOnlyKey;
use openpleb_common::domain::registration::verify_signature;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// The client id the dev mint expects in `azp`.
pub const DEV_CLIENT_ID: &str = "openpleb";

/// Settings of a [`DevOidc`].
#[derive(Debug, Clone)]
pub struct DevOidcOptions {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// Base URL of the backend's admin API (`http://host:port/api/v1`) for the pubkey check.
    pub backend_admin_url: String,
    /// The backend's `OIDC_API_TOKEN`.
    pub backend_token: String,
    /// The service account's client secret (client id is [`DEV_CLIENT_ID`]).
    pub service_secret: String,
}

struct Issuer {
    issuer: String,
    kid: String,
    key: EncodingKey,
    jwk: Value,
    opts: DevOidcOptions,
    http: cdk::http_client::HttpClient,
}

/// A running issuer; stops when dropped.
#[derive(Debug)]
pub struct DevOidc {
    /// The issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
    /// The discovery document's URL (what the mint is configured with).
    pub discovery_url: String,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for DevOidc {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The message a trader signs to log in at the dev issuer.
pub fn login_digest(pubkey: &str, timestamp: i64) -> [u8; 32] {
    sha256::Hash::hash(format!("openpleb-dev-login:{pubkey}:{timestamp}").as_bytes())
        .to_byte_array()
}

#[derive(Debug, Deserialize)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
enum TokenRequest {
    OpenplebPubkey {
        pubkey: String,
        timestamp: i64,
        signature: String,
    },
    ClientCredentials {
        client_id: String,
        client_secret: String,
    },
}

type Reply = (StatusCode, Json<Value>);

fn refuse(status: StatusCode, error: &str) -> Reply {
    (status, Json(json!({"error": error})))
}

impl DevOidc {
    /// Starts the issuer.
    pub async fn start(opts: DevOidcOptions) -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow::anyhow!("generate P-256 key"))?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow::anyhow!("load P-256 key"))?;
        let point = pair.public_key().as_ref();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let kid = format!("k{}", uuid::Uuid::new_v4().simple());
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65]),
        });

        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("bind OIDC issuer on {}", opts.listen))?;
        let addr = listener.local_addr()?;
        let issuer_url = format!("http://{addr}");
        let state = Arc::new(Issuer {
            issuer: issuer_url.clone(),
            kid,
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
            opts,
            http: cdk::http_client::HttpClient::new(),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/device", post(device))
            .with_state(state);
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "dev OIDC issuer stopped");
            }
        });
        Ok(Self {
            discovery_url: format!("{issuer_url}/.well-known/openid-configuration"),
            issuer: issuer_url,
            shutdown: Some(tx),
        })
    }
}

async fn discovery(State(s): State<Arc<Issuer>>) -> Json<Value> {
    Json(json!({
        "issuer": s.issuer,
        "jwks_uri": format!("{}/jwks", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "device_authorization_endpoint": format!("{}/device", s.issuer),
    }))
}

async fn jwks(State(s): State<Arc<Issuer>>) -> Json<Value> {
    Json(json!({"keys": [s.jwk]}))
}

async fn device() -> Reply {
    refuse(StatusCode::NOT_IMPLEMENTED, "unsupported_grant_type")
}

async fn token(State(s): State<Arc<Issuer>>, Json(req): Json<TokenRequest>) -> Reply {
    let subject = match req {
        TokenRequest::OpenplebPubkey {
            pubkey,
            timestamp,
            signature,
        } => {
            let Ok(key) = pubkey.parse::<XOnlyKey>() else {
                return refuse(StatusCode::BAD_REQUEST, "invalid_request");
            };
            let now = chrono::Utc::now().timestamp_millis();
            if (now - timestamp).abs() > 60_000
                || verify_signature(&key, login_digest(&pubkey, timestamp), &signature).is_err()
            {
                return refuse(StatusCode::UNAUTHORIZED, "invalid_grant");
            }
            let url = format!("{}/oidc-api/pubkey/{pubkey}", s.opts.backend_admin_url);
            let answer = s
                .http
                .get(&url)
                .header("Authorization", format!("Bearer {}", s.opts.backend_token))
                .send_json::<Value>()
                .await;
            match answer {
                Ok(v) if v["active"] == true => pubkey,
                Ok(_) => return refuse(StatusCode::FORBIDDEN, "access_denied"),
                Err(_) => return refuse(StatusCode::BAD_GATEWAY, "temporarily_unavailable"),
            }
        }
        TokenRequest::ClientCredentials {
            client_id,
            client_secret,
        } => {
            if client_id != DEV_CLIENT_ID
                || !openpleb_common::domain::secrets_equal(&client_secret, &s.opts.service_secret)
            {
                return refuse(StatusCode::UNAUTHORIZED, "invalid_client");
            }
            format!("service:{client_id}")
        }
    };
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": s.issuer, "sub": subject, "azp": DEV_CLIENT_ID,
        "iat": now, "exp": now + 600,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(s.kid.clone());
    match jsonwebtoken::encode(&header, &claims, &s.key) {
        Ok(jwt) => (
            StatusCode::OK,
            Json(json!({"access_token": jwt, "token_type": "Bearer", "expires_in": 600})),
        ),
        Err(_) => refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    }
}
