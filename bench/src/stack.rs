//! The whole backend on this machine, as `scripts/dev` runs it but in one process: a database
//! of its own on `DATABASE_URL`'s server, the dev mint with NUT-21/22 auth and its OIDC issuer,
//! the api (public listener on a real socket for load generators, admin listener for the
//! issuer) and a worker. Traders get sessions the way a client does: invite, registration,
//! login at the issuer, BATs minted at the mint, `POST /sessions`.
//!
//! Invoices are paid only on command ([`Stack::pay`]), so a benchmark knows the instant the
//! mint considers one paid.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use openpleb_api::{admin_app, public_app, AppState};
use openpleb_common::config::Config;
use openpleb_common::mint::MintClient;
use openpleb_common::wallet::{WalletManager, WalletManagerConfig};
use openpleb_devkit::scenario::in_process::{Client, InProcess};
use openpleb_devkit::scenario::{party, Trade};
use openpleb_devkit::stack::AuthStack;
use openpleb_devkit::test_config;
use openpleb_worker::WorkerContext;
use poem::listener::TcpAcceptor;
use poem::test::TestClient;
use poem::{EndpointExt, Server};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

const OIDC_TOKEN: &str = "test-oidc-token-0123456789";

/// A database of its own on `DATABASE_URL`'s server; [`Database::drop_now`] removes it.
#[derive(Debug)]
pub struct Database {
    /// Its URL.
    pub url: String,
    /// A pool on it, migrated.
    pub pool: PgPool,
    admin: PgPool,
    name: String,
}

impl Database {
    /// Creates and migrates `openpleb_bench_<random>`.
    pub async fn create(max_connections: u32) -> anyhow::Result<Self> {
        let master = std::env::var("DATABASE_URL").context("DATABASE_URL")?;
        let server = master
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or(master.clone());
        let name = format!("openpleb_bench_{}", Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&master).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&admin)
            .await?;
        let url = format!("{server}/{name}");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&url)
            .await?;
        openpleb_common::db::migrate(&pool).await?;
        Ok(Self {
            url,
            pool,
            admin,
            name,
        })
    }

    /// Closes the pool and drops the database.
    pub async fn drop_now(self) -> anyhow::Result<()> {
        self.pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database {} with (force)",
            self.name
        )))
        .execute(&self.admin)
        .await?;
        Ok(())
    }
}

/// A trader's open session: its key and the BAT that is its bearer credential.
pub use openpleb_devkit::scenario::Party as Session;

/// The running backend.
pub struct Stack {
    /// In-process client of the public app (every middleware, no socket).
    pub public: Client,
    admin: Client,
    /// The public listener's address (for load generators).
    pub public_addr: SocketAddr,
    /// A second api on the same database with the book cache off (`BOOK_CACHE_MS=0`): the
    /// "before" of the book figures.
    pub uncached_addr: SocketAddr,
    /// The database.
    pub db: Database,
    /// Mint and issuer.
    pub auth: AuthStack,
    worker_config: Config,
    worker: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    /// The workers' wallet settings (the api has none).
    wallet_settings: openpleb_common::config::WalletsConfig,
    _dirs: Vec<tempfile::TempDir>,
}

/// Payloads of a created offer.
#[derive(Debug, Clone)]
pub struct CreatedOffer {
    /// The offer.
    pub id: Uuid,
    /// Its deposit invoice.
    pub invoice: String,
    /// Sats to pay.
    pub deposit: u64,
}

impl InProcess for Stack {
    fn public_client(&self) -> &Client {
        &self.public
    }
    fn admin_client(&self) -> &Client {
        &self.admin
    }
    fn auth_stack(&self) -> Option<&AuthStack> {
        Some(&self.auth)
    }
}

impl Stack {
    /// Starts everything; `adjust` changes the configuration both api and worker use.
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let auth = AuthStack::start_manual_payments(OIDC_TOKEN).await?;
        Self::start_on(auth, adjust).await
    }

    /// Like [`Stack::start`], at a mint whose quotes expire after `quote_ttl_secs`.
    pub async fn start_with_quote_ttl(
        quote_ttl_secs: u64,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let auth = AuthStack::start_manual_payments_with_ttl(OIDC_TOKEN, quote_ttl_secs).await?;
        Self::start_on(auth, adjust).await
    }

    async fn start_on(
        mut auth: AuthStack,
        adjust: impl FnOnce(&mut Config),
    ) -> anyhow::Result<Self> {
        let db = Database::create(60).await?;
        let wallets_dir = tempfile::tempdir()?;
        let mut config = test_config(&db.url, &auth.mint.url);
        // One client address sends everything here.
        config.api.rate_limits.anonymous = 100_000_000;
        config.api.rate_limits.authenticated = 100_000_000;
        config.limits.offer_max_open = 100_000;
        adjust(&mut config);
        let config = Arc::new(config);
        let state = AppState::new(
            config.clone(),
            db.pool.clone(),
            MintClient::new(&auth.mint.url)?,
        )?;
        let admin_acceptor =
            TcpAcceptor::from_tokio(auth.admin_listener.take().context("admin listener taken")?)?;
        let admin_ep = admin_app(state.clone());
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(admin_acceptor)
                .run(admin_ep)
                .await;
        });
        let public_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let public_addr = public_listener.local_addr()?;
        let public_ep = public_app(state.clone());
        let acceptor = TcpAcceptor::from_tokio(public_listener)?;
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(public_ep).await;
        });
        let mut uncached_config = (*config).clone();
        uncached_config.api.book_cache = Duration::ZERO;
        let uncached = AppState::new(
            Arc::new(uncached_config),
            db.pool.clone(),
            MintClient::new(&auth.mint.url)?,
        )?;
        let uncached_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let uncached_addr = uncached_listener.local_addr()?;
        let uncached_ep = public_app(uncached);
        let acceptor = TcpAcceptor::from_tokio(uncached_listener)?;
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(uncached_ep).await;
        });
        let mut stack = Self {
            public: TestClient::new(public_app(state.clone()).map_to_response().boxed()),
            admin: TestClient::new(admin_app(state.clone()).map_to_response().boxed()),
            public_addr,
            uncached_addr,
            db,
            auth,
            worker_config: (*config).clone(),
            worker: None,
            wallet_settings: openpleb_devkit::test_wallets_config(wallets_dir.path()),
            _dirs: vec![wallets_dir],
        };
        stack.start_worker(|_| {})?;
        Ok(stack)
    }

    /// Starts the worker (another wallet manager, as another process would have), with its
    /// configuration adjusted by `adjust`.
    pub fn start_worker(&mut self, adjust: impl FnOnce(&mut Config)) -> anyhow::Result<()> {
        let mut config = self.worker_config.clone();
        adjust(&mut config);
        let wallets = WalletManager::new(
            WalletManagerConfig::from_config(&self.wallet_settings, &config),
            self.db.pool.clone(),
        )?;
        wallets.spawn_maintenance();
        let ctx = Arc::new(WorkerContext::from_config(
            self.db.pool.clone(),
            wallets,
            Arc::new(config),
        ));
        let (tx, rx) = oneshot::channel::<()>();
        let name = format!("bench-{}", Uuid::new_v4().simple());
        let handle = tokio::spawn(async move {
            let stop = async move {
                let _ = rx.await;
            };
            if let Err(e) = openpleb_worker::run(ctx, &name, stop).await {
                eprintln!("worker stopped: {e}");
            }
        });
        self.worker = Some((tx, handle));
        Ok(())
    }

    /// Stops the worker.
    pub async fn stop_worker(&mut self) {
        if let Some((tx, handle)) = self.worker.take() {
            let _ = tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
        }
    }

    /// Stops everything and drops the database.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.stop_worker().await;
        self.auth.mint.stop().await?;
        self.db.drop_now().await
    }

    /// A fiat provider for offers.
    pub async fn provider(&self) -> anyhow::Result<Uuid> {
        party::provider(self).await
    }

    /// `n` sessions of one registered trader (one login, `n` BATs).
    pub async fn sessions(&self, n: usize) -> anyhow::Result<Vec<Session>> {
        party::sessions(self, n).await
    }

    /// `POST /offers` as `maker`.
    pub async fn create_offer(
        &self,
        maker: &Session,
        provider: Uuid,
    ) -> anyhow::Result<CreatedOffer> {
        let described = "Bank transfer within the hour, SEPA instant preferred.";
        let plan = Trade::new(self).maker(maker).provider(provider);
        let trade = plan.field("description", json!(described)).await?;
        let (invoice, deposit) = trade.deposit()?;
        Ok(CreatedOffer {
            id: trade.id,
            invoice,
            deposit,
        })
    }

    /// Pays an invoice at the mint (its fake Lightning backend).
    pub async fn pay(&self, invoice: &str, sats: u64) -> anyhow::Result<()> {
        self.auth.mint.pay_invoice(invoice, sats).await
    }
}

/// A fresh payout key (x-only hex).
pub fn payout_key() -> String {
    openpleb_devkit::scenario::payout_key().1
}
