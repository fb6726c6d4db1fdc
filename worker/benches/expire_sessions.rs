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

use std::time::Instant;

use apalis::prelude::Data;
use futures::stream::{self, StreamExt};
use openpleb_common::jobs::ReleasePayouts;
use openpleb_worker::jobs::{cleanup_wallets, release_payouts};
use uuid::Uuid;

mod common;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = common::count_arg(10_000)?;
    let bench = common::Bench::start(n, 21).await?;
    let (pool, ctx, setup_secs) = (bench.pool.clone(), bench.ctx.clone(), bench.setup_secs);
    sqlx::query("update sessions set created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour'")
        .execute(&pool).await?;
    let rss_before = common::peak_rss_kib();

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
    common::print_peak_rss(rss_before);
    bench.finish().await?;
    Ok(())
}
