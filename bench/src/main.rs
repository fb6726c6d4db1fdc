//! `openpleb-bench`: the platform's performance figures (`docs/benchmarks.md`), run by `scripts/bench` on an
//! optimised build. Benchmarks, not tests: nothing here fails on a slow figure; it fails only
//! when the system misbehaves (a request refused, a wallet losing sats, work left undone).
//!
//! ```text
//! openpleb-bench [--quick] [--only wallets,trade,book,notify,expiry,mint]
//! ```
//!
//! Each part makes a PostgreSQL database of its own on `DATABASE_URL`'s server (dropped at the
//! end) and runs the dev mint, api and worker in this process. The run ends with one line per
//! figure, `BENCH <name> <value> <unit>`.

mod book;
mod expiry;
mod load;
mod mint_asks;
mod notify;
mod report;
mod stack;
mod trade;
mod wallets;

use std::time::Instant;

use report::Report;

/// Sizes of a run.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    wallets: wallets::Sizes,
    offers: usize,
    load_secs: u64,
    expired_sessions: usize,
    mint_trades: usize,
}

/// The issue's goal sizes.
const FULL: Sizes = Sizes {
    wallets: wallets::Sizes {
        population: 100_000,
        open: 10_000,
        cold_ops: 1_000,
    },
    offers: 200,
    load_secs: 10,
    expired_sessions: 10_000,
    mint_trades: 20,
};

/// A few minutes in all, for a fresh clone.
const QUICK: Sizes = Sizes {
    wallets: wallets::Sizes {
        population: 2_000,
        open: 500,
        cold_ops: 100,
    },
    offers: 20,
    load_secs: 3,
    expired_sessions: 300,
    mint_trades: 10,
};

fn env_size(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes out what the page cache still holds before a part starts: the wallets part leaves
/// gigabytes of copied and deleted wallet files behind, and their writeback can land on the
/// next part's `synchronous=FULL` commits, so each part starts from a quiet disk.
fn settle_disk() {
    let started = Instant::now();
    match std::process::Command::new("sync").status() {
        Ok(_) => eprintln!("(sync: {:.1} s)", started.elapsed().as_secs_f64()),
        Err(e) => eprintln!("(sync could not run: {e})"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only: Vec<String> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let wants = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let base = if quick { QUICK } else { FULL };
    // Any size may be overridden, e.g. when a machine has less disk or time.
    let sizes = Sizes {
        wallets: wallets::Sizes {
            population: env_size("BENCH_WALLETS_ON_DISK", base.wallets.population),
            open: env_size("BENCH_WALLETS_OPEN", base.wallets.open),
            cold_ops: env_size("BENCH_COLD_OPS", base.wallets.cold_ops),
        },
        offers: env_size("BENCH_OFFERS", base.offers),
        load_secs: env_size("BENCH_LOAD_SECS", base.load_secs as usize) as u64,
        expired_sessions: env_size("BENCH_EXPIRED_SESSIONS", base.expired_sessions),
        mint_trades: env_size("BENCH_MINT_TRADES", base.mint_trades),
    };
    eprintln!(
        "openpleb-bench ({}): {sizes:?}",
        if quick { "quick" } else { "full" }
    );
    if std::env::var_os("RUST_LOG").is_some() {
        openpleb_common::telemetry::init(openpleb_common::config::LogFormat::Text);
    }
    let started = Instant::now();
    let mut report = Report::default();

    if wants("wallets") {
        wallets::run(&mut report, sizes.wallets).await?;
    }
    if wants("trade") || wants("book") || wants("notify") {
        settle_disk();
        let mut stack = stack::Stack::start(|_| {}).await?;
        if wants("trade") {
            trade::run(&mut stack, &mut report, sizes.offers).await?;
        }
        if wants("book") {
            book::run(&stack, &mut report, sizes.load_secs).await?;
        }
        if wants("notify") {
            notify::run(&stack, &mut report, sizes.offers).await?;
        }
        stack.stop().await?;
    }
    if wants("expiry") {
        settle_disk();
        expiry::run(&mut report, sizes.expired_sessions).await?;
    }
    if wants("mint") {
        mint_asks::run(&mut report, sizes.mint_trades).await?;
    }

    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    for line in report.lines() {
        println!("{line}");
    }
    Ok(())
}
