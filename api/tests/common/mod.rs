//! The trade test bed: the api (both listeners), a worker, a mint with NUT-21/22 auth and its
//! OIDC issuer, all real, in this process; traders that register, log in, mint BATs and open
//! sessions through the public API.

#![allow(dead_code)]

pub mod dispute;
pub mod reputation;
mod steps;

// Each test file uses its own part of the steps.
#[allow(unused_imports)]
pub use steps::{balanced, offer_with_invoice};

use std::sync::Arc;
use std::time::Duration;

use openpleb_api::{admin_app, public_app, AppState};
use openpleb_common::config::WalletsConfig;
use openpleb_common::mint::MintClient;
use openpleb_common::wallet::WalletManager;
pub use openpleb_devkit::scenario::in_process::Client;
use openpleb_devkit::scenario::in_process::InProcess;
use openpleb_devkit::stack::AuthStack;
use openpleb_devkit::{test_config, test_wallets_config, test_worker_wallets, wallet_manager_with};
use openpleb_worker::{run, WorkerContext};
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::test::{TestClient, TestResponse};

// Each test file uses its own part of the scenario builders.
#[allow(unused_imports)]
pub use openpleb_devkit::scenario::{
    Amounts, Auth, Party as Session, Reply, Trade, Transport, Upload, PNG,
};
use poem::{EndpointExt, Server};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

pub const ADMIN: &str = "Bearer test-admin-token-0123456789";
pub const OIDC_TOKEN: &str = "test-oidc-token-0123456789";

pub struct Harness {
    pub public: Client,
    pub admin: Client,
    pub pool: PgPool,
    pub stack: AuthStack,
    pub worker_wallets: WalletManager,
    pub trader_wallets: WalletManager,
    second_wallets: WalletManager,
    worker_config: Arc<openpleb_common::config::Config>,
    /// The workers' wallet settings (volumes, master secret): the api has none.
    pub wallet_settings: WalletsConfig,
    manual: bool,
    stop_worker: Option<oneshot::Sender<()>>,
    worker: Option<tokio::task::JoinHandle<()>>,
    _dirs: Vec<tempfile::TempDir>,
}

pub async fn body(resp: TestResponse) -> Value {
    let text = resp.0.into_body().into_string().await.expect("body");
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

pub async fn expect_error(resp: TestResponse, status: StatusCode, code: &str) {
    let got = resp.0.status();
    let v = body(resp).await;
    assert_eq!(got, status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
}

#[allow(unused_imports)]
pub use openpleb_devkit::scenario::payout_key;

impl InProcess for Harness {
    fn public_client(&self) -> &Client {
        &self.public
    }
    fn admin_client(&self) -> &Client {
        &self.admin
    }
    fn auth_stack(&self) -> Option<&AuthStack> {
        Some(&self.stack)
    }
}

impl Harness {
    /// Starts everything on the per-test database (`#[sqlx::test(migrations = false)]` hands
    /// over its connect options; its own pool is too small for an api and a worker).
    pub async fn start(test_pool: PgPoolOptions, conn: PgConnectOptions) -> Self {
        let stack = AuthStack::start(OIDC_TOKEN).await.expect("auth stack");
        Self::start_on(stack, test_pool, conn, |_| {}, |_| {}).await
    }

    /// Manual payments and a configuration adjusted by `adjust` (e.g. short timers).
    pub async fn start_configured(
        test_pool: PgPoolOptions,
        conn: PgConnectOptions,
        adjust: impl FnOnce(&mut openpleb_common::config::Config),
    ) -> Self {
        let stack = AuthStack::start_manual_payments(OIDC_TOKEN)
            .await
            .expect("auth stack");
        Self::start_on(stack, test_pool, conn, adjust, |_| {}).await
    }

    /// Manual payments at a mint whose quotes expire after `quote_ttl_secs` (a test can see a
    /// quote's whole life), with a configuration adjusted by `adjust`.
    pub async fn start_with_quote_ttl(
        test_pool: PgPoolOptions,
        conn: PgConnectOptions,
        quote_ttl_secs: u64,
        adjust: impl FnOnce(&mut openpleb_common::config::Config),
    ) -> Self {
        let stack = AuthStack::start_manual_payments_with_ttl(OIDC_TOKEN, quote_ttl_secs)
            .await
            .expect("auth stack");
        Self::start_on(stack, test_pool, conn, adjust, |_| {}).await
    }

    /// Like [`Harness::start`], but invoices are paid only by [`Harness::pay`].
    pub async fn start_manual(test_pool: PgPoolOptions, conn: PgConnectOptions) -> Self {
        let stack = AuthStack::start_manual_payments(OIDC_TOKEN)
            .await
            .expect("auth stack");
        Self::start_on(stack, test_pool, conn, |_| {}, |_| {}).await
    }

    /// Like [`Harness::start_manual`], at a mint charging `input_fee_ppk` per input proof.
    pub async fn start_manual_with_fees(
        test_pool: PgPoolOptions,
        conn: PgConnectOptions,
        input_fee_ppk: u64,
    ) -> Self {
        let stack = AuthStack::start_manual_payments_with_fees(OIDC_TOKEN, input_fee_ppk)
            .await
            .expect("auth stack");
        Self::start_on(stack, test_pool, conn, |_| {}, |_| {}).await
    }

    /// Pays an invoice (for [`Harness::start_manual`]).
    pub async fn pay(&self, invoice: &str, sats: u64) {
        self.stack
            .mint
            .pay_invoice(invoice, sats)
            .await
            .expect("pay invoice");
    }

    /// Manual payments and the workers' wallet settings adjusted by `adjust` (e.g. archiving).
    pub async fn start_with_wallet_settings(
        test_pool: PgPoolOptions,
        conn: PgConnectOptions,
        adjust: impl FnOnce(&mut WalletsConfig),
    ) -> Self {
        let stack = AuthStack::start_manual_payments(OIDC_TOKEN)
            .await
            .expect("auth stack");
        Self::start_on(stack, test_pool, conn, |_| {}, adjust).await
    }

    async fn start_on(
        mut stack: AuthStack,
        _test_pool: PgPoolOptions,
        conn: PgConnectOptions,
        adjust: impl FnOnce(&mut openpleb_common::config::Config),
        adjust_wallets: impl FnOnce(&mut WalletsConfig),
    ) -> Self {
        // Logs only when asked for (RUST_LOG=...), to keep CI output readable.
        if std::env::var_os("RUST_LOG").is_some() {
            openpleb_common::telemetry::init(openpleb_common::config::LogFormat::Text);
        }
        // The binaries' pool settings (acquire times are reported, so the pool-wait histogram
        // is measured here too), with sqlx's default 30 s acquire timeout: a test queues more
        // work at once on two cores than a deployment's requests do.
        let pool = openpleb_common::db::pool_options(40)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(conn)
            .await
            .expect("pool");
        openpleb_common::db::migrate(&pool).await.expect("migrate");
        let wallets_dir = tempfile::tempdir().expect("dir");
        let trader_dir = tempfile::tempdir().expect("dir");
        let mut config = test_config("postgres://unused", &stack.mint.url);
        // Tests send many anonymous requests from one address.
        config.api.rate_limits.anonymous = 100_000;
        adjust(&mut config);
        // The api gets the configuration alone (public keys, no wallet secret, no volume);
        // the workers get the wallet settings too.
        let mut wallet_settings = test_wallets_config(wallets_dir.path());
        wallet_settings.idle_close = Duration::from_millis(300);
        wallet_settings.cleanup_interval = Duration::from_secs(2);
        adjust_wallets(&mut wallet_settings);
        // The worker is another process on the same machine: same layout, its own leases.
        let worker_wallets = test_worker_wallets(pool.clone(), &config, &wallet_settings);
        let second_wallets = test_worker_wallets(pool.clone(), &config, &wallet_settings);
        // The worker polls and sweeps often so tests run in seconds; the api keeps the
        // configuration as loaded (its alert thresholds derive from the intervals).
        let mut worker_config = config.clone();
        worker_config.worker = openpleb_common::config::WorkerConfig {
            concurrency: 4,
            quote_poll_interval: Duration::from_millis(500),
            queue_poll_interval: Duration::from_millis(200),
            expiry_sweep: Duration::from_secs(2),
            // Reconciliation runs beside every api test: it must never disturb a trade.
            reconcile_interval: Duration::from_secs(3),
            reconcile_batch: 100,
            ..config.worker.clone()
        };
        let worker_config = Arc::new(worker_config);
        let state = AppState::new(
            Arc::new(config),
            pool.clone(),
            MintClient::new(&stack.mint.url).expect("mint"),
        )
        .expect("app state");
        let acceptor = TcpAcceptor::from_tokio(stack.admin_listener.take().expect("listener"))
            .expect("acceptor");
        let admin_ep = admin_app(state.clone());
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(admin_ep).await;
        });
        let public = public_app(state.clone()).map_to_response().boxed();
        let admin = admin_app(state).map_to_response().boxed();

        let long = Duration::from_secs(30);
        let ctx = Arc::new(WorkerContext::from_config(
            pool.clone(),
            worker_wallets.clone(),
            worker_config.clone(),
        ));
        let (tx, rx) = oneshot::channel::<()>();
        let worker = tokio::spawn(async move {
            run(
                ctx,
                &format!("test-{}", Uuid::new_v4().simple()),
                async move {
                    let _ = rx.await;
                },
            )
            .await
            .expect("worker");
        });
        let trader_wallets = wallet_manager_with(
            pool.clone(),
            &stack.mint.url,
            trader_dir.path(),
            64,
            long,
            long,
        );
        let manual = stack.manual_payments;
        Self {
            second_wallets,
            worker_config,
            wallet_settings,
            manual,
            public: TestClient::new(public),
            admin: TestClient::new(admin),
            pool,
            stack,
            worker_wallets,
            trader_wallets,
            stop_worker: Some(tx),
            worker: Some(worker),
            _dirs: vec![wallets_dir, trader_dir],
        }
    }

    /// Starts another worker process' worth of workers (own name, own wallet leases), as on a
    /// second machine; stop it by sending on the returned channel.
    pub fn second_worker(&self) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let ctx = Arc::new(WorkerContext::from_config(
            self.pool.clone(),
            self.second_wallets.clone(),
            self.worker_config.clone(),
        ));
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            run(
                ctx,
                &format!("second-{}", Uuid::new_v4().simple()),
                async move {
                    let _ = rx.await;
                },
            )
            .await
            .expect("second worker");
        });
        (tx, handle)
    }

    pub async fn stop(mut self) {
        self.stop_worker().await;
        self.trader_wallets.close_all().await;
    }

    /// Stops the worker (nothing lapses, releases or reconciles any more).
    pub async fn stop_worker(&mut self) {
        if let Some(tx) = self.stop_worker.take() {
            let _ = tx.send(());
        }
        if let Some(w) = self.worker.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
        }
    }

    /// The trade steps' context, as the worker has it (for driving a step beside a request).
    pub fn trade_ctx(&self) -> openpleb_common::trade::TradeCtx {
        WorkerContext::from_config(
            self.pool.clone(),
            self.worker_wallets.clone(),
            self.worker_config.clone(),
        )
    }
}

/// A configuration read the way the binaries read it, from the test values and `extra`.
pub fn read_config(mint_url: &str, extra: (&str, &str)) -> openpleb_common::config::Config {
    let vars = [
        ("DATABASE_URL", "postgres://unused".to_owned()),
        ("MINT_URL", mint_url.to_owned()),
        ("WALLET_MASTER_SECRET", "42".repeat(32)),
        ("REPUTATION_SECRET", "17".repeat(32)),
        ("DATA_SECRETS", format!("1:{}", "da".repeat(32))),
        ("ADMIN_TOKEN", "test-admin-token-0123456789".to_owned()),
        ("OIDC_API_TOKEN", "test-oidc-token-0123456789".to_owned()),
        ("PRICE_FIXED", "60000".to_owned()),
        (extra.0, extra.1.to_owned()),
    ];
    let lookup = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    openpleb_common::config::Config::from_lookup(lookup).expect("config")
}

/// Sets the timers named in `short` to `d`, every other one to ten minutes.
pub fn short_timers(c: &mut openpleb_common::config::Config, short: &[&str], d: Duration) {
    let t = &mut c.timers;
    for (name, slot) in [
        ("created", &mut t.created),
        ("invoice_paid", &mut t.invoice_paid_default),
        ("invoice_created", &mut t.invoice_created),
        ("taker_bond_paid", &mut t.taker_bond_paid),
        ("receipt_submitted", &mut t.receipt_submitted),
        ("marked_with_issue", &mut t.marked_with_issue),
        ("disputed", &mut t.disputed),
    ] {
        *slot = if short.contains(&name) {
            d
        } else {
            Duration::from_secs(600)
        };
    }
}
