//! Blind auth tokens for the backend's own wallets.
//!
//! Mints often blind-protect swap, restore, quotes or checkstate (cdk-mintd protects mint,
//! swap, restore and websockets by default). The session wallets then need BATs like any other
//! client. One [`ServiceAuth`] per process holds cdk's `AuthWallet` (BATs in a private
//! in-memory store) and is shared by every session wallet; it logs in with the platform's
//! service OIDC account (client-credentials grant) and mints a batch of BATs whenever the supply
//! runs low. BATs hold no value and are per-process, so losing them on restart costs nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdk::mint_url::MintUrl;
use cdk::nuts::{AuthToken, CurrencyUnit};
use cdk::wallet::{AuthWallet, HttpClient, MintConnector, WalletBuilder};
use cdk::Amount;
use tokio::sync::Mutex;

use super::store::{SqlxSqliteConfig, WalletSqlxDatabase};

/// The service OIDC account.
#[derive(Clone)]
pub struct ServiceAccount {
    /// The issuer's token endpoint.
    pub token_url: String,
    /// Client id (must be the one the mint expects).
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Errors obtaining service BATs.
#[derive(Debug, thiserror::Error)]
pub enum ServiceAuthError {
    /// The issuer refused or could not be reached.
    #[error("service login failed: {0}")]
    Login(String),
    /// The mint refused.
    #[error(transparent)]
    Cdk(#[from] cdk::Error),
    /// The in-memory store failed.
    #[error(transparent)]
    Store(#[from] cdk_common::database::Error),
}

/// Keep at least this many BATs; mint this many at a time.
const LOW_WATER: u64 = 10;
const BATCH: u64 = 25;
/// Log in again after this long (tokens from typical issuers live 5-60 minutes).
const TOKEN_REFRESH: Duration = Duration::from_secs(240);

/// A process' supply of BATs for its own wallets.
#[derive(Clone)]
pub struct ServiceAuth {
    account: ServiceAccount,
    mint_url: MintUrl,
    auth_wallet: AuthWallet,
    supply: Arc<Mutex<Supply>>,
}

/// What [`ServiceAuth::ensure_supply`] has done so far.
#[derive(Debug, Default)]
struct Supply {
    /// The mint's protected endpoints are known (read from its `/v1/info`).
    endpoints: bool,
    /// When the service account last logged in.
    logged_in: Option<Instant>,
}

impl std::fmt::Debug for ServiceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAuth")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl ServiceAuth {
    /// The service account of `mint`, logged in to it; `None` when none is configured.
    pub async fn from_config(
        mint: &crate::config::MintConfig,
    ) -> Result<Option<Self>, ServiceAuthError> {
        let Some(svc) = &mint.service_oidc else {
            return Ok(None);
        };
        let account = ServiceAccount {
            token_url: svc.token_url.clone(),
            client_id: svc.client_id.clone(),
            client_secret: svc.client_secret.expose().to_owned(),
        };
        Ok(Some(Self::new(&mint.url, account).await?))
    }

    /// Sets up the auth wallet for `mint_url`. Nothing is asked of the mint yet, so a process
    /// starts while the mint is down: its protected endpoints are read on the first
    /// [`ServiceAuth::ensure_supply`].
    pub async fn new(mint_url: &str, account: ServiceAccount) -> Result<Self, ServiceAuthError> {
        let url: MintUrl = mint_url
            .parse()
            .map_err(|e: cdk::mint_url::Error| ServiceAuthError::Login(e.to_string()))?;
        let db = Arc::new(WalletSqlxDatabase::new(SqlxSqliteConfig::memory()).await?);
        // A throwaway wallet lends its metadata cache: cdk does not let us build one directly.
        let scratch = WalletBuilder::new()
            .mint_url(url.clone())
            .unit(CurrencyUnit::Sat)
            .localstore(db.clone())
            .seed([0u8; 64])
            .without_rate_limiting()
            .build()?;
        let auth_wallet = AuthWallet::new(
            url.clone(),
            None,
            db,
            scratch.metadata_cache.clone(),
            HashMap::new(),
            None,
        );
        Ok(Self {
            account,
            mint_url: url,
            auth_wallet,
            supply: Arc::default(),
        })
    }

    /// The auth wallet to hand to every session wallet's builder.
    pub fn auth_wallet(&self) -> AuthWallet {
        self.auth_wallet.clone()
    }

    /// BATs on hand.
    pub async fn balance(&self) -> Result<u64, ServiceAuthError> {
        Ok(self.auth_wallet.total_blind_auth_balance().await?.into())
    }

    /// Makes sure at least a few BATs are on hand, logging in and minting a batch if not.
    /// The first call reads which endpoints the mint protects: every session wallet's client
    /// asks the auth wallet for a token by that table.
    pub async fn ensure_supply(&self) -> Result<(), ServiceAuthError> {
        let mut supply = self.supply.lock().await;
        if !supply.endpoints {
            let info = HttpClient::new(self.mint_url.clone(), None)
                .get_mint_info()
                .await?;
            *self.auth_wallet.protected_endpoints.write().await = info.protected_endpoints();
            supply.endpoints = true;
        }
        if self.balance().await? >= LOW_WATER {
            return Ok(());
        }
        if supply.logged_in.is_none_or(|t| t.elapsed() > TOKEN_REFRESH) {
            let cat = self.login().await?;
            self.auth_wallet
                .set_auth_token(AuthToken::ClearAuth(cat))
                .await?;
            supply.logged_in = Some(Instant::now());
        }
        self.auth_wallet
            .mint_blind_auth(Amount::from(BATCH))
            .await?;
        tracing::info!(minted = BATCH, "minted service BATs");
        Ok(())
    }

    async fn login(&self) -> Result<String, ServiceAuthError> {
        let body = serde_json::json!({
            "grant_type": "client_credentials",
            "client_id": self.account.client_id,
            "client_secret": self.account.client_secret,
        });
        let resp = cdk::http_client::HttpClient::new()
            .post(&self.account.token_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| ServiceAuthError::Login(e.to_string()))?;
        if !resp.is_success() {
            return Err(ServiceAuthError::Login(format!(
                "issuer answered {}",
                resp.status()
            )));
        }
        let v: serde_json::Value = serde_json::from_str(&resp.body_lossy())
            .map_err(|e| ServiceAuthError::Login(e.to_string()))?;
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ServiceAuthError::Login("no access_token in the answer".to_owned()))
    }
}
