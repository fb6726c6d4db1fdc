//! Benchmark (not a test): one reconciliation pass over N live wallets that each hold a small
//! balance, every one opened, recovered, checked and closed, as the `reconcile_wallets` job does
//! in batches of `RECONCILE_BATCH`. Prints wallets per second (to size `RECONCILE_BATCH` and
//! `RECONCILE_INTERVAL`: a batch must finish well inside the job's 40 s budget) and the
//! process' peak resident memory (VmHWM, which includes the in-process test mint).
//!
//! `DATABASE_URL=postgres://postgres@127.0.0.1/postgres SQLX_OFFLINE=true \
//!  cargo bench -p openpleb-worker --bench reconcile_wallets --profile dev -- 2000`

use std::time::Instant;

use openpleb_worker::jobs::reconcile_wallets;

mod common;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = common::count_arg(2_000)?;
    let mut bench = common::Bench::start(n, 21).await?;
    let rss_before = common::peak_rss_kib();
    // Every wallet is due; runs take as many as their time budget allows.
    let ctx =
        std::sync::Arc::get_mut(&mut bench.ctx).ok_or_else(|| anyhow::anyhow!("context shared"))?;
    let worker = &mut std::sync::Arc::make_mut(&mut ctx.config).worker;
    worker.reconcile_batch = i64::try_from(n)?;
    worker.reconcile_interval = std::time::Duration::from_secs(3600);

    let start = Instant::now();
    let (mut checked, mut skipped, mut runs) = (0usize, 0usize, 0usize);
    while checked < n && runs < 50 {
        runs += 1;
        let summary = reconcile_wallets::run(&bench.ctx)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        // The treasury (never funded here) is due too and has no file.
        checked += summary
            .reconciled
            .iter()
            .filter(|(id, _)| id.as_str().starts_with("session_"))
            .count();
        skipped += summary.skipped;
        let changed = summary
            .reconciled
            .iter()
            .filter(|(_, r)| r.noteworthy())
            .count();
        anyhow::ensure!(
            changed == 0,
            "{changed} settled wallets changed on reconciliation"
        );
    }
    let secs = start.elapsed().as_secs_f64();
    println!("live wallets:          {n}");
    println!("reconciled:            {checked} in {runs} run(s), {skipped} skipped");
    println!(
        "set-up:                {:.1} s (not measured)",
        bench.setup_secs
    );
    println!(
        "reconciliation:        {secs:.1} s, {:.1} wallets/s",
        checked as f64 / secs
    );
    common::print_peak_rss(rss_before);
    bench.finish().await?;
    Ok(())
}
