//! A real cdk mint in this process: fake Lightning backend, HTTP through cdk-axum.
//!
//! Tests start one on a free port; `openpleb-devmint` (used by `scripts/dev`) starts one on a
//! fixed port with a file database so tokens survive a restart. The fake backend pays every
//! incoming invoice after `payment_delay_secs`, which is what makes deposit flows testable
//! without a Lightning node. Every request it answers is counted ([`crate::mint_requests`]), so
//! tests and the bench can say what the backend asked of it.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use cdk::mint::{MintBuilder, MintMeltLimits};
use cdk::nuts::nut17::SupportedMethods;
use cdk::nuts::{CurrencyUnit, Nuts, PaymentMethod};
use cdk::nuts::{Method, ProtectedEndpoint, RoutePath};
use cdk::types::{FeeReserve, QuoteTTL};
use cdk::Mint;
use cdk_fake_wallet::FakeWallet;
use openpleb_common::wallet::store::{MintSqlxAuthDatabase, MintSqlxDatabase, SqlxSqliteConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::mint_requests::{count, serve_counts, Counting, MintRequests};

/// NUT-21/22 settings of a [`DevMint`].
#[derive(Debug, Clone)]
pub struct MintAuthOptions {
    /// The OIDC discovery document the mint verifies clear auth tokens against.
    pub openid_discovery: String,
    /// The client id expected in the tokens' `azp`.
    pub client_id: String,
    /// Endpoints that need a blind auth token (BAT).
    pub blind_protected: Vec<ProtectedEndpoint>,
    /// Most BATs one request may mint.
    pub bat_max_mint: u64,
}

impl MintAuthOptions {
    /// What OpenPleb needs: `POST /v1/checkstate` blind-protected (the backend verifies a
    /// trader's BAT by spending it there), minting BATs behind clear auth.
    pub fn openpleb(openid_discovery: String, client_id: &str) -> Self {
        Self {
            openid_discovery,
            client_id: client_id.to_owned(),
            blind_protected: vec![ProtectedEndpoint::new(Method::Post, RoutePath::Checkstate)],
            bat_max_mint: 50,
        }
    }
}

/// How to start a [`DevMint`].
#[derive(Debug, Clone)]
pub struct DevMintOptions {
    /// Address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// SQLite file for the mint's data; `None` keeps it in memory.
    pub db_path: Option<PathBuf>,
    /// Seed of the mint's keys; fixed so keysets stay stable across restarts.
    pub seed: [u8; 32],
    /// Seconds the fake Lightning backend waits before it "pays" an invoice.
    pub payment_delay_secs: u64,
    /// Lifetime of mint and melt quotes, seconds.
    pub quote_ttl_secs: u64,
    /// NUT-21/22 auth; `None` leaves every endpoint open.
    pub auth: Option<MintAuthOptions>,
    /// Input fee of the sat keyset, parts per thousand sats per proof (NUT-02); 0 for none.
    pub input_fee_ppk: u64,
    /// NUTs its `/v1/info` leaves out (7, 9, 11, 12, 17 or 20): a mint that does not offer
    /// what OpenPleb relies on, for tests of the start-up check. Only the advertisement goes:
    /// cdk still serves and enforces them (a NUT-20 lock is still checked).
    pub without_nuts: Vec<u8>,
}

impl Default for DevMintOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_path: None,
            seed: [7u8; 32],
            payment_delay_secs: 1,
            quote_ttl_secs: 3600,
            auth: None,
            input_fee_ppk: 0,
            without_nuts: Vec::new(),
        }
    }
}

/// A running mint; stops when [`DevMint::stop`] is called or it is dropped.
#[derive(Debug)]
pub struct DevMint {
    /// The base URL wallets use (`http://127.0.0.1:<port>`).
    pub url: String,
    /// The mint itself, for tests that need to look inside.
    pub mint: Arc<Mint>,
    /// What it was asked (by route, and per mint quote); also at `GET /dev/requests`.
    pub requests: MintRequests,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl DevMint {
    /// Starts a mint with default options on a free loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(DevMintOptions::default()).await
    }

    /// Starts a mint.
    pub async fn start_with(opts: DevMintOptions) -> anyhow::Result<Self> {
        let config = match &opts.db_path {
            Some(path) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).context("mint db directory")?;
                }
                SqlxSqliteConfig::file_with_pool(path, 4)
            }
            None => SqlxSqliteConfig::memory(),
        };
        let db = Arc::new(MintSqlxDatabase::new(config).await.context("mint db")?);

        let backend = FakeWallet::new(
            FeeReserve {
                min_fee_reserve: 1.into(),
                percent_fee_reserve: 0.02,
            },
            HashMap::new(),
            HashSet::new(),
            opts.payment_delay_secs,
            CurrencyUnit::Sat,
        );
        let mut builder = MintBuilder::new(db.clone());
        builder
            .add_payment_processor(
                CurrencyUnit::Sat,
                PaymentMethod::BOLT11,
                MintMeltLimits::new(1, 100_000_000),
                Arc::new(backend),
            )
            .await
            .context("payment processor")?;
        builder
            .set_unit_fee(&CurrencyUnit::Sat, opts.input_fee_ppk)
            .context("input fee")?;
        let mut builder = builder;
        if let Some(auth) = &opts.auth {
            let auth_db = Arc::new(
                MintSqlxAuthDatabase::new(SqlxSqliteConfig::memory())
                    .await
                    .context("mint auth db")?,
            );
            builder = builder
                .with_auth(
                    auth_db,
                    auth.openid_discovery.clone(),
                    auth.client_id.clone(),
                    vec![ProtectedEndpoint::new(
                        Method::Post,
                        RoutePath::MintBlindAuth,
                    )],
                )
                .with_blind_auth(auth.bat_max_mint, auth.blind_protected.clone());
        }
        let builder = builder
            .with_name("openpleb dev mint".to_owned())
            .with_description("in-process cdk mint with a fake Lightning backend".to_owned())
            // cdk serves `/v1/ws` whatever its info says; say so, as a production mint would.
            .with_supported_websockets(SupportedMethods::default_bolt11(CurrencyUnit::Sat));
        let mut nuts = builder.current_mint_info().nuts;
        leave_out(&mut nuts, &opts.without_nuts)?;
        let mint = builder
            .build_with_seed(db.clone(), &opts.seed)
            .await
            .context("build mint")?;
        // A file database keeps the info of its first start, which wins over the builder's:
        // write what these options say.
        let mut info = mint.mint_info().await.context("mint info")?;
        if info.nuts != nuts {
            info.nuts = nuts;
            mint.set_mint_info(info).await.context("set mint info")?;
        }
        mint.set_quote_ttl(QuoteTTL::new(opts.quote_ttl_secs, opts.quote_ttl_secs))
            .await
            .context("quote ttl")?;
        mint.start().await.context("start mint")?;
        let mint = Arc::new(mint);

        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("bind mint on {}", opts.listen))?;
        let addr = listener.local_addr()?;
        let requests = MintRequests::default();
        let counting = Counting {
            requests: requests.clone(),
            ws_url: format!("ws://{addr}/v1/ws"),
            secret: uuid::Uuid::new_v4().simple().to_string(),
        };
        let router = cdk_axum::create_mint_router(mint.clone(), vec!["bolt11".to_owned()])
            .await
            .context("mint router")?
            .route(
                "/dev/requests",
                axum::routing::get(serve_counts).with_state(counting.clone()),
            )
            .layer(axum::middleware::from_fn(run_to_completion))
            .layer(axum::middleware::from_fn_with_state(counting, count));
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "dev mint server stopped");
            }
        });
        tracing::info!(url = %format!("http://{addr}"), "dev mint listening");
        Ok(Self {
            url: format!("http://{addr}"),
            mint,
            requests,
            shutdown: Some(tx),
            server: Some(server),
        })
    }

    /// Marks the invoice of a mint quote paid, as the Lightning backend would on payment. For
    /// mints started with a long `payment_delay_secs`, where nothing is paid on its own.
    pub async fn pay_invoice(&self, bolt11: &str, sats: u64) -> anyhow::Result<()> {
        pay_invoice_at(&self.mint, bolt11, sats).await
    }

    /// Stops serving and stops the mint's background tasks.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.mint.stop().await.context("stop mint")?;
        Ok(())
    }
}

impl Drop for DevMint {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Takes `nuts` out of the advertised `info`.
fn leave_out(info: &mut Nuts, nuts: &[u8]) -> anyhow::Result<()> {
    for nut in nuts {
        match nut {
            7 => info.nut07.supported = false,
            9 => info.nut09.supported = false,
            11 => info.nut11.supported = false,
            12 => info.nut12.supported = false,
            17 => info.nut17.supported.clear(),
            20 => info.nut20.supported = false,
            other => anyhow::bail!("the dev mint cannot leave out NUT-{other}"),
        }
    }
    Ok(())
}

/// Marks the invoice `bolt11` of a mint quote at `mint` paid with `sats`, as the Lightning
/// backend would on payment.
pub async fn pay_invoice_at(mint: &Mint, bolt11: &str, sats: u64) -> anyhow::Result<()> {
    use std::str::FromStr;

    use cdk::cdk_payment::{PaymentIdentifier, WaitPaymentResponse};
    use cdk::Bolt11Invoice;
    let invoice = Bolt11Invoice::from_str(bolt11).context("bolt11")?;
    let hash: [u8; 32] = *invoice.payment_hash().as_ref();
    mint.pay_mint_quote_for_request_id(WaitPaymentResponse {
        payment_identifier: PaymentIdentifier::PaymentHash(hash),
        payment_amount: cdk::Amount::new(sats, CurrencyUnit::Sat),
        payment_id: invoice.payment_hash().to_string(),
    })
    .await
    .context("pay quote")?;
    Ok(())
}

/// Runs each request in a task of its own, so a client that hangs up (a test cutting a wallet
/// operation short) does not also cut the mint's handling of it in half: hyper drops a handler
/// whose connection closed, and a swap dropped halfway stays pending at the mint until it is
/// restarted. The mint's work then finishes, or not, as one piece, as the wallet must assume.
async fn run_to_completion(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::spawn(next.run(req)).await {
        Ok(response) => response,
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// What a binary says as it exits when the mint at `url` lacks NUT-20 (the tests of the api's
/// and the worker's start look for it).
pub fn lacks_nut20(url: &str) -> String {
    format!(
        "the mint at {url} does not support NUT-20 (signed mint quotes), which OpenPleb relies on"
    )
}
