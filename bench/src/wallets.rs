//! Session wallets at scale (memory per open wallet, cold operations over many files).
//!
//! - A population of funded wallet files on disk, made fast: one wallet is funded at the mint,
//!   closed, and its file copied under fresh session ids. That is sound because nothing in the
//!   file names its wallet: the seed is derived from the master secret and the session id at
//!   open, so each copy derives its own outputs (the copies share their proofs, which no
//!   operation measured here spends).
//! - Open wallets: `open` of them opened at once in one wallet manager (resident memory, file
//!   descriptors and threads before and after, per wallet).
//! - Cold operation: on a manager with the default cache, wallets picked at random from the
//!   population each receive a token and are closed again: open (lease, SQLite, recovery),
//!   receive (a swap at the mint), close (lease given back).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use cdk::wallet::SendOptions;
use cdk::Amount;
use futures::stream::{self, StreamExt};
use openpleb_common::wallet::{WalletId, WalletManager};
use openpleb_devkit::{fixtures, wallet_manager_config, DevMint, DevMintOptions};
use uuid::Uuid;

use crate::report::{self, Report};
use crate::stack::Database;

/// File descriptors an open wallet holds (`open_wallet_fds` measures it).
const FDS_PER_WALLET: usize = 3;

/// Descriptors left for everything else (PostgreSQL, the mint, sockets).
const FD_MARGIN: usize = 400;

/// Sizes of one run.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Wallet files on disk.
    pub population: usize,
    /// Wallets opened at once.
    pub open: usize,
    /// Cold operations timed.
    pub cold_ops: usize,
}

fn manager(
    db: &Database,
    mint: &DevMint,
    dir: &std::path::Path,
    max_open: usize,
    idle_close: Duration,
) -> anyhow::Result<WalletManager> {
    let cfg = wallet_manager_config(&mint.url, dir, max_open, Duration::from_secs(5), idle_close);
    let m = WalletManager::new(cfg, db.pool.clone())?;
    m.spawn_maintenance();
    Ok(m)
}

/// Copies `template` to `n` fresh session ids; returns them.
fn populate(
    wallets: &WalletManager,
    template: &WalletId,
    n: usize,
) -> anyhow::Result<Vec<WalletId>> {
    let source = std::fs::read(wallets.path_of(template)).context("template wallet")?;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let id = WalletId::session(Uuid::new_v4());
        let path = wallets.path_of(&id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, &source)?;
        ids.push(id);
    }
    Ok(ids)
}

/// Tokens of `sats` each, `n` of them, from one funded in-memory wallet.
async fn tokens(mint: &DevMint, n: usize, sats: u64) -> anyhow::Result<Vec<String>> {
    let w = fixtures::memory_wallet(&mint.url).await?;
    fixtures::fund_memory_wallet(&w, mint, sats * n as u64).await?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let prepared = w
            .prepare_send(Amount::from(sats), SendOptions::default())
            .await?;
        out.push(prepared.confirm(None).await?.to_string());
    }
    Ok(out)
}

/// Runs the wallet figures.
pub async fn run(report: &mut Report, sizes: Sizes) -> anyhow::Result<()> {
    eprintln!(
        "== wallets ({} on disk, {} open at once, {} cold operations)",
        sizes.population, sizes.open, sizes.cold_ops
    );
    let db = Database::create(20).await?;
    let mint = DevMint::start_with(DevMintOptions {
        payment_delay_secs: 3600,
        ..DevMintOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;

    // The template, funded as a session wallet is: a paid deposit quote, minted.
    let setup = manager(&db, &mint, dir.path(), 64, Duration::from_secs(2))?;
    let template = WalletId::session(Uuid::new_v4());
    fixtures::fund_wallet(&setup, &mint, &template, 1_000).await?;
    setup.close_all().await;
    let bytes = std::fs::metadata(setup.path_of(&template))?.len();
    let start = Instant::now();
    let ids = populate(&setup, &template, sizes.population)?;
    let copy_secs = start.elapsed().as_secs_f64();
    eprintln!(
        "  {} wallet files of {} KiB written in {copy_secs:.1} s",
        ids.len(),
        bytes / 1024
    );
    report.add("wallets_on_disk", ids.len() as f64, "wallets");
    report.add("wallet_file_kib", bytes as f64 / 1024.0, "KiB");
    drop(setup);

    // Each open wallet holds three file descriptors (database, WAL, WAL index); a machine whose
    // `nofile` limit cannot hold the goal opens what fits and says so.
    let fit = report::fd_limit()
        .map(|limit| limit.saturating_sub(report::open_fds() + FD_MARGIN) / FDS_PER_WALLET)
        .unwrap_or(usize::MAX);
    let open = sizes.open.min(ids.len()).min(fit);
    if open < sizes.open {
        eprintln!(
            "  only {open} of {} wallets can be open at once under this process' nofile limit \
             ({:?}) at {FDS_PER_WALLET} descriptors each",
            sizes.open,
            report::fd_limit()
        );
    }
    open_many(report, &db, &mint, dir.path(), &ids[..open], sizes.open).await?;
    cold(report, &db, &mint, dir.path(), &ids, sizes.cold_ops).await?;

    mint.stop().await?;
    db.drop_now().await
}

async fn open_many(
    report: &mut Report,
    db: &Database,
    mint: &DevMint,
    dir: &std::path::Path,
    ids: &[WalletId],
    goal: usize,
) -> anyhow::Result<()> {
    let wallets = manager(db, mint, dir, ids.len() + 16, Duration::from_secs(3600))?;
    // One wallet first, so what every manager allocates once is not counted per wallet.
    wallets.balance(&ids[0]).await?;
    let (rss0, fds0, threads0) = (report::rss_kib(), report::open_fds(), report::threads());
    let start = Instant::now();
    let opened: Vec<_> = stream::iter(ids[1..].iter().cloned())
        .map(|id| {
            let wallets = wallets.clone();
            async move { wallets.balance(&id).await.map(|b| b.unspent) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let secs = start.elapsed().as_secs_f64();
    let opened = opened.into_iter().collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(
        opened.iter().all(|u| *u == 1_000),
        "a copy lost its balance"
    );
    let n = opened.len() as f64;
    let open_now = wallets.open_count();
    let (rss1, fds1, threads1) = (report::rss_kib(), report::open_fds(), report::threads());
    eprintln!(
        "  {open_now} open in {secs:.1} s; RSS {} -> {} MiB, fds {fds0} -> {fds1}, threads {threads0} -> {threads1}",
        rss0 / 1024,
        rss1 / 1024
    );
    // Where it is: heap, mapped files, shared memory (each WAL's index).
    eprintln!(
        "  RSS now: anonymous {} MiB, file {} MiB, shared {} MiB",
        report::status_kib("RssAnon") / 1024,
        report::status_kib("RssFile") / 1024,
        report::status_kib("RssShmem") / 1024
    );
    report.add("wallets_open", open_now as f64, "wallets");
    report.add("open_rss_mib", rss1 as f64 / 1024.0, "MiB");
    report.add(
        "open_wallet_mib",
        (rss1.saturating_sub(rss0)) as f64 / 1024.0 / n,
        "MiB",
    );
    report.add(
        "open_wallet_fds",
        fds1.saturating_sub(fds0) as f64 / n,
        "fds",
    );
    report.add(
        "open_wallet_threads",
        threads1.saturating_sub(threads0) as f64 / n,
        "threads",
    );
    report.add("open_wallets_per_s", n / secs, "1/s");
    if open_now < goal {
        // What the goal's count would take at the measured cost per wallet.
        let per_kib = rss1.saturating_sub(rss0) as f64 / n;
        report.add(
            "open_rss_at_goal_mib",
            (rss0 as f64 + per_kib * goal as f64) / 1024.0,
            "MiB",
        );
    }
    wallets.close_all().await;
    Ok(())
}

async fn cold(
    report: &mut Report,
    db: &Database,
    mint: &DevMint,
    dir: &std::path::Path,
    ids: &[WalletId],
    n: usize,
) -> anyhow::Result<()> {
    let tokens = tokens(mint, n * 2, 8).await?;
    let (timed, split) = tokens.split_at(n);
    // The production defaults: 512 open at most, idle ones closed after 2 s.
    let wallets = Arc::new(manager(db, mint, dir, 512, Duration::from_secs(2))?);
    // Spread over the population, none twice.
    let stride = (ids.len() / n.max(1)).max(1);
    let pick = |i: usize| &ids[(i * stride + i % stride.max(1)) % ids.len()];
    let mut took = Vec::with_capacity(n);
    for (i, token) in timed.iter().enumerate() {
        let id = pick(i);
        let start = Instant::now();
        let got = wallets.receive(id, token, Vec::new()).await?;
        wallets.close(id).await?;
        took.push(start.elapsed());
        anyhow::ensure!(got == 8, "received {got}");
    }
    report.latencies("cold_wallet_op", &took, &[50, 99]);

    // Where the time goes: the same operation in three timed parts, on other wallets: the
    // open (a balance read opens the wallet cold), the receive on the open wallet, the close.
    let (mut open, mut receive, mut close) = (Vec::new(), Vec::new(), Vec::new());
    for (i, token) in split.iter().enumerate() {
        let id = pick(i + n);
        let t0 = Instant::now();
        wallets.balance(id).await?;
        let t1 = Instant::now();
        let got = wallets.receive(id, token, Vec::new()).await?;
        let t2 = Instant::now();
        wallets.close(id).await?;
        close.push(t2.elapsed());
        open.push(t1 - t0);
        receive.push(t2 - t1);
        anyhow::ensure!(got == 8, "received {got}");
    }
    report.latencies("cold_part_open", &open, &[50]);
    report.latencies("cold_part_receive", &receive, &[50]);
    report.latencies("cold_part_close", &close, &[50]);
    wallets.close_all().await;
    Ok(())
}
