//! Requests and settlement, as traders meet them (request latency and settlement latency).
//!
//! - `POST /offers`, `POST /offers/{id}/claim` and `POST /offers/{id}/fund`: latency of each
//!   request through the whole public app (middleware, session, trade step, the mint round
//!   trip for the deposit or bond quote, or the token swap), one maker or taker session per
//!   offer, one request at a time.
//! - Settlement: the deposit invoice is marked paid at the mint, and the time until the offer's
//!   INVOICE_PAID move is committed (its `NOTIFY`, which is what puts it in every api's book
//!   and event streams) is measured. Payments are spread `PAY_GAP` apart, so what is measured
//!   is latency, not a queue. Once with the worker's NUT-17 subscription, once with polling
//!   alone (the worker restarted without it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use cdk::wallet::SendOptions;
use cdk::Amount;
use openpleb_common::db::offers::EVENTS_CHANNEL;
use openpleb_common::jobs::{queues, PAID_CHAIN};
use openpleb_devkit::fixtures;
use serde_json::json;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::report::Report;
use openpleb_devkit::scenario::trade::try_claim;
use openpleb_devkit::scenario::Transport;

use crate::stack::{CreatedOffer, Stack};

/// Time between two payments in a settlement run.
const PAY_GAP: Duration = Duration::from_millis(100);

/// When each offer's INVOICE_PAID move was announced.
type Listed = Arc<Mutex<HashMap<Uuid, Instant>>>;

async fn watch_listings(pool: &sqlx::PgPool) -> anyhow::Result<Listed> {
    let listed: Listed = Arc::default();
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(EVENTS_CHANNEL).await?;
    let sink = listed.clone();
    tokio::spawn(async move {
        while let Ok(n) = listener.recv().await {
            let mut parts = n.payload().split(':');
            let (Some(id), Some(_from), Some(to)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if to == "INVOICE_PAID" {
                if let Ok(id) = id.parse::<Uuid>() {
                    let mut map = sink.lock().unwrap_or_else(|e| e.into_inner());
                    map.entry(id).or_insert_with(Instant::now);
                }
            }
        }
    });
    Ok(listed)
}

/// Creates `n` offers (one fresh maker session each), timing each request.
async fn create_offers(
    stack: &Stack,
    provider: Uuid,
    n: usize,
) -> anyhow::Result<(Vec<CreatedOffer>, Vec<Duration>)> {
    let makers = stack.sessions(n).await?;
    let mut offers = Vec::with_capacity(n);
    let mut took = Vec::with_capacity(n);
    for maker in &makers {
        let start = Instant::now();
        let offer = stack.create_offer(maker, provider).await?;
        took.push(start.elapsed());
        offers.push(offer);
    }
    Ok((offers, took))
}

/// Pays every offer's deposit `PAY_GAP` apart; the time from each payment to its listing.
async fn settle(
    stack: &Stack,
    listed: &Listed,
    offers: &[CreatedOffer],
) -> anyhow::Result<Vec<Duration>> {
    let mut paid = Vec::with_capacity(offers.len());
    for offer in offers {
        let next = Instant::now() + PAY_GAP;
        stack.pay(&offer.invoice, offer.deposit).await?;
        paid.push((offer.id, Instant::now()));
        tokio::time::sleep_until(next.into()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = {
            let map = listed.lock().unwrap_or_else(|e| e.into_inner());
            paid.iter().all(|(id, _)| map.contains_key(id))
        };
        if done {
            break;
        }
        if Instant::now() > deadline {
            anyhow::bail!("not every paid offer reached INVOICE_PAID within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let map = listed.lock().unwrap_or_else(|e| e.into_inner());
    Ok(paid
        .iter()
        .filter_map(|(id, at)| map.get(id).map(|l| l.saturating_duration_since(*at)))
        .collect())
}

/// How the samples spread (a tail of whole polling rounds shows as a cluster near 5 s).
fn print_spread(name: &str, samples: &[Duration]) {
    let bounds = [250u128, 500, 1_000, 2_000, 5_000, u128::MAX];
    let mut counts = [0usize; 6];
    for s in samples {
        let ms = s.as_millis();
        if let Some(i) = bounds.iter().position(|b| ms < *b) {
            counts[i] += 1;
        }
    }
    eprintln!(
        "  {name}: {} under 250 ms, {} under 500 ms, {} under 1 s, {} under 2 s, {} under 5 s, {} over",
        counts[0], counts[1], counts[2], counts[3], counts[4], counts[5]
    );
}

/// Where the settlement time of the quotes paid since `since` went, from the queue's own rows:
/// for each job woken by the mint's paid notification, the wait from its enqueue (the time in
/// its ULID; `run_at` keeps whole seconds only) to a worker taking it (`lock_at`) and its run
/// (`done_at - lock_at`), p50, p95 and max, and the slowest five. A tail of jobs nobody took is
/// a queue stall; one of long runs is the wallet, the lease or the mint.
async fn print_job_times(
    pool: &sqlx::PgPool,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let rows: Vec<(String, i64, i64, i32)> = sqlx::query_as(
        "select id,
                (extract(epoch from lock_at) * 1000)::int8,
                (extract(epoch from done_at) * 1000)::int8,
                attempts
           from apalis.jobs
          where job_type = $1 and idempotency_key like $2
            and run_at >= $3 - interval '1 second'
            and lock_at is not null and done_at is not null",
    )
    .bind(queues::WATCH_MINT_QUOTE)
    .bind(format!("{PAID_CHAIN}:%"))
    .bind(since)
    .fetch_all(pool)
    .await?;
    let since_ms = since.timestamp_millis();
    // (enqueued, wait, run, attempts), milliseconds.
    let mut jobs: Vec<(i64, i64, i64, i32)> = rows
        .into_iter()
        .filter_map(|(id, locked, done, attempts)| {
            let enqueued = i64::try_from(ulid::Ulid::from_string(&id).ok()?.timestamp_ms()).ok()?;
            (enqueued >= since_ms).then_some((enqueued, locked - enqueued, done - locked, attempts))
        })
        .collect();
    if jobs.is_empty() {
        return Ok(());
    }
    let stats = |mut v: Vec<i64>| {
        v.sort_unstable();
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        format!(
            "p50 {} ms, p95 {} ms, max {} ms",
            at(0.5),
            at(0.95),
            at(1.0)
        )
    };
    eprintln!(
        "  paid-notification jobs ({}): queue wait {}; run {}",
        jobs.len(),
        stats(jobs.iter().map(|j| j.1).collect()),
        stats(jobs.iter().map(|j| j.2).collect()),
    );
    jobs.sort_by_key(|j| std::cmp::Reverse(j.1 + j.2));
    for (enqueued, wait, run, attempts) in jobs.iter().take(5) {
        let at = (enqueued - since_ms) as f64 / 1000.0;
        eprintln!("    enqueued at {at:.1} s: wait {wait} ms, run {run} ms, attempts {attempts}");
    }
    Ok(())
}

/// A plain token worth exactly `sats`, from a wallet of its own.
async fn token(stack: &Stack, sats: u64) -> anyhow::Result<String> {
    let w = fixtures::memory_wallet(&stack.auth.mint.url).await?;
    fixtures::fund_memory_wallet(&w, &stack.auth.mint, sats).await?;
    let prepared = w
        .prepare_send(Amount::from(sats), SendOptions::default())
        .await?;
    Ok(prepared.confirm(None).await?.to_string())
}

/// Runs the request and settlement figures with `n` offers per part; returns the ids of the
/// offers left in the book.
pub async fn run(stack: &mut Stack, report: &mut Report, n: usize) -> anyhow::Result<()> {
    let provider = stack.provider().await?;
    let listed = watch_listings(&stack.db.pool).await?;

    eprintln!("== requests and settlement ({n} offers each)");
    let (offers, created) = create_offers(stack, provider, n).await?;
    report.latencies("create_offer", &created, &[50, 95]);
    let since = chrono::Utc::now();
    let settled = settle(stack, &listed, &offers).await?;
    report.latencies("settle", &settled, &[50, 95]);
    print_spread("settle", &settled);
    print_job_times(&stack.db.pool, since).await?;

    // Claims, one taker session per offer.
    let takers = stack.sessions(n).await?;
    let mut claimed = Vec::with_capacity(n);
    for (offer, taker) in offers.iter().zip(&takers) {
        let start = Instant::now();
        let (reply, _) = try_claim(stack, offer.id, taker).await?;
        reply.expect(200).context("claim")?;
        claimed.push(start.elapsed());
    }
    report.latencies("claim", &claimed, &[50, 95]);

    // Funding with a token instead of the invoice: from the request to the offer's move to
    // INVOICE_PAID (its `NOTIFY`), as the api only checks and seals the token (202) and a
    // worker receives it; the api's own answer is reported apart (`fund_accept`).
    let makers = stack.sessions(n).await?;
    let mut funded = Vec::with_capacity(n);
    let mut accepted = Vec::with_capacity(n);
    for maker in &makers {
        let offer = stack.create_offer(maker, provider).await?;
        let token = token(stack, offer.deposit).await?;
        let start = Instant::now();
        let fund = format!("/offers/{}/fund", offer.id);
        let resp = stack.post(&fund, maker, json!({ "token": token })).await?;
        let v = resp.expect(202).context("fund")?;
        accepted.push(start.elapsed());
        anyhow::ensure!(v["state"] == "OPEN", "funding intent: {v}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let at = listed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&offer.id)
                .copied();
            if let Some(at) = at {
                funded.push(at.saturating_duration_since(start));
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "offer {} never funded", offer.id);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    report.latencies("fund_accept", &accepted, &[50, 95]);
    report.latencies("fund", &funded, &[50, 95]);

    // Settlement by polling alone: the worker again, without the mint subscription.
    stack.stop_worker().await;
    stack.start_worker(|c| c.worker.quote_subscription = false)?;
    let (offers, _) = create_offers(stack, provider, n).await?;
    let polled = settle(stack, &listed, &offers).await?;
    report.latencies("settle_polling", &polled, &[50, 95]);
    print_spread("settle_polling", &polled);
    stack.stop_worker().await;
    stack.start_worker(|_| {})?;
    Ok(())
}
