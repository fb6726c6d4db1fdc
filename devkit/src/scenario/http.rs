//! The transport of a stack over real HTTP (`scripts/dev`, a chaos run): one attempt per
//! request, as [`crate::client`] sends it; BATs from the stack's issuer and mint, payments at
//! the dev mint's payment switch when there is one.

use async_trait::async_trait;
use cdk::nuts::SecretKey;
use serde_json::json;

use super::transport::{Auth, Body, Call, Reply, Transport};
use crate::client::{self, Endpoints};
use crate::Trader;

/// A running stack reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpStack {
    /// Where it listens.
    pub env: Endpoints,
    /// The dev mint's payment switch (`POST /pay`), where invoices are paid only on command.
    pub pay_url: Option<String>,
}

#[async_trait]
impl Transport for HttpStack {
    async fn send(&self, call: Call) -> anyhow::Result<Reply> {
        let base = if call.is_admin() {
            &self.env.admin
        } else {
            &self.env.api
        };
        let url = format!("{base}{}", call.path);
        let bearer = match &call.auth {
            Auth::Anonymous => None,
            Auth::Bearer(token) => Some(token.as_str()),
            Auth::Admin => Some(self.env.admin_token.as_str()),
        };
        let method = call.method.as_str();
        // The dev client sends no headers of a caller's choosing.
        anyhow::ensure!(call.headers.is_empty(), "{method} {url}: extra headers");
        let sent = match &call.body {
            Body::Empty => client::exchange(method, &url, bearer, None).await,
            Body::Json(v) => client::exchange(method, &url, bearer, Some(v)).await,
            Body::Upload(file) => client::post_upload(&url, bearer, file).await,
        };
        sent.map_err(|e| anyhow::anyhow!("{method} {url}: {e}"))
    }

    async fn bats(&self, trader: &Trader, n: u64) -> anyhow::Result<Vec<String>> {
        let mut bats = Vec::new();
        for _ in 0..n {
            bats.push(client::fresh_bat(&self.env, trader).await?);
        }
        Ok(bats)
    }

    async fn pay_invoice(&self, invoice: &str, _sats: u64) -> anyhow::Result<()> {
        if let Some(url) = &self.pay_url {
            client::call("POST", url, None, Some(&json!({ "bolt11": invoice }))).await?;
        }
        Ok(())
    }

    async fn redeem(&self, tokens: &[String], key: &SecretKey) -> anyhow::Result<u64> {
        client::redeem(&self.env.mint, tokens, key).await
    }
}
