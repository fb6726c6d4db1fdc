//! Set-up the benchmarks share: a fresh database, the in-process mint, a worker context, and N
//! sessions that each hold a few sats in their own wallet file (behind a cancelled offer, so
//! the sats have a payout key to go back to). Only what a benchmark measures is timed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use openpleb_common::wallet::{WalletId, WalletManager, WalletManagerConfig};
use openpleb_devkit::{fixtures, test_config, DevMint, DevMintOptions};
use openpleb_worker::WorkerContext;
use uuid::Uuid;

/// Prints the peak resident memory, and what it was after the set-up (`rss_before`, KiB).
pub fn print_peak_rss(rss_before: u64) {
    println!(
        "peak RSS:              {} MiB (after set-up {} MiB; includes the in-process mint)",
        peak_rss_kib() / 1024,
        rss_before / 1024
    );
}

/// Peak resident memory of this process so far (VmHWM), KiB.
pub fn peak_rss_kib() -> u64 {
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

/// The first non-flag argument as N, else `default`.
pub fn count_arg(default: usize) -> anyhow::Result<usize> {
    Ok(std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(default))
}

/// A benchmark's world; [`Bench::finish`] drops its database.
pub struct Bench {
    pub pool: sqlx::PgPool,
    pub mint: DevMint,
    pub ctx: Arc<WorkerContext>,
    /// Seconds the set-up took (not measured).
    pub setup_secs: f64,
    admin: sqlx::PgPool,
    db: String,
    _dir: tempfile::TempDir,
}

impl Bench {
    /// A database of its own on `DATABASE_URL`'s server and `n` funded sessions.
    pub async fn start(n: usize, sats_each: u64) -> anyhow::Result<Self> {
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
        let config = test_config(&db_url, &mint.url);
        let mut settings = openpleb_devkit::test_wallets_config(dir.path());
        settings.idle_close = Duration::from_secs(1);
        let wallets = WalletManager::new(
            WalletManagerConfig::from_config(&settings, &config),
            pool.clone(),
        )?;
        wallets.spawn_maintenance();
        let ctx = Arc::new(WorkerContext::from_config(
            pool.clone(),
            wallets.clone(),
            Arc::new(config),
        ));

        let setup = Instant::now();
        let mut sessions = Vec::with_capacity(n);
        for _ in 0..n {
            let mut tx = pool.begin().await?;
            let session = fixtures::insert_session(&mut tx).await?;
            let key = cdk::nuts::SecretKey::generate()
                .public_key()
                .x_only_public_key()
                .to_string();
            fixtures::cancelled_offer(&mut tx, session, 1_000, &key).await?;
            tx.commit().await?;
            sessions.push(session);
        }
        let funded = stream::iter(sessions.iter().copied())
            .map(|s| {
                let wallets = wallets.clone();
                let mint = &mint;
                async move {
                    fixtures::fund_wallet(&wallets, mint, &WalletId::session(s), sats_each).await
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        funded.into_iter().collect::<Result<Vec<_>, _>>()?;
        wallets.close_all().await;
        Ok(Self {
            pool,
            mint,
            ctx,
            setup_secs: setup.elapsed().as_secs_f64(),
            admin,
            db,
            _dir: dir,
        })
    }

    /// Stops the mint and drops the database.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.mint.stop().await?;
        self.pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database {} with (force)",
            self.db
        )))
        .execute(&self.admin)
        .await?;
        Ok(())
    }
}
