//! A worker process killed (abort) in the middle of a refund: the token was made by the wallet
//! but never stored. After a restart the refund completes exactly once and the books balance.

use std::process::{Command, Stdio};
use std::time::Duration;

use openpleb_common::db::ledger::{self, LedgerKind};
use openpleb_common::db::offers;
use openpleb_common::domain::money::Outcome;
use openpleb_common::domain::offer::OfferStatus;
use openpleb_common::trade::settle::settle;
use openpleb_common::wallet::{WalletId, WalletManager, WalletManagerConfig};
use openpleb_devkit::{fixtures, test_config, wallet_manager, DevMint, DevMintOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

fn worker(db_url: &str, mint: &str, wallets: &std::path::Path, abort: bool) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openpleb-worker"));
    openpleb_devkit::worker_env(&mut cmd, db_url, mint, wallets)
        .env("DATABASE_POOL_SIZE", "10")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if abort {
        cmd.env("OPENPLEB_TEST_ABORT_AFTER_SEND", "1");
    }
    cmd.spawn().expect("spawn openpleb-worker")
}

async fn payout_state(pool: &PgPool, offer: Uuid) -> (String, Option<String>, Option<String>) {
    sqlx::query_as("select state, send_operation_id, token from payouts where offer_id = $1")
        .bind(offer)
        .fetch_one(pool)
        .await
        .expect("payout")
}

#[sqlx::test(migrations = false)]
async fn an_aborted_refund_completes_once_after_restart(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .connect_with(conn.clone())
        .await
        .expect("pool");
    openpleb_common::db::migrate(&pool).await.expect("migrate");
    let master = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let db_url = format!(
        "{}/{}",
        master
            .rsplit_once('/')
            .map(|(base, _)| base)
            .unwrap_or(&master),
        conn.get_database().expect("database name")
    );
    let mint = DevMint::start_with(DevMintOptions {
        payment_delay_secs: 3600,
        ..DevMintOptions::default()
    })
    .await
    .expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let config = test_config(&db_url, &mint.url);

    // A cancelled, funded offer: the maker's wallet holds the deposit, a refund is recorded.
    let maker_sk = cdk::nuts::SecretKey::generate();
    let maker_key = maker_sk.public_key().x_only_public_key().to_string();
    let mut tx = pool.begin().await.expect("tx");
    let session = fixtures::insert_session(&mut tx).await.expect("session");
    let offer = fixtures::insert_offer(&mut tx, session, 5_000, &maker_key)
        .await
        .expect("offer");
    tx.commit().await.expect("commit");
    let deposit = offer.amounts().deposit().expect("deposit");

    let settings = openpleb_devkit::test_wallets_config(dir.path());
    let wallets = WalletManager::new(
        WalletManagerConfig::from_config(&settings, &config),
        pool.clone(),
    )
    .expect("wallets");
    let maker_wallet = WalletId::session(session);
    fixtures::fund_wallet(&wallets, &mint, &maker_wallet, deposit)
        .await
        .expect("funded");
    wallets.close_all().await;

    let mut tx = pool.begin().await.expect("tx");
    ledger::record(&mut tx, offer.id, LedgerKind::Deposit, deposit, "funding")
        .await
        .expect("ledger");
    let cancelled = offers::transition(
        &mut tx,
        offer.id,
        OfferStatus::Created,
        OfferStatus::Cancelled,
        None,
        offers::Deadline::Any,
    )
    .await
    .expect("cancel")
    .expect("moved");
    let ctx = openpleb_common::trade::TradeCtx::from_config(
        pool.clone(),
        wallets.clone(),
        std::sync::Arc::new(config.clone()),
    );
    settle(&ctx, &mut tx, &cancelled, Outcome::RefundMaker, false)
        .await
        .expect("settle");
    tx.commit().await.expect("commit");

    // 1. The worker sends the refund and dies before storing the token.
    let mut first = worker(&db_url, &mint.url, dir.path(), true);
    let status = tokio::task::spawn_blocking(move || first.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(!status.success(), "the worker aborted");
    let (state, op, token) = payout_state(&pool, offer.id).await;
    assert_eq!(state, "RECORDED");
    assert!(op.is_some(), "the send was recorded before it happened");
    assert!(token.is_none());

    // 2. A new worker picks the orphaned job up and finishes the refund from the wallet's record.
    let mut second = worker(&db_url, &mint.url, dir.path(), false);
    let mut released = None;
    for _ in 0..180 {
        let (state, _, token) = payout_state(&pool, offer.id).await;
        if state == "RELEASED" {
            released = token;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = second.kill();
    let _ = second.wait();
    let token = released.expect("the refund was released after the restart");
    // The killed worker's wallet leases would lapse in 30 s; the test does not wait for that.
    sqlx::query("delete from wallet_leases")
        .execute(&pool)
        .await
        .expect("leases");

    // Exactly once: the maker redeems the deposit, and the wallet paid it only once.
    let redeem_dir = tempfile::tempdir().expect("dir");
    let redeem = wallet_manager(pool.clone(), &mint.url, redeem_dir.path(), 4);
    let got = redeem
        .receive(&WalletId::session(Uuid::new_v4()), &token, vec![maker_sk])
        .await
        .expect("redeem");
    assert_eq!(got, deposit);
    let settings = openpleb_devkit::test_wallets_config(dir.path());
    let wallets = WalletManager::new(
        WalletManagerConfig::from_config(&settings, &config),
        pool.clone(),
    )
    .expect("wallets");
    let left = wallets.balance(&maker_wallet).await.expect("balance");
    assert_eq!(left.unspent, 0, "nothing sent twice, nothing left behind");
    wallets.close_all().await;
    assert!(
        ledger::audit(&pool).await.expect("audit").is_empty(),
        "the books balance"
    );
    assert_eq!(ledger::settled_count(&pool).await.expect("count"), 1);
}
