//! Reputation is not cheap to farm: a completed trade earns tokens only when its escrow
//! reaches `REPUTATION_MIN_EARN_SATS`, so two sessions of one user trading a cent with each
//! other earn nothing; they only get their stakes back. Real mint, real worker.

mod common;

use common::reputation::active;
use common::{read_config, Harness, Session, Trade, Transport};
use openpleb_common::config::Config;
use openpleb_devkit::reputation::{unblind, Blinded};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// The reputation settings as the binaries read them, with the floor at 100,000 sats (at the
/// test price of 60,000.00 per BTC: 60.00 of fiat).
fn floor(c: &mut Config) {
    c.reputation = read_config(&c.mint.url, ("REPUTATION_MIN_EARN_SATS", "100000")).reputation;
}

/// A trade of `fiat` minor units where both parties send one output to earn; completed.
async fn trade(
    h: &Harness,
    (maker, taker): (&Session, &Session),
    provider: Uuid,
    fiat: i64,
    outs: (&Blinded, &Blinded),
) -> anyhow::Result<Uuid> {
    let plan = Trade::new(h)
        .maker(maker)
        .taker(taker)
        .provider(provider)
        .fiat(fiat);
    let plan = plan.field("paymentDetails", json!("IBAN DE00 1234"));
    let plan = plan.field("reputation", json!({"outputs": [outs.0.json()]}));
    let plan = plan.claim_field("reputation", json!({"outputs": [outs.1.json()]}));
    Ok(plan.completed().await?.id)
}

async fn signatures(h: &Harness, who: &Session, id: Uuid) -> anyhow::Result<Value> {
    h.get(&format!("/offers/{id}/reputation"), who)
        .await?
        .expect(200)
}

/// A 10.00 trade (16,667 sats) earns nothing; a 60.00 trade (100,000 sats) earns both a token.
#[sqlx::test(migrations = false)]
async fn only_a_trade_above_the_floor_earns(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let h = Harness::start_configured(opts, conn, floor).await;
    let provider = h.provider().await;
    let (keyset, keys) = active(&h).await;
    let parties = (&h.session().await, &h.session().await);
    let (maker, taker) = parties;

    let small = (Blinded::new(keyset)?, Blinded::new(keyset)?);
    let id = trade(&h, parties, provider, 1_000, (&small.0, &small.1)).await?;
    h.wait_status(id, maker, "COMPLETED").await;
    assert_eq!(signatures(&h, maker, id).await?, json!([]));
    assert_eq!(signatures(&h, taker, id).await?, json!([]));

    let big = (Blinded::new(keyset)?, Blinded::new(keyset)?);
    let id = trade(&h, parties, provider, 6_000, (&big.0, &big.1)).await?;
    h.wait_status(id, maker, "COMPLETED").await;
    let earned = unblind(&signatures(&h, maker, id).await?, &big.0, &keys)?;
    assert!(earned.is_some(), "the maker earned at the floor");
    let earned = unblind(&signatures(&h, taker, id).await?, &big.1, &keys)?;
    assert!(earned.is_some(), "the taker earned at the floor");
    h.stop().await;
    Ok(())
}
