//! The public book under load:
//! `GET /offers?limit=100` with `BOOK_SIZE` offers listed, anonymous, and `GET /offers/{id}` as
//! a session (a trader looking at an offer it does not own). Each at full speed (wrk, 2 threads,
//! 32 connections, as the comparison with the upstream server was measured; our own generator
//! without wrk) and at a fixed 1,000 requests/s (our generator), through the public listener's
//! socket.

use std::time::Duration;

use openpleb_common::db::offers;
use openpleb_common::domain::offer::OfferStatus;
use openpleb_devkit::fixtures;

use crate::load::{self, LoadResult};
use crate::report::Report;
use crate::stack::{payout_key, Stack};

/// Offers in the book while it is read.
const BOOK_SIZE: i64 = 1_000;

/// Fills the book up to `BOOK_SIZE` listed offers (straight into PostgreSQL: only reading is
/// measured here).
async fn fill(stack: &Stack) -> anyhow::Result<()> {
    let pool = &stack.db.pool;
    let listed: i64 =
        sqlx::query_scalar("select count(*) from offers where status = 'INVOICE_PAID'")
            .fetch_one(pool)
            .await?;
    let sessions = stack.sessions(1).await?;
    let session: uuid::Uuid =
        sqlx::query_scalar("select id from sessions order by created_at desc limit 1")
            .fetch_one(pool)
            .await?;
    drop(sessions);
    let mut tx = pool.begin().await?;
    for _ in listed..BOOK_SIZE {
        let offer = fixtures::insert_offer(&mut tx, session, 41_667, &payout_key()).await?;
        offers::transition(
            &mut tx,
            offer.id,
            OfferStatus::Created,
            OfferStatus::InvoicePaid,
            Some(std::time::Duration::from_secs(24 * 3600)),
            offers::Deadline::Any,
        )
        .await?;
    }
    // Like the offers traders create (description, 25.00 EUR).
    sqlx::query(
        "update offers set description = 'Bank transfer within the hour, SEPA instant preferred.',
                fiat_amount_minor = 2500
          where description is null",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Full speed with wrk when installed, else with our generator.
async fn full_speed(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    secs: u64,
) -> anyhow::Result<LoadResult> {
    if load::have_wrk() {
        let url = format!("http://{addr}{path}");
        load::wrk(&url, headers, 32, secs).await
    } else {
        load::generate(addr, path, headers, 32, 0, secs as f64).await
    }
}

/// Runs the book figures, `secs` per load run.
pub async fn run(stack: &Stack, report: &mut Report, secs: u64) -> anyhow::Result<()> {
    eprintln!("== the book ({BOOK_SIZE} offers, {secs} s per run)");
    fill(stack).await?;
    let path = "/api/v1/offers?limit=100";
    // Warm up (connections, caches, the pool).
    load::generate(stack.public_addr, path, &[], 4, 0, 1.0).await?;
    let page = load::generate(stack.public_addr, path, &[], 1, 0, 0.5).await?;
    report.add("book_page_kib", page.body_bytes as f64 / 1024.0, "KiB");

    // Before: the same api without the cache.
    load::generate(stack.uncached_addr, path, &[], 4, 0, 1.0).await?;
    let before = full_speed(stack.uncached_addr, path, &[], secs).await?;
    anyhow::ensure!(before.errors == 0, "book: {} errors", before.errors);
    before.report(report, "book_uncached");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fast = full_speed(stack.public_addr, path, &[], secs).await?;
    anyhow::ensure!(fast.errors == 0, "book: {} errors", fast.errors);
    fast.report(report, "book");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let steady = load::generate(stack.public_addr, path, &[], 32, 1_000, secs as f64).await?;
    anyhow::ensure!(
        steady.errors == 0,
        "book at 1000/s: {} errors",
        steady.errors
    );
    steady.report(report, "book_at_1000");

    // One offer, as a session that is not a party.
    let viewer = stack.sessions(1).await?.remove(0);
    let id: uuid::Uuid = sqlx::query_scalar(
        "select id from offers where status = 'INVOICE_PAID' order by created_at desc limit 1",
    )
    .fetch_one(&stack.db.pool)
    .await?;
    let path = format!("/api/v1/offers/{id}");
    let auth = [("Authorization", viewer.bearer())];
    load::generate(stack.public_addr, &path, &auth, 4, 0, 1.0).await?;
    let fast = full_speed(stack.public_addr, &path, &auth, secs).await?;
    anyhow::ensure!(fast.errors == 0, "offer: {} errors", fast.errors);
    fast.report(report, "offer_get");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let steady = load::generate(stack.public_addr, &path, &auth, 32, 1_000, secs as f64).await?;
    anyhow::ensure!(
        steady.errors == 0,
        "offer at 1000/s: {} errors",
        steady.errors
    );
    steady.report(report, "offer_get_at_1000");
    Ok(())
}
