//! Reputation refusals on `POST /offers/{id}/claim`, each writing nothing: a token
//! already staked (409), a forged token (400), more than `REPUTATION_MAX_STAKE` tokens (400);
//! and an output under a real keyset of another unit (the dev mint's `sat` keyset), refused on
//! a claim and on an offer (400). A good token sent beside a refused one is not spent: it is
//! staked at the end. `reputation.rs` has the same refusals on `POST /offers`.

mod common;

use cdk::nuts::{CurrencyUnit, Id};
use common::reputation::{active, issued};
use common::{Harness, Reply, Session, Trade};
use openpleb_devkit::reputation::{stake_json, Blinded};
use openpleb_devkit::scenario::trade::try_claim_with;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

async fn claim(h: &Harness, taker: &Session, id: Uuid, reputation: Value) -> Reply {
    let extra = json!({ "reputation": reputation });
    try_claim_with(h, id, taker, extra).await.expect("claim").0
}

/// What a claim writes: offers, their events, quotes (the bond's), spent tokens, kept
/// outputs, and the claimed offer's status, taker and stake. (Not jobs: the worker's periodic
/// runs enqueue those meanwhile.)
async fn footprint(h: &Harness, id: Uuid) -> Vec<String> {
    let counts: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from offers), (select count(*) from offer_events),
                (select count(*) from wallet_quotes), (select count(*) from reputation_spent),
                (select count(*) from reputation_outputs)",
    )
    .fetch_one(&h.pool)
    .await
    .expect("counts");
    let offer: (String, Option<Uuid>, i32) =
        sqlx::query_as("select status, taker_session_id, taker_stake from offers where id = $1")
            .bind(id)
            .fetch_one(&h.pool)
            .await
            .expect("offer");
    vec![format!("{counts:?}"), format!("{offer:?}")]
}

/// The dev mint's active keyset of unit `sat`: a real keyset id, but not a reputation one.
fn sat_keyset(h: &Harness) -> Id {
    h.stack
        .mint
        .mint
        .keysets()
        .keysets
        .into_iter()
        .find(|k| k.unit == CurrencyUnit::Sat && k.active)
        .map(|k| k.id)
        .expect("the mint's sat keyset")
}

#[sqlx::test(migrations = false)]
async fn bad_stakes_on_a_claim_are_refused_and_write_nothing(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_manual(opts, conn).await;
    let (keyset, keys) = active(&h).await;
    let out = || Blinded::new(keyset).expect("blind").json();
    let (provider, [maker, first, taker]) = h.cast().await;

    // A token staked once, on another offer's claim that won.
    let spent = issued(&h, keyset, &keys);
    let (other, _) = h.funded_offer(&maker, provider).await;
    claim(
        &h,
        &first,
        other,
        json!({"stake": [stake_json(&spent)], "returnOutputs": [out()]}),
    )
    .await
    .expect(200)
    .expect("claimed");
    // The offer every refused claim aims at, in the book.
    let (id, _) = h.funded_offer(&maker, provider).await;
    let before = footprint(&h, id).await;
    assert!(before[1].contains("INVOICE_PAID"), "{before:?}");
    let good = issued(&h, keyset, &keys);

    // Staked again, behind a good token: 409, and the good one is not spent either.
    let resp = claim(
        &h,
        &taker,
        id,
        json!({"outputs": [out()], "stake": [stake_json(&good), stake_json(&spent)],
               "returnOutputs": [out(), out()]}),
    )
    .await;
    resp.refused(409, "token_already_staked").expect("refused");
    assert_eq!(footprint(&h, id).await, before, "a token staked twice");

    // Forged: a real signature, on another token's secret.
    let mut forged = stake_json(&issued(&h, keyset, &keys));
    forged["C"] = stake_json(&spent)["C"].clone();
    let resp = claim(
        &h,
        &taker,
        id,
        json!({"stake": [stake_json(&good), forged], "returnOutputs": [out(), out()]}),
    )
    .await;
    resp.refused(400, "invalid_reputation_token")
        .expect("refused");
    assert_eq!(footprint(&h, id).await, before, "a forged token");

    // One more than REPUTATION_MAX_STAKE, every one of them genuine.
    let max = h.trade_ctx().config.reputation.max_stake;
    let many: Vec<Value> = (0..=max)
        .map(|_| stake_json(&issued(&h, keyset, &keys)))
        .collect();
    let returns: Vec<Value> = (0..=max).map(|_| out()).collect();
    let resp = claim(
        &h,
        &taker,
        id,
        json!({"stake": many, "returnOutputs": returns}),
    )
    .await;
    resp.refused(400, "stake_too_large").expect("refused");
    assert_eq!(footprint(&h, id).await, before, "too large a stake");

    // An output under the mint's sat keyset: a keyset that exists, of another unit.
    let sat = Blinded::new(sat_keyset(&h)).expect("blind").json();
    assert_eq!(sat["amount"], 1);
    let resp = claim(&h, &taker, id, json!({"outputs": [sat.clone()]})).await;
    resp.refused(400, "unknown_keyset").expect("refused");
    let resp = claim(
        &h,
        &taker,
        id,
        json!({"stake": [stake_json(&good)], "returnOutputs": [sat.clone()]}),
    )
    .await;
    resp.refused(400, "unknown_keyset").expect("refused");
    assert_eq!(footprint(&h, id).await, before, "a sat keyset output");
    // The same on a new offer: no offer, no output.
    let plan = Trade::new(&h).maker(&maker).provider(provider).fiat(1_000);
    let plan = plan.field("paymentDetails", json!("IBAN DE00 1234"));
    let mut plan = plan.field("reputation", json!({"outputs": [sat]}));
    let (resp, _, _) = plan.send().await.expect("offer");
    resp.refused(400, "unknown_keyset").expect("refused");
    assert_eq!(
        footprint(&h, id).await,
        before,
        "a sat keyset output on an offer"
    );

    // The good token was never spent: it stakes now, and the claim wins.
    let resp = claim(
        &h,
        &taker,
        id,
        json!({"stake": [stake_json(&good)], "returnOutputs": [out()]}),
    )
    .await;
    let v = resp.expect(200).expect("claimed");
    assert_eq!(v["claim"]["stake"], 1, "{v}");
    h.stop().await;
}
