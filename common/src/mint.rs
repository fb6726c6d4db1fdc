//! What cdk does not give us about the mint: its info, the blind-auth set-up check, and
//! spending a trader's blind auth token (BAT) to verify it (DESIGN.md section 2).
//!
//! NUT-22 has no check-state for BATs, and checking a BAT's DLEQ offline would need the blinding
//! factor, which would let the mint link the BAT to the login. So the backend spends the BAT
//! once at a cheap blind-protected endpoint (`POST /v1/checkstate` with the BAT's own `Y`): a
//! 200 means valid, and burnt at the mint, atomically. That only proves anything while the mint
//! really protects that endpoint, so [`MintClient::check_blind_auth`] reads `/v1/info` first.
//!
//! What a process relies on at the mint ([`MintNeeds`], in [`needs`]) is checked at the first
//! `/v1/info` that answers (`crate::health::watch`), not at start: an unreachable mint is an
//! outage the process waits out, a mint that answers without it a configuration error.

use std::str::FromStr;
use std::time::Duration;

use cdk::mint_url::MintUrl;
use cdk::nuts::{BlindAuthToken, MintInfo};
use cdk::wallet::{HttpClient, MintConnector};
use cdk_common::bitcoin::hashes::{sha256, Hash};

pub mod needs;

pub use needs::{MintCapabilities, MintLacks, MintNeeds};

/// How long one call to the mint may take.
const MINT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a BAT's spend may take by default. Longer than other calls: the wait holds no
/// database connection, and a spend given up on burns the trader's BAT (the mint may have
/// spent it), so a slow mint is better waited for than guessed about.
pub const BAT_SPEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for the platform's mint, shared by the process.
#[derive(Debug, Clone)]
pub struct MintClient {
    url: String,
    http: HttpClient,
    spend_timeout: Duration,
}

/// Why the mint cannot verify BATs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlindAuthSetupError {
    /// `/v1/info` did not answer.
    #[error("the mint at {0} did not answer GET /v1/info")]
    Unreachable(String),
    /// The mint does not list `POST /v1/checkstate` as blind-protected, so a "successful" spend
    /// would prove nothing: any string would pass.
    #[error(
        "the mint at {0} does not blind-protect POST /v1/checkstate (NUT-22), so BATs cannot be \
         verified; enable blind auth on that endpoint at the mint"
    )]
    CheckstateUnprotected(String),
}

/// Why a BAT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatError {
    /// Not an `authA…` token.
    #[error("not a blind auth token")]
    Malformed,
    /// The mint says it was spent before.
    #[error("this blind auth token was already used")]
    AlreadySpent,
    /// The mint refused it (not signed by the mint, wrong keyset, …).
    #[error("the mint did not accept this blind auth token")]
    Invalid,
    /// The mint did not answer, or answered with a server error: it may or may not have
    /// spent the BAT.
    #[error("the mint is unavailable")]
    Unavailable,
}

/// A parsed BAT: the stable hash the platform stores, and the token to forward.
#[derive(Clone)]
pub struct ParsedBat {
    /// SHA-256 of the BAT's `Y` (the hash of its secret on the curve): the same for every
    /// encoding of the same BAT, and all the platform ever stores.
    pub hash: [u8; 32],
    y_hex: String,
    forward: String,
}

impl std::fmt::Debug for ParsedBat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParsedBat([REDACTED])")
    }
}

impl ParsedBat {
    /// Parses `authA…`.
    pub fn parse(token: &str) -> Result<Self, BatError> {
        let bat = BlindAuthToken::from_str(token.trim()).map_err(|_| BatError::Malformed)?;
        let y = bat.auth_proof.y().map_err(|_| BatError::Malformed)?;
        Ok(Self {
            hash: sha256::Hash::hash(&y.to_bytes()).to_byte_array(),
            y_hex: y.to_hex(),
            // Never forward the DLEQ: it links redemption to issuance.
            forward: bat.without_dleq().to_string(),
        })
    }
}

impl MintClient {
    /// A client for `url`.
    pub fn new(url: &str) -> Result<Self, cdk::mint_url::Error> {
        let mint_url: MintUrl = url.parse()?;
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            http: HttpClient::new(mint_url, None),
            spend_timeout: BAT_SPEND_TIMEOUT,
        })
    }

    /// The same client giving up on a BAT's spend after `timeout` (tests of a slow mint).
    pub fn with_spend_timeout(mut self, timeout: Duration) -> Self {
        self.spend_timeout = timeout;
        self
    }

    /// The mint's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The mint's `GET /v1/info`, or `None` when it did not answer within `timeout`.
    pub async fn info(&self, timeout: Duration) -> Option<MintInfo> {
        match tokio::time::timeout(timeout, self.http.get_mint_info()).await {
            Ok(Ok(info)) => Some(info),
            _ => None,
        }
    }

    /// Checks that the mint blind-protects `POST /v1/checkstate`.
    pub async fn check_blind_auth(&self) -> Result<(), BlindAuthSetupError> {
        let info = self
            .info(MINT_TIMEOUT)
            .await
            .ok_or_else(|| BlindAuthSetupError::Unreachable(self.url.clone()))?;
        if needs::checkstate_protected(&info) {
            Ok(())
        } else {
            Err(BlindAuthSetupError::CheckstateUnprotected(self.url.clone()))
        }
    }

    /// Spends `bat` at the mint. Ok means the mint signed it and it was unspent until now.
    pub async fn spend_bat(&self, bat: &ParsedBat) -> Result<(), BatError> {
        let body = serde_json::json!({ "Ys": [bat.y_hex] });
        // A connection of its own: cdk's client sends one client's requests over one
        // connection, one at a time, so spends sharing a client would queue behind each
        // other's answers (and a spend given up on would leave its answer to the next).
        // Sessions open about once an hour per trader; a connection each costs little.
        let call = cdk::http_client::HttpClient::new()
            .post(&format!("{}/v1/checkstate", self.url))
            .header("Blind-auth", &bat.forward)
            .json(&body)
            .send();
        let resp = match tokio::time::timeout(self.spend_timeout, call).await {
            Ok(Ok(resp)) => resp,
            _ => return Err(BatError::Unavailable),
        };
        if resp.is_success() {
            return Ok(());
        }
        if resp.is_server_error() {
            return Err(BatError::Unavailable);
        }
        let code = serde_json::from_str::<serde_json::Value>(&resp.body_lossy())
            .ok()
            .and_then(|v| v["code"].as_u64());
        match code {
            Some(11001) => Err(BatError::AlreadySpent),
            _ => Err(BatError::Invalid),
        }
    }
}
