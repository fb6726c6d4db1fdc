//! What cdk does not give us about the mint: a cheap reachability check (more in later work:
//! the blind-auth checks and BAT spending of DESIGN.md section 2).

use std::time::Duration;

use cdk::mint_url::MintUrl;
use cdk::wallet::{HttpClient, MintConnector};

/// A client for the platform's mint, shared by the process.
#[derive(Debug, Clone)]
pub struct MintClient {
    url: String,
    http: HttpClient,
}

impl MintClient {
    /// A client for `url`.
    pub fn new(url: &str) -> Result<Self, cdk::mint_url::Error> {
        let mint_url: MintUrl = url.parse()?;
        Ok(Self {
            url: url.to_owned(),
            http: HttpClient::new(mint_url, None),
        })
    }

    /// The mint's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the mint answers `GET /v1/info` within `timeout`.
    pub async fn is_reachable(&self, timeout: Duration) -> bool {
        matches!(
            tokio::time::timeout(timeout, self.http.get_mint_info()).await,
            Ok(Ok(_))
        )
    }
}
