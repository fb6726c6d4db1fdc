//! The identity test bed: the backend's admin listener on a real socket, the dev OIDC issuer
//! that asks it about pubkeys, and a mint with NUT-21/22 auth that trusts the issuer. Traders
//! walk the real chain: register, log in at the issuer, mint BATs at the mint.

use std::sync::Arc;

use anyhow::Context;
use cdk::nuts::{BlindAuthToken, CurrencyUnit};
use cdk::wallet::WalletBuilder;
use cdk::Amount;
use openpleb_common::wallet::store::{SqlxSqliteConfig, WalletSqlxDatabase};
use serde_json::{json, Value};

use crate::oidc::{login_digest, DevOidc, DevOidcOptions, DEV_CLIENT_ID};
use crate::{DevMint, DevMintOptions, MintAuthOptions, Trader};

/// The dev/test service account secret at the dev issuer.
pub const DEV_SERVICE_SECRET: &str = "openpleb-dev-service-secret";

/// A mint with auth, its issuer, and where the backend's admin API will listen.
#[derive(Debug)]
pub struct AuthStack {
    /// The mint (NUT-21 login at the issuer, NUT-22 on `POST /v1/checkstate`).
    pub mint: DevMint,
    /// The issuer.
    pub oidc: DevOidc,
    /// Bound (not yet serving) listener for the backend's admin API; the issuer calls it.
    pub admin_listener: Option<tokio::net::TcpListener>,
    /// `http://127.0.0.1:<port>` of that listener.
    pub admin_url: String,
    /// Invoices are paid only on command ([`DevMint::pay_invoice`]).
    pub manual_payments: bool,
}

impl AuthStack {
    /// Starts issuer and mint; `oidc_api_token` is the backend's `OIDC_API_TOKEN`.
    pub async fn start(oidc_api_token: &str) -> anyhow::Result<Self> {
        Self::start_with(oidc_api_token, |auth| auth).await
    }

    /// Like [`AuthStack::start`] with the mint's auth settings adjusted by `adjust`.
    pub async fn start_with(
        oidc_api_token: &str,
        adjust: impl FnOnce(MintAuthOptions) -> MintAuthOptions,
    ) -> anyhow::Result<Self> {
        Self::start_full(oidc_api_token, adjust, 1, 0).await
    }

    /// Like [`AuthStack::start`], but no invoice is paid by itself: tests pay them with
    /// [`DevMint::pay_invoice`].
    pub async fn start_manual_payments(oidc_api_token: &str) -> anyhow::Result<Self> {
        Self::start_full(oidc_api_token, |a| a, 3600, 0).await
    }

    /// Like [`AuthStack::start_manual_payments`], at a mint that charges `input_fee_ppk`
    /// (parts per thousand sats per input proof, NUT-02) on every swap.
    pub async fn start_manual_payments_with_fees(
        oidc_api_token: &str,
        input_fee_ppk: u64,
    ) -> anyhow::Result<Self> {
        Self::start_full(oidc_api_token, |a| a, 3600, input_fee_ppk).await
    }

    /// Like [`AuthStack::start_manual_payments`], at a mint whose quotes expire after
    /// `quote_ttl_secs` (a test or the bench can then see a quote's whole life).
    pub async fn start_manual_payments_with_ttl(
        oidc_api_token: &str,
        quote_ttl_secs: u64,
    ) -> anyhow::Result<Self> {
        Self::start_mint(
            oidc_api_token,
            |a| a,
            |m| {
                m.payment_delay_secs = 3600;
                m.quote_ttl_secs = quote_ttl_secs;
            },
        )
        .await
    }

    async fn start_full(
        oidc_api_token: &str,
        adjust: impl FnOnce(MintAuthOptions) -> MintAuthOptions,
        payment_delay_secs: u64,
        input_fee_ppk: u64,
    ) -> anyhow::Result<Self> {
        Self::start_mint(oidc_api_token, adjust, |m| {
            m.payment_delay_secs = payment_delay_secs;
            m.input_fee_ppk = input_fee_ppk;
        })
        .await
    }

    async fn start_mint(
        oidc_api_token: &str,
        adjust: impl FnOnce(MintAuthOptions) -> MintAuthOptions,
        mint_options: impl FnOnce(&mut DevMintOptions),
    ) -> anyhow::Result<Self> {
        let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let admin_url = format!("http://{}", admin_listener.local_addr()?);
        let oidc = DevOidc::start(DevOidcOptions {
            listen: ([127, 0, 0, 1], 0).into(),
            backend_admin_url: format!("{admin_url}/api/v1"),
            backend_token: oidc_api_token.to_owned(),
            service_secret: DEV_SERVICE_SECRET.to_owned(),
        })
        .await?;
        let auth = adjust(MintAuthOptions::openpleb(
            oidc.discovery_url.clone(),
            DEV_CLIENT_ID,
        ));
        // A seed of its own: two stacks must not share keys, or one mint's BATs verify at
        // the other.
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        let mut options = DevMintOptions {
            auth: Some(auth),
            seed,
            ..DevMintOptions::default()
        };
        mint_options(&mut options);
        let manual_payments = options.payment_delay_secs > 60;
        let mint = DevMint::start_with(options).await?;
        Ok(Self {
            mint,
            oidc,
            admin_listener: Some(admin_listener),
            admin_url,
            manual_payments,
        })
    }

    /// Logs `trader` in at the issuer; the access token (a CAT) on success, else the status.
    pub async fn login(&self, trader: &Trader) -> Result<String, u16> {
        let ts = chrono::Utc::now().timestamp_millis();
        let body = json!({
            "grant_type": "openpleb_pubkey",
            "pubkey": trader.pubkey(),
            "timestamp": ts,
            "signature": trader.sign_digest(login_digest(&trader.pubkey(), ts)),
        });
        let resp = cdk::http_client::HttpClient::new()
            .post(&format!("{}/token", self.oidc.issuer))
            .json(&body)
            .send()
            .await
            .map_err(|_| 0u16)?;
        if !resp.is_success() {
            return Err(resp.status());
        }
        let v: Value = serde_json::from_str(&resp.body_lossy()).map_err(|_| 0u16)?;
        v["access_token"].as_str().map(str::to_owned).ok_or(0)
    }

    /// Mints `n` BATs with a clear auth token, as a trader's wallet would, and hands them out
    /// as `authA…` strings (without DLEQ).
    pub async fn mint_bats(&self, cat: &str, n: u64) -> anyhow::Result<Vec<String>> {
        mint_bats(&self.mint.url, cat, n).await
    }
}

/// Mints `n` BATs at `mint_url` with the clear auth token `cat`.
pub async fn mint_bats(mint_url: &str, cat: &str, n: u64) -> anyhow::Result<Vec<String>> {
    let db = Arc::new(WalletSqlxDatabase::new(SqlxSqliteConfig::memory()).await?);
    let mut seed = [0u8; 64];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..32].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let wallet = WalletBuilder::new()
        .mint_url(mint_url.parse().context("mint url")?)
        .unit(CurrencyUnit::Sat)
        .localstore(db)
        .seed(seed)
        .without_rate_limiting()
        .set_auth_cat(cat.to_owned())?
        .build()?;
    wallet.fetch_mint_info().await?;
    wallet.mint_blind_auth(Amount::from(n)).await?;
    Ok(wallet
        .get_unspent_auth_proofs()
        .await?
        .into_iter()
        .map(|p| BlindAuthToken::new(p).without_dleq().to_string())
        .collect())
}
