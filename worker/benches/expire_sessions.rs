//! Benchmark (not a test): expiring N sessions that each hold a small balance.
//!
//! Every session has a cancelled offer (so its sats have a payout key to go back to) and a few
//! sats minted into its own wallet file. The measured part is what the worker does once they
//! expire: the cleanup finds the idle sats and records a sweep payout per session, the release
//! job sends each one as a P2PK-locked token, and the next cleanup deletes the emptied wallet
//! files. Prints sessions per second and the process' peak resident memory (VmHWM, which
//! includes the in-process test mint).
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1/postgres SQLX_OFFLINE=true \
//!  cargo bench -p openpleb-worker --bench expire_sessions --profile dev -- 10000`

use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::Data;
use futures::stream::{self, StreamExt};
use openpleb_common::db::offers;
use openpleb_common::domain::offer::OfferStatus;
use openpleb_common::jobs::ReleasePayouts;
use openpleb_common::wallet::{WalletId, WalletManager, WalletManagerConfig};
use openpleb_devkit::{fixtures, test_config, DevMint, DevMintOptions};
use openpleb_worker::jobs::{cleanup_wallets, release_payouts};
use openpleb_worker::{WorkerContext, WorkerSettings};
use uuid::Uuid;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let master = std::env::var("DATABASE_URL")?;
    let server = master
        .rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or(master.clone());
    let db = format!("openpleb_bench_{}", Uuid::new_v4().simple());
    let admin = sqlx::PgPool::connect(&master).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {db}")))
        .execute(&admin)
        .await?;
    let db_url = format!("{server}/{db}");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(&db_url)
        .await?;
    openpleb_common::db::migrate(&pool).await?;

    let mint = DevMint::start_with(DevMintOptions {
        payment_delay_secs: 3600,
        ..DevMintOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let mut config = test_config(&db_url, &mint.url, dir.path());
    config.wallet_idle_close = Duration::from_secs(1);
    let wallets = WalletManager::new(WalletManagerConfig::from_config(&config), pool.clone())?;
    wallets.spawn_maintenance();
    let ctx = Arc::new(WorkerContext {
        pool: pool.clone(),
        wallets: wallets.clone(),
        settings: WorkerSettings::from_config(&config),
    });

    // Set-up (not measured): sessions, cancelled offers, a few sats in every wallet.
    let setup = Instant::now();
    let mut sessions = Vec::with_capacity(n);
    for _ in 0..n {
        let mut tx = pool.begin().await?;
        let session = fixtures::insert_session(&mut tx).await?;
        let key = cdk::nuts::SecretKey::generate()
            .public_key()
            .x_only_public_key()
            .to_string();
        let offer = fixtures::insert_offer(&mut tx, session, 1_000, &key).await?;
        offers::transition(
            &mut tx,
            offer.id,
            OfferStatus::Created,
            OfferStatus::Cancelled,
            None,
        )
        .await?;
        tx.commit().await?;
        sessions.push(session);
    }
    let funded = stream::iter(sessions.iter().copied())
        .map(|s| {
            let wallets = wallets.clone();
            let mint = &mint;
            async move { fixtures::fund_wallet(&wallets, mint, &WalletId::session(s), 21).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    funded.into_iter().collect::<Result<Vec<_>, _>>()?;
    wallets.close_all().await;
    let setup_secs = setup.elapsed().as_secs_f64();
    sqlx::query("update sessions set created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'")
        .execute(&pool).await?;
    let rss_before = peak_rss_kib();

    // Measured: sweep, release, delete.
    let start = Instant::now();
    let mut deleted = 0usize;
    let mut rounds = 0;
    while deleted < n && rounds < 20 {
        rounds += 1;
        let results = cleanup_wallets::run(&ctx, 100_000)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        deleted += results
            .iter()
            .filter(|r| **r == cleanup_wallets::Cleaned::Deleted)
            .count();
        let offers: Vec<Uuid> =
            sqlx::query_scalar("select distinct offer_id from payouts where state = 'RECORDED'")
                .fetch_all(&pool)
                .await?;
        let released =
            stream::iter(offers)
                .map(|offer_id| {
                    let ctx = ctx.clone();
                    async move {
                        release_payouts::handle(ReleasePayouts { offer_id }, Data::new(ctx)).await
                    }
                })
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await;
        for r in released {
            r.map_err(|e| anyhow::anyhow!(e))?;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let swept: i64 = sqlx::query_scalar(
        "select count(*) from payouts where purpose = 'sweep' and state = 'RELEASED'",
    )
    .fetch_one(&pool)
    .await?;
    println!("sessions expired:      {n}");
    println!("wallets deleted:       {deleted}");
    println!("sweep payouts released: {swept}");
    println!("set-up:                {setup_secs:.1} s (not measured)");
    println!(
        "expiry:                {secs:.1} s, {:.1} sessions/s",
        n as f64 / secs
    );
    println!(
        "peak RSS:              {} MiB (after set-up {} MiB; includes the in-process mint)",
        peak_rss_kib() / 1024,
        rss_before / 1024
    );
    mint.stop().await?;
    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "drop database {db} with (force)"
    )))
    .execute(&admin)
    .await?;
    Ok(())
}
