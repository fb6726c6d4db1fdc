//! Notification latency: from the commit of a move to the push service's `201` for the notice
//! it causes. Each of `n` offers has its maker subscribed (Web Push, the devkit's push
//! service, which checks the VAPID token and decrypts each message as a browser would); a
//! taker claims it and pays the bond, `PAY_GAP` apart, and the bond's move to
//! TAKER_BOND_PAID (its `NOTIFY`, sent on commit) is timed against the maker's notice arriving
//! (`BENCH notify_p50_ms`, `notify_p95_ms`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use openpleb_common::db::offers::EVENTS_CHANNEL;
use openpleb_devkit::push::{Browser, PushService};
use serde_json::json;
use sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::report::Report;
use openpleb_devkit::scenario::trade::try_claim;
use openpleb_devkit::scenario::{Auth, Trade, Transport};

use crate::stack::Stack;

/// Time between two bond payments: latency, not a queue.
const PAY_GAP: Duration = Duration::from_millis(100);

/// When each offer's move into `to` was announced (on commit).
async fn watch_moves(
    pool: &sqlx::PgPool,
    to: &'static str,
) -> anyhow::Result<Arc<Mutex<HashMap<Uuid, Instant>>>> {
    let seen: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(EVENTS_CHANNEL).await?;
    let sink = seen.clone();
    tokio::spawn(async move {
        while let Ok(n) = listener.recv().await {
            let mut parts = n.payload().split(':');
            if let (Some(id), Some(_), Some(status)) = (parts.next(), parts.next(), parts.next()) {
                if let (true, Ok(id)) = (status == to, id.parse::<Uuid>()) {
                    let mut map = sink.lock().unwrap_or_else(|e| e.into_inner());
                    map.entry(id).or_insert_with(Instant::now);
                }
            }
        }
    });
    Ok(seen)
}

/// Runs the figure over `n` offers.
pub async fn run(stack: &Stack, report: &mut Report, n: usize) -> anyhow::Result<()> {
    let key = stack.get("/push/key", Auth::Anonymous).await?.expect(200)?;
    let key = key["publicKey"].as_str().context("VAPID key")?.to_owned();
    let push = PushService::start(Some(key)).await?;
    let provider = stack.provider().await?;
    let makers = stack.sessions(n).await?;
    let takers = stack.sessions(n).await?;
    let moved = watch_moves(&stack.db.pool, "TAKER_BOND_PAID").await?;

    // Offers, each maker's phone subscribed; funded.
    let mut offers: Vec<(Uuid, Browser)> = Vec::with_capacity(n);
    for maker in &makers {
        let phone = push.subscribe();
        let plan = Trade::new(stack).maker(maker).provider(provider);
        let plan = plan.field("notify", json!({"push": phone.json()}));
        let trade = plan.await?;
        let id = trade.id;
        let (invoice, sats) = trade.deposit()?;
        stack.pay(&invoice, sats).await?;
        offers.push((id, phone));
    }
    // Claims, and their bonds paid apart.
    let mut bonds = Vec::with_capacity(n);
    for ((id, _), taker) in offers.iter().zip(&takers) {
        let mut claimed = None;
        for _ in 0..100 {
            let (resp, _) = try_claim(stack, *id, taker).await?;
            if resp.is_success() {
                claimed = Some(resp.expect(200)?);
                break;
            }
            // Not funded yet: its deposit is still being minted.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let c = claimed.context("an offer was never listed")?;
        bonds.push((
            c["bond"]["invoice"].as_str().context("bond")?.to_owned(),
            c["bond"]["amountSats"].as_u64().context("bond sats")?,
        ));
    }
    for (invoice, sats) in &bonds {
        let next = Instant::now() + PAY_GAP;
        stack.pay(invoice, *sats).await?;
        tokio::time::sleep_until(next.into()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut samples = Vec::with_capacity(n);
    for (id, phone) in &offers {
        let got = push
            .wait_for(phone, 1, deadline.saturating_duration_since(Instant::now()))
            .await;
        let arrived = got
            .first()
            .context("a maker was never told of its bond")?
            .at;
        let committed = moved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .copied()
            .context("a bond's move was never announced")?;
        samples.push(arrived.saturating_duration_since(committed));
    }
    if !push.refused().is_empty() {
        anyhow::bail!("the push service refused deliveries: {:?}", push.refused());
    }
    report.latencies("notify", &samples, &[50, 95]);
    Ok(())
}
