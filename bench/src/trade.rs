//! Requests and settlement, as traders meet them (issue 14, goals 0 and 2).
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
use openpleb_devkit::fixtures;
use serde_json::json;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::report::Report;
use crate::stack::{expect, payout_key, CreatedOffer, Stack};

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
    let settled = settle(stack, &listed, &offers).await?;
    report.latencies("settle", &settled, &[50, 95]);
    print_spread("settle", &settled);

    // Claims, one taker session per offer.
    let takers = stack.sessions(n).await?;
    let mut claimed = Vec::with_capacity(n);
    for (offer, taker) in offers.iter().zip(&takers) {
        let start = Instant::now();
        let resp = stack
            .public
            .post(format!("/api/v1/offers/{}/claim", offer.id))
            .header("Authorization", taker.bearer())
            .body_json(&json!({ "takerPayoutPubkey": payout_key() }))
            .send()
            .await;
        expect(resp, 200).await.context("claim")?;
        claimed.push(start.elapsed());
    }
    report.latencies("claim", &claimed, &[50, 95]);

    // Funding with a token instead of the invoice.
    let makers = stack.sessions(n).await?;
    let mut funded = Vec::with_capacity(n);
    for maker in &makers {
        let offer = stack.create_offer(maker, provider).await?;
        let token = token(stack, offer.deposit).await?;
        let start = Instant::now();
        let resp = stack
            .public
            .post(format!("/api/v1/offers/{}/fund", offer.id))
            .header("Authorization", maker.bearer())
            .body_json(&json!({ "token": token }))
            .send()
            .await;
        let v = expect(resp, 200).await.context("fund")?;
        funded.push(start.elapsed());
        anyhow::ensure!(v["status"] == "INVOICE_PAID", "funded offer: {v}");
    }
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
