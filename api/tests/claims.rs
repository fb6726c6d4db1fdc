//! Claims race by their bonds: a claim hides nothing until its bond is paid. Many sessions
//! holding unpaid claims leave every offer in the book; of several takers who pay, the first
//! bond minted wins and every other bond comes back to its payer's key; a bond and the maker's
//! cancel racing end one way. Real mint, real worker; the mint pays invoices only when a test
//! says so.

mod common;

use std::time::Duration;

use common::{balanced, body, expect_error, payout_key, Harness, Session};
use openpleb_common::config::Config;
use poem::http::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// A claim made without paying: the taker's key, the bond invoice and its sats.
struct Unpaid {
    key: cdk::nuts::SecretKey,
    invoice: String,
    sats: u64,
    claim: Value,
}

async fn claim_unpaid(h: &Harness, id: Uuid, taker: &Session) -> Unpaid {
    let (key, pubkey) = payout_key();
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/claim"))
        .header("Authorization", taker.bearer())
        .body_json(&json!({"takerPayoutPubkey": pubkey}))
        .send()
        .await;
    let status = resp.0.status();
    let v = body(resp).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    Unpaid {
        key,
        invoice: v["bond"]["invoice"].as_str().expect("invoice").to_owned(),
        sats: v["bond"]["amountSats"].as_u64().expect("sats"),
        claim: v["claim"].clone(),
    }
}

/// The anonymous book, uncached.
async fn book(h: &Harness) -> Vec<Value> {
    let resp = h.public.get("/api/v1/offers?limit=100").send().await;
    resp.assert_status_is_ok();
    body(resp).await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The session's claim of `id`, as `GET /offers/{id}/claim` shows it.
async fn my_claim(h: &Harness, id: Uuid, who: &Session) -> Value {
    let resp = h
        .public
        .get(format!("/api/v1/offers/{id}/claim"))
        .header("Authorization", who.bearer())
        .send()
        .await;
    let status = resp.0.status();
    let v = body(resp).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

async fn wait_claim(h: &Harness, id: Uuid, who: &Session, status: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..120 {
        last = my_claim(h, id, who).await;
        if last["status"] == status {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("claim of {id} never reached {status}: {last}");
}

fn uncached(c: &mut Config) {
    c.api.book_cache = Duration::ZERO;
}

/// Thirty sessions claim three offers without paying: every offer stays listed, and the book
/// says how many claims wait on each. One more claim on a full offer is refused.
#[sqlx::test(migrations = false)]
async fn unpaid_claims_hide_nothing(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, uncached).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let mut offers = Vec::new();
    for _ in 0..3 {
        offers.push(h.funded_offer(&maker, provider).await.0);
    }
    for i in 0..30 {
        let taker = h.session().await;
        let c = claim_unpaid(&h, offers[i % 3], &taker).await;
        assert_eq!(c.claim["status"], "PENDING");
    }
    let listed = book(&h).await;
    for id in &offers {
        let entry = listed
            .iter()
            .find(|o| o["id"] == id.to_string())
            .unwrap_or_else(|| panic!("offer {id} left the book: {listed:?}"));
        assert_eq!(entry["status"], "INVOICE_PAID");
        assert_eq!(entry["pendingClaims"], 10, "{entry}");
    }
    let late = h.session().await;
    let (_, key) = payout_key();
    let resp = h
        .public
        .post(format!("/api/v1/offers/{}/claim", offers[0]))
        .header("Authorization", late.bearer())
        .body_json(&json!({"takerPayoutPubkey": key}))
        .send()
        .await;
    expect_error(resp, StatusCode::CONFLICT, "too_many_claims").await;
    h.stop().await;
}

/// Two takers pay their bonds for one offer: the first bond minted wins (the winner sees the
/// payment details), the other claim is lost and its bond comes back to its payer's key in
/// full (this mint charges no fees), redeemed with that key.
#[sqlx::test(migrations = false)]
async fn the_first_bond_wins_and_the_other_comes_back(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (id, _) = h.funded_offer(&maker, provider).await;
    let first = h.session().await;
    let second = h.session().await;
    let a = claim_unpaid(&h, id, &first).await;
    let b = claim_unpaid(&h, id, &second).await;
    // Claims change nothing the maker sees.
    let seen = body(h.get_offer(id, Some(&maker)).await).await;
    assert_eq!(seen["status"], "INVOICE_PAID");
    h.pay(&a.invoice, a.sats).await;
    let won = h.wait_status(id, &first, "TAKER_BOND_PAID").await;
    assert_eq!(won["role"], "taker");
    assert!(won["paymentDetails"].is_string(), "{won}");
    wait_claim(&h, id, &first, "WON").await;
    h.pay(&b.invoice, b.sats).await;
    wait_claim(&h, id, &second, "LOST").await;
    // The loser sees nothing of the trade, but gets its bond back.
    h.get_offer(id, Some(&second))
        .await
        .assert_status(StatusCode::NOT_FOUND);
    let refund = h.released_payouts(id, &second).await;
    assert_eq!(refund.len(), 1);
    assert_eq!(refund[0]["purpose"], "late_refund");
    assert_eq!(refund[0]["amountSats"], b.sats);
    assert_eq!(refund[0]["feeSats"], 0);
    assert_eq!(h.redeem(&refund, &b.key).await, b.sats);
    // The trade goes on with the winner.
    h.upload_receipt(id, &first).await.assert_status_is_ok();
    h.public
        .post(format!("/api/v1/offers/{id}/complete"))
        .header("Authorization", maker.bearer())
        .send()
        .await
        .assert_status_is_ok();
    let paid = h.released_payouts(id, &first).await;
    assert!(h.redeem(&paid, &a.key).await > a.sats);
    balanced(&h, 1).await;
    h.stop().await;
}

/// A bond paid while the maker cancels: one outcome. Either the cancel wins (the maker gets
/// the deposit back, the bond is refunded) or the bond does (the cancel is refused and the
/// trade goes on); never both, never neither.
#[sqlx::test(migrations = false)]
async fn a_bond_racing_a_cancel_has_one_outcome(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        let (id, maker_key) = h.funded_offer(&maker, provider).await;
        let taker = h.session().await;
        let c = claim_unpaid(&h, id, &taker).await;
        let cancel = h
            .public
            .post(format!("/api/v1/offers/{id}/cancel"))
            .header("Authorization", maker.bearer());
        let (_, cancelled) = tokio::join!(h.pay(&c.invoice, c.sats), cancel.send());
        let cancelled = cancelled.0.status();
        let claim = loop {
            let v = my_claim(&h, id, &taker).await;
            if v["status"] != "PENDING" {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let offer = body(h.get_offer(id, Some(&maker)).await).await;
        if cancelled == StatusCode::OK {
            assert_eq!(offer["status"], "CANCELLED", "{offer}");
            assert_eq!(claim["status"], "LOST", "{claim}");
            let refund = h.released_payouts(id, &taker).await;
            assert_eq!(h.redeem(&refund, &c.key).await, c.sats);
            let back = h.released_payouts(id, &maker).await;
            assert!(h.redeem(&back, &maker_key).await > 0);
            outcomes.push("cancelled");
        } else {
            assert_eq!(cancelled, StatusCode::CONFLICT);
            assert_eq!(offer["status"], "TAKER_BOND_PAID", "{offer}");
            assert_eq!(claim["status"], "WON", "{claim}");
            outcomes.push("bond");
        }
    }
    eprintln!("outcomes: {outcomes:?}");
    h.stop().await;
}
