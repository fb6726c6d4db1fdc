//! Reputation is not cheap to farm: a completed trade earns tokens only when its escrow
//! reaches `REPUTATION_MIN_EARN_SATS`, so two sessions of one user trading a cent with each
//! other earn nothing; they only get their stakes back. Real mint, real worker.

mod common;

use common::reputation::active;
use common::{body, payout_key, Harness, Session};
use openpleb_common::config::Config;
use openpleb_devkit::reputation::{unblind, Blinded};
use poem::http::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// The reputation settings as the binaries read them, with the floor at 100,000 sats (at the
/// test price of 60,000.00 per BTC: 60.00 of fiat).
fn floor(c: &mut Config) {
    let vars = [
        ("DATABASE_URL", "postgres://unused".to_owned()),
        ("MINT_URL", c.mint.url.clone()),
        ("WALLET_MASTER_SECRET", "42".repeat(32)),
        ("REPUTATION_SECRET", "17".repeat(32)),
        ("DATA_SECRETS", format!("1:{}", "da".repeat(32))),
        ("ADMIN_TOKEN", "test-admin-token-0123456789".to_owned()),
        ("OIDC_API_TOKEN", "test-oidc-token-0123456789".to_owned()),
        ("PRICE_FIXED", "60000".to_owned()),
        ("REPUTATION_MIN_EARN_SATS", "100000".to_owned()),
    ];
    let lookup = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    c.reputation = Config::from_lookup(lookup).expect("config").reputation;
}

/// A trade of `fiat` minor units where both parties send one output to earn; completed.
async fn trade(
    h: &Harness,
    maker: &Session,
    taker: &Session,
    provider: Uuid,
    fiat: i64,
    outs: (&Blinded, &Blinded),
) -> Uuid {
    let (_, key) = payout_key();
    let resp = h
        .public
        .post("/api/v1/offers")
        .header("Authorization", maker.bearer())
        .body_json(&json!({
            "fiatAmount": fiat, "currency": "EUR", "fiatProviderId": provider,
            "paymentDetails": "IBAN DE00 1234", "makerPayoutPubkey": key,
            "reputation": {"outputs": [outs.0.json()]},
        }))
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
    let v = body(resp).await;
    let id: Uuid = v["offer"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    h.pay(
        v["deposit"]["invoice"].as_str().expect("invoice"),
        v["deposit"]["amountSats"].as_u64().expect("sats"),
    )
    .await;
    h.wait_status(id, maker, "INVOICE_PAID").await;
    let (_, key) = payout_key();
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/claim"))
        .header("Authorization", taker.bearer())
        .body_json(&json!({"takerPayoutPubkey": key,
                           "reputation": {"outputs": [outs.1.json()]}}))
        .send()
        .await;
    resp.assert_status_is_ok();
    let v = body(resp).await;
    h.pay(
        v["bond"]["invoice"].as_str().expect("invoice"),
        v["bond"]["amountSats"].as_u64().expect("sats"),
    )
    .await;
    h.wait_status(id, taker, "TAKER_BOND_PAID").await;
    h.upload_receipt(id, taker).await.assert_status_is_ok();
    h.public
        .post(format!("/api/v1/offers/{id}/complete"))
        .header("Authorization", maker.bearer())
        .send()
        .await
        .assert_status_is_ok();
    id
}

async fn signatures(h: &Harness, who: &Session, id: Uuid) -> Value {
    let resp = h
        .public
        .get(format!("/api/v1/offers/{id}/reputation"))
        .header("Authorization", who.bearer())
        .send()
        .await;
    resp.assert_status_is_ok();
    body(resp).await
}

/// A 10.00 trade (16,667 sats) earns nothing; a 60.00 trade (100,000 sats) earns both a token.
#[sqlx::test(migrations = false)]
async fn only_a_trade_above_the_floor_earns(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, floor).await;
    let provider = h.provider().await;
    let (keyset, keys) = active(&h).await;
    let maker = h.session().await;
    let taker = h.session().await;

    let small = (
        Blinded::new(keyset).expect("b"),
        Blinded::new(keyset).expect("b"),
    );
    let id = trade(&h, &maker, &taker, provider, 1_000, (&small.0, &small.1)).await;
    h.wait_status(id, &maker, "COMPLETED").await;
    assert_eq!(signatures(&h, &maker, id).await, json!([]));
    assert_eq!(signatures(&h, &taker, id).await, json!([]));

    let big = (
        Blinded::new(keyset).expect("b"),
        Blinded::new(keyset).expect("b"),
    );
    let id = trade(&h, &maker, &taker, provider, 6_000, (&big.0, &big.1)).await;
    h.wait_status(id, &maker, "COMPLETED").await;
    let earned = unblind(&signatures(&h, &maker, id).await, &big.0, &keys).expect("DLEQ");
    assert!(earned.is_some(), "the maker earned at the floor");
    let earned = unblind(&signatures(&h, &taker, id).await, &big.1, &keys).expect("DLEQ");
    assert!(earned.is_some(), "the taker earned at the floor");
    h.stop().await;
}
