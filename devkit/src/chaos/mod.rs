//! The chaos run's client side (`openpleb-devclient chaos`, driven by `scripts/chaos`): N trades
//! at once through their whole life (completed, cancelled, lapsed in several states, paid late,
//! disputed) while the script kills workers and the api and stops the mint, then the checks
//! that the money survived (`checks`).
//!
//! The script owns the processes; this side only speaks HTTP to the stack, pays invoices at
//! the dev mint's payment switch (`payer`), and reads PostgreSQL and the wallet files at the
//! end.

pub mod checks;
pub mod scenario;
pub mod trade;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::client::{call, Endpoints};
use trade::{Shared, TradeReport};

/// How to run.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// Trades to play.
    pub trades: usize,
    /// Delay between two trades' starts.
    pub stagger: Duration,
    /// The dev mint's payment switch, `http://host:port/pay`.
    pub pay_url: String,
    /// PostgreSQL of the stack, for the checks.
    pub database_url: String,
    /// The stack's wallet volumes, for the checks.
    pub wallet_dirs: Vec<PathBuf>,
    /// Offer lifetime of trades that lapse in the book, seconds.
    pub short_lifetime: u64,
    /// Longest the trades may take.
    pub timeout: Duration,
    /// Longest to wait after the trades for payouts and late refunds to settle.
    pub settle: Duration,
    /// Touched when every trade has ended, so the script stops its chaos before the checks.
    pub calm_file: Option<PathBuf>,
    /// Where the script keeps the count of processes that exited by themselves (it restarts
    /// them); checked to be 0: an outage of the mint or the database must not end a process.
    pub exits_file: Option<PathBuf>,
}

/// Plays the trades, waits for the money to settle, checks it. True when every check held.
pub async fn run(env: &Endpoints, opts: &ChaosOptions) -> anyhow::Result<bool> {
    let started = Instant::now();
    let provider = call(
        "POST",
        &format!("{}/admin/fiat-providers", env.admin),
        Some(&env.admin_token),
        Some(
            &json!({"name": format!("chaos {}", uuid::Uuid::new_v4().simple()),
                     "kind": "bank_transfer"}),
        ),
    )
    .await?;
    let shared = Arc::new(Shared {
        env: env.clone(),
        pay_url: opts.pay_url.clone(),
        provider: provider["id"].as_str().context("provider id")?.to_owned(),
        short_lifetime: opts.short_lifetime,
        deadline: started + opts.timeout,
    });
    let mut tasks = Vec::new();
    for i in 0..opts.trades {
        let shared = shared.clone();
        let delay = opts.stagger * u32::try_from(i)?;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            trade::drive(&shared, i).await
        }));
    }
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await?);
    }
    let played = started.elapsed();
    eprintln!("chaos: {} trades ended after {:.0?}", reports.len(), played);
    if let Some(f) = &opts.calm_file {
        std::fs::write(f, b"").with_context(|| format!("{}", f.display()))?;
    }

    let pool = sqlx::PgPool::connect(&opts.database_url).await?;
    let settled = checks::settle(&pool, &reports, Instant::now() + opts.settle).await?;
    let mut verdicts = checks::run(env, &pool, &reports, &opts.wallet_dirs).await?;
    if let Some(file) = &opts.exits_file {
        verdicts.push(checks::no_exits(file));
    }
    print_report(&reports, &verdicts, played, settled);
    let errors = reports.iter().filter(|r| r.error.is_some()).count();
    Ok(errors == 0 && verdicts.iter().all(|v| v.ok))
}

fn print_report(
    reports: &[TradeReport],
    verdicts: &[checks::Verdict],
    played: Duration,
    settled: Duration,
) {
    let mut by_plan: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for r in reports {
        *by_plan
            .entry((r.scenario.name(), r.status.clone()))
            .or_default() += 1;
        *by_status.entry(r.status.clone()).or_default() += 1;
    }
    println!(
        "trades: {} played in {played:.0?}, settled {settled:.0?} later",
        reports.len()
    );
    println!(
        "  by end: {}",
        by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for ((plan, status), n) in &by_plan {
        println!("  {plan:<16} -> {status:<10} {n}");
    }
    let late: usize = reports
        .iter()
        .filter(|r| {
            matches!(
                r.scenario,
                scenario::Scenario::CancelThenPay
                    | scenario::Scenario::LateDeposit
                    | scenario::Scenario::LateBond
            )
        })
        .count();
    println!("  late payments (deposit after cancel/lapse, bond after a lapsed claim): {late}");
    let bent: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            let offer = r.offer.clone().unwrap_or_default();
            r.bent.iter().map(move |b| format!("{offer}: {b}"))
        })
        .collect();
    println!("  plans bent by chaos: {}", bent.len());
    for b in &bent {
        println!("    {b}");
    }
    for r in reports.iter().filter(|r| r.error.is_some()) {
        println!(
            "  FAILED trade {} ({}): {}",
            r.offer.clone().unwrap_or_default(),
            r.scenario.name(),
            r.error.clone().unwrap_or_default()
        );
    }
    println!("checks:");
    for v in verdicts {
        println!(
            "  [{}] {}: {}",
            if v.ok { "ok" } else { "FAIL" },
            v.name,
            v.detail
        );
    }
}
