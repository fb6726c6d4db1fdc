//! Payments the watcher did not see in time: a lapse asks the mint before it decides, and a
//! payment found after its quote was given up is minted and refunded, never stranded or looped
//! on. The watcher is held back by stopping the worker and dropping the quote's watch jobs
//! (as if its notification was lost); the mint pays invoices only when a test says so.

mod common;

use std::time::Duration;

use common::{balanced, offer_with_invoice, Harness};
use openpleb_common::config::Config;
use openpleb_devkit::scenario::trade::wait_status;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Drops every queued look at `quote_id`: its watcher is behind, its notification lost.
async fn forget_watchers(h: &Harness, quote_id: &str) {
    sqlx::query(
        "delete from apalis.jobs where job_type = 'openpleb.watch_mint_quote'
           and status <> 'Done' and convert_from(job, 'UTF8') like '%' || $1 || '%'",
    )
    .bind(quote_id)
    .execute(&h.pool)
    .await
    .expect("drop watch jobs");
}

fn short_claims(c: &mut Config) {
    c.timers.invoice_created = Duration::from_secs(3);
}

/// A bond paid in time but not minted when its claim's deadline passes: the lapse asks the
/// mint first, finds it paid, and the bond wins the offer instead of being refunded.
#[sqlx::test(migrations = false)]
async fn a_claim_lapse_asks_the_mint_first(opts: PgPoolOptions, conn: PgConnectOptions) {
    let mut h = Harness::start_configured(opts, conn, short_claims).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, _) = h.funded_offer(&maker, provider).await;
    let (_, v) = h.claim_unpaid(id, &taker).await;
    let quote = v["bond"]["quoteId"].as_str().expect("quote").to_owned();
    h.stop_worker().await;
    forget_watchers(&h, &quote).await;
    h.pay(
        v["bond"]["invoice"].as_str().expect("invoice"),
        v["bond"]["amountSats"].as_u64().expect("sats"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_stop, _worker) = h.second_worker();
    let won = h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    assert_eq!(won["role"], "taker");
    h.stop().await;
}

/// A deposit paid after its quote was marked EXPIRED (the watcher gave up on it): the CREATED
/// lapse asks the mint, mints it, refunds it to the maker's key and expires the offer, once.
#[sqlx::test(migrations = false)]
async fn a_deposit_paid_after_its_quote_expired_is_refunded(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let mut h = Harness::start_configured(opts, conn, |c| {
        c.timers.created = Duration::from_secs(3);
    })
    .await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (id, invoice, deposit, maker_key) = offer_with_invoice(&h, &maker, provider).await;
    h.stop_worker().await;
    let quote = h.deposit_quote(id).await;
    forget_watchers(&h, &quote).await;
    sqlx::query("update wallet_quotes set state = 'EXPIRED' where quote_id = $1")
        .bind(&quote)
        .execute(&h.pool)
        .await
        .expect("expire the quote");
    h.pay(&invoice, deposit).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (_stop, _worker) = h.second_worker();
    // A fresh worker fetches nothing until its first look at the mint says it is up; under a
    // loaded machine that look and the lapse's own question to the mint can take most of one
    // wait, so allow two.
    let first = wait_status(&h, id, &maker, "EXPIRED").await;
    if first.is_err() {
        wait_status(&h, id, &maker, "EXPIRED")
            .await
            .expect("EXPIRED");
    }
    let refund = h.released_payouts(id, &maker).await;
    assert_eq!(refund.len(), 1);
    assert_eq!(refund[0]["purpose"], "late_refund");
    assert_eq!(h.redeem(&refund, &maker_key).await, deposit);
    balanced(&h, 1).await;
    h.stop().await;
}
