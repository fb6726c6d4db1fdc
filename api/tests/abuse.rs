//! The book and other traders' money against a cheap attacker: a session's claims are bounded
//! (they cost mint invoices), though they hide nothing; it cannot fill the book with its own
//! offers; and a taker never sees what belongs to an earlier claimant of the same offer. Real
//! mint, real worker; the mint pays invoices only when a test says so.

mod common;

use std::time::Duration;

use common::{body, expect_error, payout_key, Harness, Session};
use openpleb_common::config::Config;
use poem::http::StatusCode;
use poem::test::TestResponse;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// Claims lapse after two seconds (every other timer is long); one unpaid claim per session.
fn short_claims(c: &mut Config) {
    c.limits.claim_max_unpaid = 1;
    c.timers.invoice_created = Duration::from_secs(2);
}

/// Creates an offer as `maker`: the response of `POST /offers`.
async fn create(h: &Harness, maker: &Session, provider: Uuid) -> TestResponse {
    let (_, key) = payout_key();
    h.public
        .post("/api/v1/offers")
        .header("Authorization", maker.bearer())
        .body_json(
            &json!({"fiatAmount": 1_000, "currency": "EUR", "fiatProviderId": provider,
                           "paymentDetails": "IBAN", "makerPayoutPubkey": key}),
        )
        .send()
        .await
}

/// An offer of `maker`'s, funded and in the book.
async fn listed(h: &Harness, maker: &Session, provider: Uuid) -> Uuid {
    let resp = create(h, maker, provider).await;
    resp.assert_status(StatusCode::CREATED);
    let v = body(resp).await;
    let id = v["offer"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let invoice = v["deposit"]["invoice"].as_str().expect("invoice");
    h.pay(invoice, v["deposit"]["amountSats"].as_u64().expect("sats"))
        .await;
    h.wait_status(id, maker, "INVOICE_PAID").await;
    id
}

/// Claims `id` as `taker` without paying the bond: the response.
async fn claim(h: &Harness, id: Uuid, taker: &Session) -> TestResponse {
    let (_, key) = payout_key();
    h.public
        .post(format!("/api/v1/offers/{id}/claim"))
        .header("Authorization", taker.bearer())
        .body_json(&json!({"takerPayoutPubkey": key}))
        .send()
        .await
}

async fn status_and_body(resp: TestResponse) -> (StatusCode, Value) {
    let status = resp.0.status();
    (status, body(resp).await)
}

/// Claim griefing with one unpaid claim per session (two claims
/// racing count as two), no re-claim of an offer whose claim the session let lapse within the
/// cooldown (other sessions may claim it), and at most ten open offers per maker session.
#[sqlx::test(migrations = false)]
async fn one_session_cannot_keep_the_book_hidden(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, short_claims).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let griefer = h.session().await;
    let other = h.session().await;

    // Ten open offers (two listed, eight unfunded) and no more.
    let a = listed(&h, &maker, provider).await;
    let b = listed(&h, &maker, provider).await;
    for _ in 0..8 {
        create(&h, &maker, provider)
            .await
            .assert_status(StatusCode::CREATED);
    }
    expect_error(
        create(&h, &maker, provider).await,
        StatusCode::CONFLICT,
        "too_many_open_offers",
    )
    .await;

    // Two claims at once by one session: one is made, the other is refused and writes
    // nothing; both offers stay in the book (a claim hides nothing).
    let (ra, rb) = futures::join!(claim(&h, a, &griefer), claim(&h, b, &griefer));
    let (ra, rb) = (status_and_body(ra).await, status_and_body(rb).await);
    let (won, lost, refused) = match (ra.0, rb.0) {
        (StatusCode::OK, _) => (a, b, rb),
        (_, StatusCode::OK) => (b, a, ra),
        _ => panic!("neither claim was made: {ra:?} {rb:?}"),
    };
    assert_eq!(refused.0, StatusCode::CONFLICT, "{refused:?}");
    assert_eq!(refused.1["error"]["code"], "too_many_unpaid_claims");
    for id in [won, lost] {
        assert_eq!(
            body(h.get_offer(id, None).await).await["status"],
            "INVOICE_PAID"
        );
    }

    // The claim lapses: the session that let it lapse may not claim that offer for a while.
    wait_lapsed(&h, won, &griefer).await;
    let resp = claim(&h, won, &griefer).await;
    let retry: u64 = resp
        .0
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=600).contains(&retry), "{retry}");
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "claim_cooldown").await;
    // Anyone else may claim it; the lapsed claim is not held against the griefer's others.
    claim(&h, won, &other).await.assert_status_is_ok();
    claim(&h, lost, &griefer).await.assert_status_is_ok();

    // That claim lapses too; once the cooldown has passed the griefer may claim it again.
    wait_lapsed(&h, lost, &griefer).await;
    expect_error(
        claim(&h, lost, &griefer).await,
        StatusCode::TOO_MANY_REQUESTS,
        "claim_cooldown",
    )
    .await;
    sqlx::query("update claim_lapses set lapsed_at = now() - interval '11 minutes'")
        .execute(&h.pool)
        .await
        .expect("age the lapses");
    claim(&h, lost, &griefer).await.assert_status_is_ok();
    h.stop().await;
}

/// Waits until `who`'s claim of `id` has lapsed.
async fn wait_lapsed(h: &Harness, id: Uuid, who: &Session) {
    let mut last = Value::Null;
    for _ in 0..80 {
        let resp = h
            .public
            .get(format!("/api/v1/offers/{id}/claim"))
            .header("Authorization", who.bearer())
            .send()
            .await;
        last = body(resp).await;
        if last["status"] == "LAPSED" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the claim of {id} never lapsed: {last}");
}

/// The payouts an offer's party sees.
async fn payouts(h: &Harness, id: Uuid, who: &Session) -> Value {
    let resp = h
        .public
        .get(format!("/api/v1/offers/{id}/payouts"))
        .header("Authorization", who.bearer())
        .send()
        .await;
    resp.assert_status_is_ok();
    body(resp).await
}

/// Taker A lets its claim lapse and pays the bond late; the bond is refunded to A.
/// Taker B then claims the same offer: B's payouts do not include A's refund (B could not
/// redeem it, and it tells B about another trader), while A still sees its own.
#[sqlx::test(migrations = false)]
async fn a_previous_takers_refund_is_not_shown_to_the_next(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_configured(opts, conn, short_claims).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let a = h.session().await;
    let b = h.session().await;
    let id = listed(&h, &maker, provider).await;

    let resp = claim(&h, id, &a).await;
    resp.assert_status_is_ok();
    let bond = body(resp).await["bond"].clone();
    wait_lapsed(&h, id, &a).await;
    h.pay(
        bond["invoice"].as_str().expect("invoice"),
        bond["amountSats"].as_u64().expect("sats"),
    )
    .await;
    let refund = h.released_payouts(id, &a).await;
    assert_eq!(refund.len(), 1, "{refund:?}");
    assert_eq!(refund[0]["purpose"], "late_refund");

    // B claims and pays its bond: B is the taker now, and sees nothing of A's.
    let resp = claim(&h, id, &b).await;
    resp.assert_status_is_ok();
    let bond = body(resp).await["bond"].clone();
    h.pay(
        bond["invoice"].as_str().expect("invoice"),
        bond["amountSats"].as_u64().expect("sats"),
    )
    .await;
    h.wait_status(id, &b, "TAKER_BOND_PAID").await;
    assert_eq!(payouts(&h, id, &b).await, json!([]), "nothing of A's");
    assert_eq!(
        payouts(&h, id, &a).await,
        json!(refund),
        "A still sees its own"
    );
    h.stop().await;
}
