//! The trade test bed: the api (both listeners), a worker, a mint with NUT-21/22 auth and its
//! OIDC issuer, all real, in this process; traders that register, log in, mint BATs and open
//! sessions through the public API.

#![allow(dead_code)]

pub mod dispute;
pub mod reputation;

use std::sync::Arc;
use std::time::Duration;

use openpleb_api::{admin_app, public_app, AppState};
use openpleb_common::config::WalletsConfig;
use openpleb_common::mint::MintClient;
use openpleb_common::wallet::{WalletId, WalletManager};
use openpleb_devkit::scenario::in_process::{Client, InProcess};
use openpleb_devkit::scenario::trade::{claim, released_payouts, wait_status};
use openpleb_devkit::scenario::{party, wait};
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
use serde_json::{json, Value};
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

    pub async fn alerts(&self) -> Value {
        let reply = self
            .get("/admin/alerts", Auth::Admin)
            .await
            .expect("alerts");
        reply.expect(200).expect("alerts")
    }

    pub async fn provider(&self) -> Uuid {
        party::provider(self).await.expect("provider")
    }

    /// `maker` cancels `id`; the offer as the answer shows it (CANCELLED).
    pub async fn cancel(&self, id: Uuid, maker: &Session) -> Value {
        let reply = self
            .post_empty(&format!("/offers/{id}/cancel"), maker)
            .await;
        let v = reply.expect("cancel").expect(200).expect("cancelled");
        assert_eq!(v["status"], "CANCELLED", "{v}");
        v
    }

    /// Session `id` ran past its expiry (an hour ago, opened two hours ago).
    pub async fn expire_session(&self, id: Uuid) {
        sqlx::query(
            "update sessions set created_at = now() - interval '2 hours',
                    expires_at = now() - interval '1 hour' where id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .expect("expire session");
    }

    /// The lock path of offer `id`'s deposit quote (none: a quote the wallet made itself).
    pub async fn lock_path(&self, id: Uuid) -> Option<String> {
        sqlx::query_scalar("select lock_path from wallet_quotes where offer_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("quote")
    }

    /// The id of offer `id`'s deposit quote at the mint.
    pub async fn deposit_quote(&self, id: Uuid) -> String {
        sqlx::query_scalar("select deposit_quote_id from offers where id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("quote")
    }

    /// The sats `sql` sums for offer `id` (its `$1`).
    pub async fn sum_for(&self, sql: &'static str, id: Uuid) -> i64 {
        let sum = sqlx::query_scalar(sql).bind(id).fetch_one(&self.pool).await;
        sum.expect("sum")
    }

    /// The number `sql` (a `select count(*) ...`) gives.
    pub async fn count(&self, sql: &'static str) -> i64 {
        let n = sqlx::query_scalar(sql).fetch_one(&self.pool).await;
        n.expect("count")
    }

    /// A fresh fiat provider and `N` fresh parties: who a test's trades are between.
    pub async fn cast<const N: usize>(&self) -> (Uuid, [Session; N]) {
        let provider = self.provider().await;
        let mut parties = Vec::with_capacity(N);
        for _ in 0..N {
            parties.push(self.session().await);
        }
        let parties = parties.try_into().unwrap_or_else(|_| unreachable!());
        (provider, parties)
    }

    /// Registers a trader, logs in, mints a BAT and opens a session.
    pub async fn session(&self) -> Session {
        party::party(self).await.expect("session")
    }

    /// Creates an offer for `fiat` minor units; returns (offer id, deposit sats, maker key).
    pub async fn offer(
        &self,
        maker: &Session,
        provider: Uuid,
        fiat: i64,
    ) -> (Uuid, u64, cdk::nuts::SecretKey) {
        let trade = Trade::new(self).maker(maker).provider(provider).fiat(fiat);
        let trade = trade
            .field("description", json!("test"))
            .await
            .expect("offer");
        let (invoice, deposit) = trade.deposit().expect("deposit");
        assert!(invoice.starts_with("lnbc"), "{invoice}");
        (trade.id, deposit, trade.maker_key)
    }

    pub async fn get_offer(&self, id: Uuid, who: Option<&Session>) -> TestResponse {
        let mut req = self.public.get(format!("/api/v1/offers/{id}"));
        if let Some(s) = who {
            req = req.header("Authorization", s.bearer());
        }
        req.send().await
    }

    /// Waits until the offer (seen by `who`) has `status`.
    pub async fn wait_status(&self, id: Uuid, who: &Session, status: &str) -> Value {
        wait_status(self, id, who, status).await.expect("status")
    }

    /// Funds offer `id` with `token` as `maker`: the api answers 202 with the intent, a worker
    /// receives it; returns the intent once it ended (FUNDED, REFUNDED or ABANDONED).
    pub async fn fund_with_token(&self, id: Uuid, maker: &Session, token: &str) -> Value {
        let path = format!("/offers/{id}/fund");
        let reply = self.post(&path, maker, json!({ "token": token })).await;
        let intent = reply.expect("fund").expect(202).expect("accepted");
        assert_eq!(intent["state"], "OPEN", "{intent}");
        let intent_id = intent["id"].as_str().expect("intent id").to_owned();
        self.wait_intent(id, maker, &intent_id).await
    }

    /// Waits until funding intent `intent_id` of offer `id` ended; returns it.
    pub async fn wait_intent(&self, id: Uuid, maker: &Session, intent_id: &str) -> Value {
        let path = format!("/offers/{id}/fund/{intent_id}");
        wait::poll(&format!("funding intent {intent_id} ended"), || async {
            let v = self.get(&path, maker).await?.expect(200)?;
            Ok((v["state"] != "OPEN").then_some(v))
        })
        .await
        .expect("intent")
    }

    /// Waits until every payout `who` has for the offer is released; returns the tokens.
    pub async fn released_payouts(&self, id: Uuid, who: &Session) -> Vec<Value> {
        released_payouts(self, id, who).await.expect("released")
    }

    /// Waits until the payouts locked to `key` are released, fetching them by key proof (no
    /// session needed); returns them.
    pub async fn payouts_by_key(&self, id: Uuid, key: &cdk::nuts::SecretKey) -> Vec<Value> {
        let pubkey = key.public_key().x_only_public_key().to_string();
        for _ in 0..120 {
            let ts = chrono::Utc::now().timestamp_millis();
            let msg = format!("openpleb-payouts:{id}:{ts}");
            let sig = key.sign(msg.as_bytes()).expect("sign").to_string();
            let resp = self
                .public
                .post(format!("/api/v1/offers/{id}/payouts/by-key"))
                .body_json(&json!({"payoutPubkey": pubkey, "timestamp": ts, "signature": sig}))
                .send()
                .await;
            let v = body(resp).await;
            let list = v.as_array().cloned().unwrap_or_default();
            if !list.is_empty() && list.iter().all(|p| p["state"] == "RELEASED") {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("payouts of {id} for the key were not released");
    }

    /// Redeems tokens into a fresh wallet of the trader's with `key`; returns the sats.
    pub async fn redeem(&self, payouts: &[Value], key: &cdk::nuts::SecretKey) -> u64 {
        let wallet = WalletId::session(Uuid::new_v4());
        let mut total = 0;
        for p in payouts {
            let token = p["token"].as_str().expect("token");
            total += self
                .trader_wallets
                .receive(&wallet, token, vec![key.clone()])
                .await
                .expect("redeem");
        }
        total
    }

    /// A plain token worth `sats` from the test mint, paid for through the fake Lightning
    /// backend by a trader's own wallet.
    pub async fn cash(&self, sats: u64) -> String {
        use openpleb_common::wallet::MintOutcome;
        let wallet = WalletId::session(Uuid::new_v4());
        let quote = self
            .trader_wallets
            .create_mint_quote(&wallet, sats)
            .await
            .expect("quote");
        if self.manual {
            self.pay(&quote.request, sats).await;
        }
        for _ in 0..60 {
            if let MintOutcome::Issued(_) = self
                .trader_wallets
                .mint_quote(&wallet, &quote.quote_id)
                .await
                .expect("mint")
            {
                return self
                    .trader_wallets
                    .send(&wallet, sats, None)
                    .await
                    .expect("send")
                    .token;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("the trader's quote was never paid");
    }

    /// Takes a listed offer through a whole trade: `taker` claims and pays the bond, uploads a
    /// receipt, `maker` confirms. Returns the taker's payout secret key.
    pub async fn trade_to_completion(
        &self,
        id: Uuid,
        maker: &Session,
        taker: &Session,
    ) -> cdk::nuts::SecretKey {
        let taker_sk = self.claim(id, taker).await;
        self.wait_status(id, taker, "TAKER_BOND_PAID").await;
        self.upload_receipt(id, taker).await.assert_status_is_ok();
        let done = self
            .post_empty(&format!("/offers/{id}/complete"), maker)
            .await;
        done.expect("complete").expect(200).expect("completed");
        taker_sk
    }

    /// Claims `id` as `taker`; returns the taker's payout secret key. With manual payments the
    /// bond is paid too.
    pub async fn claim(&self, id: Uuid, taker: &Session) -> cdk::nuts::SecretKey {
        let (v, sk) = claim(self, id, taker).await.expect("claim");
        let invoice = v["bond"]["invoice"].as_str().expect("invoice");
        let sats = v["bond"]["amountSats"].as_u64().expect("sats");
        self.pay_invoice(invoice, sats).await.expect("bond paid");
        sk
    }

    /// Claims `id` as `taker` without paying the bond; the taker's payout key and the claim.
    pub async fn claim_unpaid(&self, id: Uuid, taker: &Session) -> (cdk::nuts::SecretKey, Value) {
        let (v, sk) = claim(self, id, taker).await.expect("claim");
        (sk, v)
    }

    /// Uploads the test PNG as `taker`.
    pub async fn upload_receipt(&self, id: Uuid, taker: &Session) -> TestResponse {
        let form = poem::test::TestForm::new().field(
            poem::test::TestFormField::bytes(PNG.to_vec())
                .name("image")
                .filename("receipt.png")
                .content_type("image/png"),
        );
        self.public
            .post(format!("/api/v1/offers/{id}/receipt"))
            .header("Authorization", taker.bearer())
            .multipart(form)
            .send()
            .await
    }

    /// Creates an offer as `maker` and funds it (paying the deposit invoice when payments are
    /// manual); waits for INVOICE_PAID. Returns the id and the maker's payout key.
    pub async fn funded_offer(
        &self,
        maker: &Session,
        provider: Uuid,
    ) -> (Uuid, cdk::nuts::SecretKey) {
        let trade = Trade::new(self).maker(maker).provider(provider).funded();
        let trade = trade.await.expect("funded offer");
        (trade.id, trade.maker_key)
    }

    /// The trade steps' context, as the worker has it (for driving a step beside a request).
    pub fn trade_ctx(&self) -> openpleb_common::trade::TradeCtx {
        WorkerContext::from_config(
            self.pool.clone(),
            self.worker_wallets.clone(),
            self.worker_config.clone(),
        )
    }

    pub async fn audit(&self) -> Value {
        let reply = self.get("/admin/audit", Auth::Admin).await.expect("audit");
        reply.expect(200).expect("audit")
    }
}

/// An offer created by `maker`, its deposit not paid; returns (id, deposit invoice, deposit sats, maker key).
pub async fn offer_with_invoice(
    h: &Harness,
    maker: &Session,
    provider: Uuid,
) -> (Uuid, String, u64, cdk::nuts::SecretKey) {
    let plan = Trade::new(h).maker(maker).provider(provider).fiat(1_000);
    let trade = plan
        .field("paymentDetails", json!("IBAN"))
        .await
        .expect("offer");
    let (invoice, sats) = trade.deposit().expect("deposit");
    (trade.id, invoice, sats, trade.maker_key)
}

/// A configuration read the way the binaries read it, from the test values and `extra`.
pub fn read_config(mint_url: &str, extra: (&str, &str)) -> openpleb_common::config::Config {
    let vars = [
        ("DATABASE_URL", "postgres://unused".to_owned()),
        ("MINT_URL", mint_url.to_owned()),
        ("WALLET_MASTER_SECRET", "42".repeat(32)),
        ("REPUTATION_SECRET", "17".repeat(32)),
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

/// Waits until the audit has checked `settled` offers and finds them balanced.
pub async fn balanced(h: &Harness, settled: i64) {
    let mut audit = Value::Null;
    for _ in 0..40 {
        audit = h.audit().await;
        if audit["offersChecked"] == settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(audit["offersChecked"], settled, "{audit}");
    assert_eq!(audit["balanced"], true, "{audit}");
}
