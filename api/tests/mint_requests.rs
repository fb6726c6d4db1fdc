//! What the mint is asked over an invoice's whole life, counted at the mint itself (the dev
//! mint counts every request per quote it names): an invoice whose offer or claim ended costs
//! its creation, its NUT-17 subscription and one last look when it expires at the mint, not a
//! look every few seconds until then. A payment that still arrives for it is minted and
//! refunded: at once through the subscription, or at that last look when the worker has no
//! subscription. The mint's quotes live 20 s here, so a whole life fits in a test.

mod common;

use std::time::{Duration, Instant};

use common::{offer_with_invoice, Harness, Session};
use openpleb_devkit::fixtures;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// The mint's quote lifetime in these tests, seconds.
const TTL: u64 = 20;

/// Most requests one unpaid invoice of an ended offer or claim may cost the mint over its
/// life: its creation, its subscription, the last look at its expiry.
const UNPAID_BUDGET: u64 = 3;

/// An offer created by `maker` and cancelled at once; (offer, quote, invoice, sats, maker key).
async fn cancelled_offer(
    h: &Harness,
    maker: &Session,
    provider: Uuid,
) -> (Uuid, String, String, u64, cdk::nuts::SecretKey) {
    let (id, invoice, sats, key) = offer_with_invoice(h, maker, provider).await;
    h.cancel(id, maker).await;
    let quote = h.deposit_quote(id).await;
    (id, quote, invoice, sats, key)
}

/// Waits until every one of `quotes` is final in the platform's books (minted, or given up
/// after its expiry), then a little longer, so nothing asked later is missed.
async fn wait_whole_life(h: &Harness, quotes: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(TTL + 60 + 40);
    loop {
        let open = fixtures::open_quotes(&h.pool, quotes).await;
        let open = open.expect("open quotes");
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} quotes still open long after their expiry"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
}

/// Watch jobs that could still run for `quotes` (none, once their lives are over).
async fn live_watchers(h: &Harness, quotes: &[String]) -> i64 {
    sqlx::query_scalar(
        "select count(*) from apalis.jobs
          where job_type = 'openpleb.watch_mint_quote'
            and status in ('Pending', 'Queued', 'Running', 'Failed')
            and convert_from(job, 'UTF8')::jsonb ->> 'quote_id' = any($1)",
    )
    .bind(quotes)
    .fetch_one(&h.pool)
    .await
    .expect("watchers")
}

/// What each quote cost the mint, for the failure message.
fn costs(h: &Harness, quotes: &[String]) -> Vec<(String, u64)> {
    let counts = h.stack.mint.requests.snapshot();
    quotes
        .iter()
        .map(|q| (q.clone(), counts.of_quote(q)))
        .collect()
}

/// With the worker's NUT-17 subscription: unfunded offers created and cancelled, and a funded
/// offer whose two claims are lost to the maker's cancel. Every invoice nobody paid costs the
/// mint at most three requests over its life; a deposit and a bond paid after the cancel are
/// minted and refunded to their payers' keys in full, without waiting for their expiry.
#[sqlx::test(migrations = false)]
async fn an_ended_offers_invoices_cost_the_mint_three_requests(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_with_quote_ttl(opts, conn, TTL, |_| {}).await;
    let provider = h.provider().await;
    let maker = h.session().await;

    // Unfunded offers, cancelled at once; the last one's deposit is paid afterwards.
    let mut unpaid = Vec::new();
    for _ in 0..4 {
        let (_, quote, ..) = cancelled_offer(&h, &maker, provider).await;
        unpaid.push(quote);
    }
    let (late_id, late_quote, late_invoice, late_sats, late_key) =
        cancelled_offer(&h, &maker, provider).await;

    // A funded offer with two claims, cancelled: both claims are lost; one bond is paid later.
    // The takers' sessions are opened first, so the claims and the cancel come at once.
    let (funded, _) = h.funded_offer(&maker, provider).await;
    let mut bonds = Vec::new();
    let mut takers = Vec::new();
    for taker in [h.session().await, h.session().await] {
        let (sk, claim) = h.claim_unpaid(funded, &taker).await;
        bonds.push(claim["bond"].clone());
        takers.push((taker, sk));
    }
    h.cancel(funded, &maker).await;
    let unpaid_bond = bonds[0]["quoteId"].as_str().expect("quote").to_owned();
    unpaid.push(unpaid_bond);
    let late_bond = bonds[1]["quoteId"].as_str().expect("quote").to_owned();

    // Paid after their offers ended: the subscription reports them, they are minted and
    // refunded well before their expiry.
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.pay(&late_invoice, late_sats).await;
    let bond_sats = bonds[1]["amountSats"].as_u64().expect("sats");
    h.pay(bonds[1]["invoice"].as_str().expect("invoice"), bond_sats)
        .await;
    let paid_at = Instant::now();
    let refund = h.payouts_by_key(late_id, &late_key).await;
    assert_eq!(refund.len(), 1);
    assert_eq!(refund[0]["purpose"], "late_refund");
    assert_eq!(h.redeem(&refund, &late_key).await, late_sats);
    let (taker, taker_key) = &takers[1];
    let refund = h.released_payouts(funded, taker).await;
    assert_eq!(refund.len(), 1, "{refund:?}");
    assert_eq!(refund[0]["purpose"], "late_refund");
    assert_eq!(h.redeem(&refund, taker_key).await, bond_sats);
    assert!(
        paid_at.elapsed() < Duration::from_secs(TTL),
        "refunded through the subscription, not at the expiry"
    );

    let mut all = unpaid.clone();
    all.extend([late_quote.clone(), late_bond.clone()]);
    wait_whole_life(&h, &all).await;
    let counts = h.stack.mint.requests.snapshot();
    eprintln!("requests per quote: {:?}", costs(&h, &all));
    for quote in &unpaid {
        // Counted at all: its creation and its subscription.
        assert!(counts.of_quote(quote) >= 2, "{:?}", costs(&h, &all));
        assert!(
            counts.of_quote(quote) <= UNPAID_BUDGET,
            "an unpaid invoice of an ended offer cost the mint more than {UNPAID_BUDGET} \
             requests: {:?}",
            costs(&h, &unpaid)
        );
    }
    assert_eq!(live_watchers(&h, &all).await, 0, "nothing left watching");
    h.stop().await;
}

/// Without the subscription (a worker with it turned off): an invoice paid after its offer was
/// cancelled is minted and refunded at the last look, when the quote expires at the mint, and
/// the unpaid one costs the mint no more than its creation and that look (and perhaps one look
/// before the cancel).
#[sqlx::test(migrations = false)]
async fn without_the_subscription_the_last_look_refunds_a_late_payment(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_with_quote_ttl(opts, conn, TTL, |c| {
        c.worker.quote_subscription = false;
    })
    .await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (_, unpaid, ..) = cancelled_offer(&h, &maker, provider).await;
    let (late_id, late_quote, late_invoice, late_sats, late_key) =
        cancelled_offer(&h, &maker, provider).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.pay(&late_invoice, late_sats).await;

    let all = vec![unpaid.clone(), late_quote.clone()];
    wait_whole_life(&h, &all).await;
    let refund = h.payouts_by_key(late_id, &late_key).await;
    assert_eq!(refund.len(), 1);
    assert_eq!(refund[0]["purpose"], "late_refund");
    assert_eq!(h.redeem(&refund, &late_key).await, late_sats);
    eprintln!("requests per quote: {:?}", costs(&h, &all));
    let cost = h.stack.mint.requests.snapshot().of_quote(&unpaid);
    assert!(cost >= 1, "its creation is counted");
    assert!(cost <= UNPAID_BUDGET, "{:?}", costs(&h, &all));
    assert_eq!(live_watchers(&h, &all).await, 0, "nothing left watching");
    h.stop().await;
}
