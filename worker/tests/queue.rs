//! The queue path end to end: the api side enqueues inside its transaction, worker processes
//! (two of them, as on two machines) consume from real PostgreSQL and mint at a real mint.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use openpleb_common::config::Config;
use openpleb_common::db::quotes;
use openpleb_common::domain::payout::QuoteState;
use openpleb_common::jobs::{enqueue, queues, Enqueued, WatchMintQuote};
use openpleb_common::wallet::{CreatedQuote, WalletId, WalletManager};
use openpleb_devkit::{wallet_manager, DevMint};
use openpleb_worker::{cron, run, WorkerContext};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

async fn pool(_test_opts: PgPoolOptions, conn: PgConnectOptions) -> PgPool {
    openpleb_devkit::fixtures::test_pool(conn)
        .await
        .expect("pool")
}

/// A quote of 777 sats with its watcher queued, and a worker polling once a minute (with the
/// mint's subscription) to watch it; stop the worker through the sender.
async fn one_quote_watched_slowly(
    pool: &PgPool,
    mint: &DevMint,
    dir: &std::path::Path,
) -> (
    CreatedQuote,
    (oneshot::Sender<()>, tokio::task::JoinHandle<()>),
) {
    let api_wallets = wallet_manager(pool.clone(), &mint.url, dir, 8);
    let wallet = WalletId::session(Uuid::new_v4());
    let quote = watched_quote(pool, &api_wallets, &wallet, 777).await;
    (quote, spawn_worker(slow_polling(pool, mint, dir, true)))
}

/// The state of quote `id` in the platform's books.
async fn state_of(pool: &PgPool, id: &str) -> QuoteState {
    let quote = quotes::get(pool, id).await.expect("get");
    quote.expect("row").state
}

/// Worker settings for these tests: short polls, no mint websocket (empty mint URL; payments
/// are found by polling), periodic jobs rare enough not to interfere.
fn config() -> Config {
    let mut c = openpleb_devkit::test_config("postgres://unused", "http://127.0.0.1:9");
    c.mint.url = String::new();
    let w = &mut c.worker;
    w.concurrency = 2;
    w.quote_poll_interval = Duration::from_secs(1);
    w.queue_poll_interval = Duration::from_millis(300);
    w.expiry_sweep = Duration::from_secs(30);
    w.reconcile_interval = Duration::from_secs(3600);
    w.reconcile_batch = 100;
    c
}

/// Starts a worker "process": its own wallet manager (own lease holder) and its own name.
fn start_worker(
    pool: &PgPool,
    wallets: WalletManager,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    spawn_worker(Arc::new(WorkerContext::from_config(
        pool.clone(),
        wallets,
        Arc::new(config()),
    )))
}

/// Runs the workers of `ctx` under a fresh name until the returned sender fires.
fn spawn_worker(ctx: Arc<WorkerContext>) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = oneshot::channel::<()>();
    let name = format!("test-{}", Uuid::new_v4().simple());
    let handle = tokio::spawn(async move {
        run(ctx, &name, async move {
            let _ = rx.await;
        })
        .await
        .expect("worker run");
    });
    (tx, handle)
}

/// A mint whose invoices are paid only when a test pays them.
async fn mint_paid_by_hand() -> DevMint {
    DevMint::start_with(openpleb_devkit::DevMintOptions {
        payment_delay_secs: 3600,
        ..openpleb_devkit::DevMintOptions::default()
    })
    .await
    .expect("mint")
}

/// A worker context that polls quotes once a minute, so a payment picked up sooner came
/// through the mint's websocket; `subscription` says whether `run` starts the notifier itself.
fn slow_polling(
    pool: &PgPool,
    mint: &DevMint,
    dir: &std::path::Path,
    subscription: bool,
) -> Arc<WorkerContext> {
    let mut c = config();
    c.worker.quote_poll_interval = Duration::from_secs(60);
    c.worker.quote_subscription = subscription;
    c.mint.url = mint.url.clone();
    Arc::new(WorkerContext::from_config(
        pool.clone(),
        wallet_manager(pool.clone(), &mint.url, dir, 8),
        Arc::new(c),
    ))
}

/// The watcher jobs (the workers' minute cron may add sweep jobs while a test runs).
/// Records `quote_id` as `wallet`'s quote for `sats`, payable for ten minutes.
async fn insert_quote(tx: &mut sqlx::PgConnection, quote_id: &str, wallet: &WalletId, sats: u64) {
    quotes::insert(
        tx,
        quote_id,
        wallet.as_str(),
        sats,
        Utc::now() + chrono::Duration::minutes(10),
    )
    .await
    .expect("insert quote");
}

/// A quote for `sats` made at the mint for `wallet`, recorded with its first watcher in one
/// committed transaction; the api's wallet is then let go, so a worker can take it over.
async fn watched_quote(
    pool: &PgPool,
    api_wallets: &WalletManager,
    wallet: &WalletId,
    sats: u64,
) -> CreatedQuote {
    let quote = api_wallets
        .create_mint_quote(wallet, sats)
        .await
        .expect("quote");
    let mut tx = pool.begin().await.expect("tx");
    insert_quote(&mut tx, &quote.quote_id, wallet, sats).await;
    enqueue(&mut tx, &WatchMintQuote::first(&quote.quote_id))
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    api_wallets.close(wallet).await.expect("close");
    quote
}

async fn job_rows(pool: &PgPool) -> Vec<(String, i32, String)> {
    sqlx::query_as(
        "select status, attempts, job_type from apalis.jobs where job_type = $1 order by run_at, id",
    )
    .bind(queues::WATCH_MINT_QUOTE)
    .fetch_all(pool)
    .await
    .expect("jobs")
}

/// 1. a quote row and its watcher are written in one transaction that rolls back: nothing
///    exists and no worker runs anything;
/// 2. the same in a committed transaction, with two workers running: the quote is minted
///    once, into the right wallet, for exactly its amount, and every job ran once.
#[sqlx::test(migrations = false)]
async fn enqueue_follows_the_transaction_and_runs_once(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    if std::env::var_os("RUST_LOG").is_some() {
        openpleb_common::telemetry::init(openpleb_common::config::LogFormat::Text);
    }
    let pool = pool(opts, conn).await;
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let api_wallets = wallet_manager(pool.clone(), &mint.url, dir.path(), 8);
    let wallet = WalletId::session(Uuid::new_v4());

    // Rolled back: neither the quote row nor the job exists.
    let lost = api_wallets
        .create_mint_quote(&wallet, 21)
        .await
        .expect("quote");
    let mut tx = pool.begin().await.expect("tx");
    insert_quote(&mut tx, &lost.quote_id, &wallet, 21).await;
    let job = WatchMintQuote::first(&lost.quote_id);
    let queued = enqueue(&mut tx, &job).await.expect("enqueue");
    assert!(matches!(queued, Enqueued::New(_)));
    tx.rollback().await.expect("rollback");
    assert!(job_rows(&pool).await.is_empty());
    assert!(quotes::get(&pool, &lost.quote_id)
        .await
        .expect("get")
        .is_none());

    // Committed: a real quote for 1000 sats, watched by two workers.
    let quote = api_wallets
        .create_mint_quote(&wallet, 1_000)
        .await
        .expect("quote");
    let mut tx = pool.begin().await.expect("tx");
    insert_quote(&mut tx, &quote.quote_id, &wallet, 1_000).await;
    let job = WatchMintQuote::first(&quote.quote_id);
    enqueue(&mut tx, &job).await.expect("enqueue");
    // The same work enqueued twice in one transaction is one job, and the transaction survives.
    let again = enqueue(&mut tx, &job).await.expect("enqueue again");
    assert_eq!(again, Enqueued::AlreadyQueued);
    tx.commit().await.expect("commit");
    // The api process lets the wallet go; a worker takes it over.
    api_wallets.close(&wallet).await.expect("close");

    let (stop_a, a) = start_worker(
        &pool,
        wallet_manager(pool.clone(), &mint.url, dir.path(), 8),
    );
    let (stop_b, b) = start_worker(
        &pool,
        wallet_manager(pool.clone(), &mint.url, dir.path(), 8),
    );

    let mut issued = None;
    for _ in 0..60 {
        let q = quotes::get(&pool, &quote.quote_id)
            .await
            .expect("get")
            .expect("row");
        if q.state == QuoteState::Issued {
            issued = Some(q);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let issued = issued.unwrap_or_else(|| {
        panic!(
            "quote was not minted within 30 s: {:?}",
            futures_lite_rows(&pool)
        )
    });
    assert_eq!(issued.minted_sats, Some(1_000));

    let _ = stop_a.send(());
    let _ = stop_b.send(());
    a.await.expect("worker a");
    b.await.expect("worker b");

    // Every watcher job ran exactly once and finished.
    let rows = job_rows(&pool).await;
    assert!(!rows.is_empty());
    for (status, attempts, job_type) in &rows {
        assert_eq!(job_type, queues::WATCH_MINT_QUOTE);
        assert_eq!(status, "Done", "{rows:?}");
        assert_eq!(*attempts, 1, "{rows:?}");
    }
    // The wallet holds exactly the deposit: minted once, not twice.
    let balance = api_wallets.balance(&wallet).await.expect("balance");
    assert_eq!(balance.unspent, 1_000);
    api_wallets.close_all().await;
    mint.stop().await.expect("stop mint");
}

/// Two workers ticking in the same slot enqueue one sweep.
#[sqlx::test(migrations = false)]
async fn a_cron_slot_is_enqueued_once_across_workers(opts: PgPoolOptions, conn: PgConnectOptions) {
    let pool = pool(opts, conn).await;
    let dir = tempfile::tempdir().expect("dir");
    let ctx = |pool: &PgPool| {
        WorkerContext::from_config(
            pool.clone(),
            wallet_manager(pool.clone(), "http://127.0.0.1:1", dir.path(), 1),
            Arc::new(config()),
        )
    };
    let (a, b) = (ctx(&pool), ctx(&pool));
    let slot = Utc.timestamp_opt(1_900_000_020, 0).single().expect("slot");
    let (won_a, won_b) = tokio::join!(cron::enqueue_sweep(&a, slot), cron::enqueue_sweep(&b, slot));
    let wins = [won_a.expect("a"), won_b.expect("b")];
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    let jobs: i64 = sqlx::query_scalar("select count(*) from apalis.jobs where job_type = $1")
        .bind(queues::SWEEP_QUOTES)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(jobs, 1);
    // The next slot is a new run.
    let next = slot + chrono::Duration::seconds(60);
    assert!(cron::enqueue_sweep(&a, next).await.expect("next"));
}

fn futures_lite_rows(pool: &PgPool) -> String {
    let pool = pool.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async move {
            let rows: Vec<(String, i32, String, Option<serde_json::Value>)> =
                sqlx::query_as("select status, attempts, job_type, last_result from apalis.jobs")
                    .fetch_all(&pool)
                    .await
                    .expect("jobs");
            format!("{rows:?}")
        })
    })
    .join()
    .expect("thread")
}

/// NUT-17: with polling slowed to a minute, a payment is still picked up within seconds,
/// because the mint's websocket reports the quote paid.
#[sqlx::test(migrations = false)]
async fn the_mint_websocket_wakes_the_watcher(opts: PgPoolOptions, conn: PgConnectOptions) {
    let pool = pool(opts, conn).await;
    let mint = mint_paid_by_hand().await;
    let dir = tempfile::tempdir().expect("dir");
    let (quote, (stop, worker)) = one_quote_watched_slowly(&pool, &mint, dir.path()).await;
    // Let the first (unpaid) look and the subscription happen, then pay.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(state_of(&pool, &quote.quote_id).await, QuoteState::Unpaid);
    mint.pay_invoice(&quote.request, 777).await.expect("pay");
    let mut state = QuoteState::Unpaid;
    for _ in 0..40 {
        state = state_of(&pool, &quote.quote_id).await;
        if state == QuoteState::Issued {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        state,
        QuoteState::Issued,
        "picked up well before the next polling round"
    );
    let _ = stop.send(());
    worker.await.expect("worker");
}

/// NUT-17 is used only when the mint offers it: against a mint whose `/v1/info` does not list
/// subscriptions to bolt11 mint quotes, the worker never opens a websocket, and a payment waits
/// for the next polling round (slowed to a minute here).
#[sqlx::test(migrations = false)]
async fn no_websocket_without_nut17(opts: PgPoolOptions, conn: PgConnectOptions) {
    let pool = pool(opts, conn).await;
    let mint = DevMint::start_with(openpleb_devkit::DevMintOptions {
        payment_delay_secs: 3600,
        without_nuts: vec![17],
        ..openpleb_devkit::DevMintOptions::default()
    })
    .await
    .expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let (quote, (stop, worker)) = one_quote_watched_slowly(&pool, &mint, dir.path()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    mint.pay_invoice(&quote.request, 777).await.expect("pay");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let state = state_of(&pool, &quote.quote_id).await;
    assert_eq!(state, QuoteState::Unpaid, "nothing reported the payment");
    let routes = mint.requests.snapshot().routes;
    assert!(!routes.contains_key("GET /v1/ws"), "{routes:?}");
    let _ = stop.send(());
    worker.await.expect("worker");
}

/// NUT-17 across connections: with room for two single-quote subscriptions per websocket,
/// five quotes need three connections, and a payment of a quote on a full, older connection is
/// still reported (polling slowed to a minute, so only the websocket can have picked it up).
#[sqlx::test(migrations = false)]
async fn full_websockets_keep_reporting_their_quotes(opts: PgPoolOptions, conn: PgConnectOptions) {
    use openpleb_worker::quote_notifier::{run_with, Limits};
    let pool = pool(opts, conn).await;
    let mint = mint_paid_by_hand().await;
    let dir = tempfile::tempdir().expect("dir");
    let api_wallets = wallet_manager(pool.clone(), &mint.url, dir.path(), 8);
    let mut made = Vec::new();
    for _ in 0..5 {
        let wallet = WalletId::session(Uuid::new_v4());
        made.push(watched_quote(&pool, &api_wallets, &wallet, 321).await);
    }

    let ctx = slow_polling(&pool, &mint, dir.path(), false);
    let notifier = tokio::spawn(run_with(
        ctx.clone(),
        Limits {
            subscriptions_per_connection: 2,
            filters_per_subscription: 1,
        },
    ));
    let (stop, worker) = spawn_worker(ctx);
    tokio::time::sleep(Duration::from_secs(4)).await;
    for quote in &made {
        mint.pay_invoice(&quote.request, 321).await.expect("pay");
    }
    let mut issued = 0;
    for _ in 0..40 {
        issued = 0;
        for quote in &made {
            let row = quotes::get(&pool, &quote.quote_id)
                .await
                .expect("get")
                .expect("row");
            issued += usize::from(row.state == QuoteState::Issued);
        }
        if issued == made.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        issued,
        made.len(),
        "every quote, on whichever connection, picked up before the next polling round"
    );
    notifier.abort();
    let _ = stop.send(());
    worker.await.expect("worker");
}
