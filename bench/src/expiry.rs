//! Expiry throughput (how fast ended sessions' wallets are settled and removed): N ended sessions, each with a few sats in its own
//! wallet file behind a cancelled offer, are swept (the cleanup records a sweep payout to the
//! offer's payout key), released (a P2PK-locked token, one swap at the mint) and deleted by two
//! workers running as production runs them (cron, queues, leases; each with its own wallet
//! manager and worker name, as two processes would have), with the cleanup period at 1 s.
//!
//! In the same run, and against the same mint, the raw swap rate: in-memory wallets, 16 at a
//! time, sending P2PK-locked tokens as fast as the mint swaps them, the same swap a release
//! makes. The ratio of the two says how much of what the mint can do the expiry path uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cdk::nuts::{SecretKey, SpendingConditions};
use cdk::wallet::SendOptions;
use cdk::Amount;
use futures::stream::{self, StreamExt};
use openpleb_common::wallet::{WalletId, WalletManager, WalletManagerConfig};
use openpleb_devkit::{fixtures, test_config, DevMint, DevMintOptions};
use openpleb_worker::WorkerContext;
use tokio::sync::oneshot;

use crate::report::Report;
use crate::stack::Database;

/// Sats each session holds.
const SATS: u64 = 21;

/// Concurrent wallets in the raw swap measurement.
const SWAPPERS: usize = 16;

/// Sends per swapping wallet. A cdk wallet reads and parses every proof row of its store on each
/// send (cdk-sql-common's `get_proofs` filters after the `SELECT`), the tokens it sent
/// included, so one wallet making hundreds of sends measures its own store, not the mint
/// (4,000 sends from 16 wallets gave 14 swaps/s where 500 gave 102): each wallet makes a few
/// and the next one takes over.
const SENDS_PER_WALLET: usize = 25;

/// P2PK sends per second, `ops` in all, `SWAPPERS` at a time from in-memory wallets of
/// `SENDS_PER_WALLET` sends each.
async fn swap_rate(mint: &DevMint, ops: usize) -> anyhow::Result<f64> {
    let wallets_needed = ops.div_ceil(SENDS_PER_WALLET);
    let funded: Vec<anyhow::Result<_>> = stream::iter(0..wallets_needed)
        .map(|_| async move {
            let w = fixtures::memory_wallet(&mint.url).await?;
            fixtures::fund_memory_wallet(&w, mint, SATS * SENDS_PER_WALLET as u64 + 64).await?;
            Ok(w)
        })
        .buffer_unordered(SWAPPERS)
        .collect()
        .await;
    let wallets = funded.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let key = SecretKey::generate().public_key();
    let start = Instant::now();
    let done: Vec<anyhow::Result<()>> = stream::iter(wallets)
        .map(|w| async move {
            for _ in 0..SENDS_PER_WALLET {
                let opts = SendOptions {
                    conditions: Some(SpendingConditions::new_p2pk(key, None)),
                    ..Default::default()
                };
                let prepared = w.prepare_send(Amount::from(SATS), opts).await?;
                prepared.confirm(None).await?;
            }
            Ok(())
        })
        .buffer_unordered(SWAPPERS)
        .collect()
        .await;
    done.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok((wallets_needed * SENDS_PER_WALLET) as f64 / start.elapsed().as_secs_f64())
}

/// Runs the expiry figures with `n` sessions.
pub async fn run(report: &mut Report, n: usize) -> anyhow::Result<()> {
    eprintln!("== expiry ({n} sessions, two workers)");
    let db = Database::create(40).await?;
    let mint = DevMint::start_with(DevMintOptions {
        payment_delay_secs: 3600,
        ..DevMintOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let config = Arc::new(test_config(&db.url, &mint.url));
    let mut settings = openpleb_devkit::test_wallets_config(dir.path());
    settings.cleanup_interval = Duration::from_secs(1);

    let setup = Instant::now();
    let funder = WalletManager::new(
        WalletManagerConfig::from_config(&settings, &config),
        db.pool.clone(),
    )?;
    funder.spawn_maintenance();
    let mut sessions = Vec::with_capacity(n);
    let mut tx = db.pool.begin().await?;
    for _ in 0..n {
        let session = fixtures::insert_session(&mut tx).await?;
        let key = SecretKey::generate()
            .public_key()
            .x_only_public_key()
            .to_string();
        fixtures::cancelled_offer(&mut tx, session, 1_000, &key).await?;
        sessions.push(session);
    }
    tx.commit().await?;
    let funded: Vec<anyhow::Result<()>> = stream::iter(sessions.iter().copied())
        .map(|s| {
            let funder = funder.clone();
            let mint = &mint;
            async move { fixtures::fund_wallet(&funder, mint, &WalletId::session(s), SATS).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    funded.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    funder.close_all().await;
    drop(funder);
    eprintln!(
        "  set-up {:.1} s (not measured)",
        setup.elapsed().as_secs_f64()
    );

    let swaps = swap_rate(&mint, n.clamp(500, 4_000)).await?;
    report.add("mint_swaps_per_s", swaps, "1/s");

    sqlx::query(
        "update sessions set created_at = now() - interval '2 hours',
                expires_at = now() - interval '1 hour'",
    )
    .execute(&db.pool)
    .await?;
    let start = Instant::now();
    let mut workers = Vec::new();
    for i in 0..2 {
        let wallets = WalletManager::new(
            WalletManagerConfig::from_config(&settings, &config),
            db.pool.clone(),
        )?;
        wallets.spawn_maintenance();
        let ctx = Arc::new(WorkerContext::from_config(
            db.pool.clone(),
            wallets,
            config.clone(),
        ));
        let (stop, rx) = oneshot::channel::<()>();
        let name = format!("bench-expiry-{i}-{}", uuid::Uuid::new_v4().simple());
        let handle = tokio::spawn(async move {
            let _ = openpleb_worker::run(ctx, &name, async move {
                let _ = rx.await;
            })
            .await;
        });
        workers.push((stop, handle));
    }
    let limit = Duration::from_secs(600);
    let removed = loop {
        let removed: i64 =
            sqlx::query_scalar("select count(*) from sessions where wallet_removed_at is not null")
                .fetch_one(&db.pool)
                .await?;
        if removed as usize >= n || start.elapsed() > limit {
            break removed;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let secs = start.elapsed().as_secs_f64();
    for (stop, handle) in workers {
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
    }
    let released: i64 = sqlx::query_scalar(
        "select count(*) from payouts where purpose = 'sweep' and state = 'RELEASED'",
    )
    .fetch_one(&db.pool)
    .await?;
    eprintln!("  {removed} of {n} wallets deleted, {released} sweeps released, in {secs:.1} s");
    anyhow::ensure!(
        removed as usize >= n,
        "only {removed} of {n} sessions expired in {limit:?}"
    );
    let rate = n as f64 / secs;
    report.add("expiry_secs", secs, "s");
    report.add("expiry_sessions_per_s", rate, "1/s");
    report.add("release_share_of_swap_rate", rate / swaps, "ratio");

    mint.stop().await?;
    db.drop_now().await
}
