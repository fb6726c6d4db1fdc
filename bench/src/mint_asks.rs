//! What the platform asks of the mint, counted at the mint (the dev mint counts every request
//! it answers by route, and those naming a quote per quote; websocket subscriptions included).
//!
//! - `mint_requests_per_trade`: every request the mint answered while `n` trades ran to the
//!   end one after another (deposit paid over Lightning, a claim and its bond, the receipt,
//!   the maker's confirmation, every payout released), divided by `n`. The sessions are opened
//!   before (each costs one BAT spend at the mint); what the api and the worker ask in the
//!   background meanwhile (the health watchers' `/v1/info`, the reconciliation) is included
//!   and shown by route.
//! - `mint_requests_per_cancelled_offer`: one session creates and cancels `n` offers (as many
//!   as `QUOTE_MAX_PAYABLE` lets it), and the requests naming each deposit quote are counted
//!   over the quote's whole life: until every one is given up after its expiry at the mint
//!   (shortened to [`QUOTE_TTL_SECS`] here) plus the watcher's grace.

use std::time::{Duration, Instant};

use anyhow::Context;
use openpleb_devkit::fixtures;
use openpleb_devkit::mint_requests::Counts;
use uuid::Uuid;

use crate::report::Report;
use openpleb_devkit::scenario::{Trade, Transport};

use crate::stack::Stack;

/// The mint's quote lifetime in this part (the dev mint's default is an hour).
pub const QUOTE_TTL_SECS: u64 = 30;

/// Runs both figures with `n` trades and `n` cancelled offers.
pub async fn run(report: &mut Report, n: usize) -> anyhow::Result<()> {
    eprintln!(
        "== mint requests ({n} trades, {n} cancelled offers, quotes live {QUOTE_TTL_SECS} s)"
    );
    let stack = Stack::start_with_quote_ttl(QUOTE_TTL_SECS, |c| {
        // One session holds every cancelled offer's invoice, as in the measurement that
        // found the watchers' cost.
        c.limits.quote_max_payable = c.limits.quote_max_payable.max(n as i64);
    })
    .await?;
    let result = measure(&stack, report, n).await;
    stack.stop().await?;
    result
}

async fn measure(stack: &Stack, report: &mut Report, n: usize) -> anyhow::Result<()> {
    let provider = stack.provider().await?;
    let makers = stack.sessions(n).await?;
    let takers = stack.sessions(n).await?;

    let before = stack.auth.mint.requests.snapshot();
    let started = Instant::now();
    for (maker, taker) in makers.iter().zip(&takers) {
        trade(stack, provider, maker, taker).await?;
    }
    let during = stack.auth.mint.requests.snapshot().since(&before);
    eprintln!(
        "  {n} trades in {:.1} s: {} requests at the mint",
        started.elapsed().as_secs_f64(),
        during.total()
    );
    print_routes(&during, n);
    report.add(
        "mint_requests_per_trade",
        per(during.total(), n),
        "requests",
    );

    let canceller = stack.sessions(1).await?.remove(0);
    let before = stack.auth.mint.requests.snapshot();
    let started = Instant::now();
    let mut quotes = Vec::with_capacity(n);
    for _ in 0..n {
        let offer = stack.create_offer(&canceller, provider).await?;
        let cancel = format!("/offers/{}/cancel", offer.id);
        let cancelled = stack.post_empty(&cancel, &canceller).await?;
        cancelled.expect(200).context("cancel")?;
        let quote: String = sqlx::query_scalar("select deposit_quote_id from offers where id = $1")
            .bind(offer.id)
            .fetch_one(&stack.db.pool)
            .await?;
        quotes.push(quote);
    }
    wait_given_up(stack, &quotes).await?;
    let during = stack.auth.mint.requests.snapshot().since(&before);
    let per_quote: Vec<u64> = quotes.iter().map(|q| during.of_quote(q)).collect();
    let named: u64 = per_quote.iter().sum();
    eprintln!(
        "  {n} offers created and cancelled, their quotes' lives over after {:.0} s: \
         {named} requests named them (at most {} for one); {} requests at the mint in all",
        started.elapsed().as_secs_f64(),
        per_quote.iter().max().copied().unwrap_or(0),
        during.total()
    );
    print_routes(&during, n);
    report.add(
        "mint_requests_per_cancelled_offer",
        per(named, n),
        "requests",
    );
    Ok(())
}

/// One trade from creation to released payouts.
async fn trade(
    stack: &Stack,
    provider: Uuid,
    maker: &crate::stack::Session,
    taker: &crate::stack::Session,
) -> anyhow::Result<()> {
    let plan = Trade::new(stack)
        .maker(maker)
        .taker(taker)
        .provider(provider);
    let offer = plan.completed().await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from payouts where offer_id = $1 and state = 'RECORDED'",
        )
        .bind(offer.id)
        .fetch_one(&stack.db.pool)
        .await?;
        if waiting == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "payouts of {} not released",
            offer.id
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every one of `quotes` was given up (or minted), then a little longer, so a
/// look that would come after is seen.
async fn wait_given_up(stack: &Stack, quotes: &[String]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(QUOTE_TTL_SECS + 60 + 60);
    loop {
        let open = fixtures::open_quotes(&stack.db.pool, quotes).await?;
        if open == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{open} quotes still open long after their expiry"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(())
}

fn per(total: u64, n: usize) -> f64 {
    total as f64 / n.max(1) as f64
}

fn print_routes(counts: &Counts, n: usize) {
    for (route, count) in &counts.routes {
        eprintln!("    {route}: {count} ({:.2} each)", per(*count, n));
    }
}
