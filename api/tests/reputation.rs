//! Reputation tokens over HTTP: a client blinds outputs with cdk's wallet-side functions,
//! earns signatures by completing trades, unblinds them and verifies their DLEQ proofs against
//! `GET /reputation/keys`, and stakes the tokens on a new offer and claim, which the book then
//! shows. Stakes come back or burn by the outcome; refusals write nothing; no reputation table
//! names a session, user or key.

mod common;

use common::reputation::active;
use common::{body, expect_error, payout_key, Harness, Session};
use openpleb_devkit::reputation::{stake_json, unblind, Blinded};
use poem::http::StatusCode;
use poem::test::TestResponse;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

async fn create(
    h: &Harness,
    maker: &Session,
    provider: Uuid,
    reputation: Value,
    min_taker_stake: u32,
) -> TestResponse {
    let (_, key) = payout_key();
    h.public
        .post("/api/v1/offers")
        .header("Authorization", maker.bearer())
        .body_json(&json!({
            "fiatAmount": 1_000, "currency": "EUR", "fiatProviderId": provider,
            "paymentDetails": "IBAN DE00 1234", "makerPayoutPubkey": key,
            "minTakerStake": min_taker_stake, "reputation": reputation,
        }))
        .send()
        .await
}

async fn claim(h: &Harness, taker: &Session, id: &str, reputation: Value) -> TestResponse {
    let (_, key) = payout_key();
    h.public
        .post(format!("/api/v1/offers/{id}/claim"))
        .header("Authorization", taker.bearer())
        .body_json(&json!({"takerPayoutPubkey": key, "reputation": reputation}))
        .send()
        .await
}

async fn complete(h: &Harness, maker: &Session, taker: &Session, id: &str) {
    h.wait_status(id.parse().expect("id"), taker, "TAKER_BOND_PAID")
        .await;
    h.upload_receipt(id.parse().expect("id"), taker)
        .await
        .assert_status_is_ok();
    h.public
        .post(format!("/api/v1/offers/{id}/complete"))
        .header("Authorization", maker.bearer())
        .send()
        .await
        .assert_status_is_ok();
}

async fn signatures(h: &Harness, who: &Session, id: &str) -> Value {
    let resp = h
        .public
        .get(format!("/api/v1/offers/{id}/reputation"))
        .header("Authorization", who.bearer())
        .send()
        .await;
    resp.assert_status_is_ok();
    body(resp).await
}

/// Earn on completion, unblind, verify, stake on a new offer and claim; the stake and a new
/// token come back on the next completion.
#[sqlx::test(migrations = false)]
async fn earned_tokens_unblind_verify_and_stake(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let (keyset, keys) = active(&h).await;
    let maker = h.session().await;
    let taker = h.session().await;

    // Trade 1: both send one output to earn.
    let maker_out = Blinded::new(keyset).expect("blind");
    let taker_out = Blinded::new(keyset).expect("blind");
    let resp = create(
        &h,
        &maker,
        provider,
        json!({"outputs": [maker_out.json()]}),
        0,
    )
    .await;
    resp.assert_status(StatusCode::CREATED);
    let id = body(resp).await["offer"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    h.wait_status(id.parse().expect("id"), &maker, "INVOICE_PAID")
        .await;
    claim(&h, &taker, &id, json!({"outputs": [taker_out.json()]}))
        .await
        .assert_status_is_ok();
    // Nothing is signed before the trade ends.
    assert_eq!(signatures(&h, &maker, &id).await, json!([]));
    complete(&h, &maker, &taker, &id).await;

    let maker_token = unblind(&signatures(&h, &maker, &id).await, &maker_out, &keys)
        .expect("valid DLEQ")
        .expect("the maker earned");
    let taker_token = unblind(&signatures(&h, &taker, &id).await, &taker_out, &keys)
        .expect("valid DLEQ")
        .expect("the taker earned");
    // Each sees only its own signature.
    assert!(
        unblind(&signatures(&h, &maker, &id).await, &taker_out, &keys)
            .expect("parse")
            .is_none()
    );

    // Trade 2: the maker stakes its token and asks takers for one.
    let maker_back = Blinded::new(keyset).expect("blind");
    let maker_earn = Blinded::new(keyset).expect("blind");
    let stake = json!({
        "outputs": [maker_earn.json()],
        "stake": [stake_json(&maker_token)],
        "returnOutputs": [maker_back.json()],
    });
    let resp = create(&h, &maker, provider, stake.clone(), 1).await;
    resp.assert_status(StatusCode::CREATED);
    let id2 = body(resp).await["offer"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let v = h
        .wait_status(id2.parse().expect("id"), &maker, "INVOICE_PAID")
        .await;
    assert_eq!(v["makerStake"], 1, "{v}");
    assert_eq!(v["minTakerStake"], 1, "{v}");
    // The book shows the stake and filters by it.
    let book = body(h.public.get("/api/v1/offers?minMakerStake=1").send().await).await;
    let listed: Vec<_> = book["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    assert_eq!(listed, vec![json!(id2)], "{book}");
    let book = body(h.public.get("/api/v1/offers?minMakerStake=2").send().await).await;
    assert_eq!(book["items"], json!([]));
    // The same token cannot be staked twice; nothing is written.
    let offers_before: i64 = sqlx::query_scalar("select count(*) from offers")
        .fetch_one(&h.pool)
        .await
        .expect("count");
    let again = json!({
        "stake": [stake_json(&maker_token)],
        "returnOutputs": [Blinded::new(keyset).expect("blind").json()],
    });
    let resp = create(&h, &maker, provider, again, 0).await;
    expect_error(resp, StatusCode::CONFLICT, "token_already_staked").await;
    let offers_after: i64 = sqlx::query_scalar("select count(*) from offers")
        .fetch_one(&h.pool)
        .await
        .expect("count");
    assert_eq!(offers_before, offers_after);

    // A claim without the stake the maker asks for is refused; with it, it wins.
    let resp = claim(&h, &taker, &id2, json!({})).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "stake_too_small").await;
    let taker_back = Blinded::new(keyset).expect("blind");
    let resp = claim(
        &h,
        &taker,
        &id2,
        json!({"stake": [stake_json(&taker_token)], "returnOutputs": [taker_back.json()]}),
    )
    .await;
    resp.assert_status_is_ok();
    assert_eq!(body(resp).await["claim"]["stake"], 1);
    complete(&h, &maker, &taker, &id2).await;

    // Completion: the maker's stake comes back and it earns one more; the taker its stake.
    let signed = signatures(&h, &maker, &id2).await;
    for out in [&maker_back, &maker_earn] {
        let token = unblind(&signed, out, &keys).expect("DLEQ").expect("signed");
        assert_eq!(token.amount, cdk::Amount::from(1));
    }
    let signed = signatures(&h, &taker, &id2).await;
    assert!(unblind(&signed, &taker_back, &keys)
        .expect("DLEQ")
        .is_some());
    // And without a session, by the outputs themselves.
    let resp = h
        .public
        .post("/api/v1/reputation/signatures")
        .body_json(&json!({"outputs": [taker_back.b.to_hex(), maker_back.b.to_hex()]}))
        .send()
        .await;
    let by_outputs = body(resp).await;
    assert_eq!(by_outputs.as_array().map(Vec::len), Some(2), "{by_outputs}");
    h.stop().await;
}

/// Refusals, nothing written: a forged token, an unknown keyset, too large a stake, outputs
/// of the wrong amount, a missing return output.
#[sqlx::test(migrations = false)]
async fn bad_tokens_and_outputs_are_refused(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let (keyset, _) = active(&h).await;
    let maker = h.session().await;
    let out = || Blinded::new(keyset).expect("blind");
    let fake_token = |id: &str| {
        let b = out();
        json!({"amount": 1, "id": id, "secret": "00".repeat(32), "C": b.b.to_hex()})
    };
    let keyset_id = keyset.to_string();
    let cases = [
        (
            json!({"stake": [fake_token(&keyset_id)], "returnOutputs": [out().json()]}),
            "invalid_reputation_token",
        ),
        (
            json!({"stake": [fake_token("00ffffffffffffff")], "returnOutputs": [out().json()]}),
            "unknown_keyset",
        ),
        (
            json!({"stake": (0..6).map(|_| fake_token(&keyset_id)).collect::<Vec<_>>(),
                   "returnOutputs": (0..6).map(|_| out().json()).collect::<Vec<_>>()}),
            "stake_too_large",
        ),
        (
            json!({"stake": [fake_token(&keyset_id)], "returnOutputs": []}),
            "return_outputs_mismatch",
        ),
        (
            json!({"outputs": [{"amount": 1, "id": "00ffffffffffffff", "B_": out().b.to_hex()}]}),
            "unknown_keyset",
        ),
        (
            json!({"outputs": [out().json(), out().json()]}),
            "too_many_outputs",
        ),
    ];
    for (reputation, code) in cases {
        let resp = create(&h, &maker, provider, reputation, 0).await;
        expect_error(resp, StatusCode::BAD_REQUEST, code).await;
    }
    // An output of amount 2 breaks the schema.
    let two = json!({"outputs": [{"amount": 2, "id": keyset_id, "B_": out().b.to_hex()}]});
    create(&h, &maker, provider, two, 0)
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    let written: i64 = sqlx::query_scalar(
        "select (select count(*) from offers) + (select count(*) from reputation_outputs)
              + (select count(*) from reputation_spent)",
    )
    .fetch_one(&h.pool)
    .await
    .expect("count");
    assert_eq!(written, 0);
    h.stop().await;
}

/// Burning: a maker that loses a dispute loses its stake (its return output is never
/// signed), while the winning taker earns. A maker that cancels gets its stake back.
#[sqlx::test(migrations = false)]
async fn a_lost_dispute_burns_the_stake_and_a_cancel_returns_it(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let (keyset, keys) = active(&h).await;
    let maker = h.session().await;
    let taker = h.session().await;

    // Two tokens for the maker, earned by two completed trades (one output per trade).
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let out = Blinded::new(keyset).expect("blind");
        let resp = create(&h, &maker, provider, json!({"outputs": [out.json()]}), 0).await;
        let id = body(resp).await["offer"]["id"]
            .as_str()
            .expect("id")
            .to_owned();
        h.wait_status(id.parse().expect("id"), &maker, "INVOICE_PAID")
            .await;
        claim(&h, &taker, &id, json!({}))
            .await
            .assert_status_is_ok();
        complete(&h, &maker, &taker, &id).await;
        let signed = signatures(&h, &maker, &id).await;
        tokens.push(
            unblind(&signed, &out, &keys)
                .expect("DLEQ")
                .expect("earned"),
        );
    }

    // A cancelled offer returns its stake.
    let back = Blinded::new(keyset).expect("blind");
    let staked = json!({"stake": [stake_json(&tokens[0])], "returnOutputs": [back.json()]});
    let resp = create(&h, &maker, provider, staked, 0).await;
    let id = body(resp).await["offer"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    h.wait_status(id.parse().expect("id"), &maker, "INVOICE_PAID")
        .await;
    h.public
        .post(format!("/api/v1/offers/{id}/cancel"))
        .header("Authorization", maker.bearer())
        .send()
        .await
        .assert_status_is_ok();
    let signed = signatures(&h, &maker, &id).await;
    assert!(
        unblind(&signed, &back, &keys).expect("DLEQ").is_some(),
        "returned"
    );

    // A dispute the maker forfeits burns its stake; the taker, who disputed, earns.
    let burned = Blinded::new(keyset).expect("blind");
    let taker_earn = Blinded::new(keyset).expect("blind");
    let staked = json!({"stake": [stake_json(&tokens[1])], "returnOutputs": [burned.json()]});
    let resp = create(&h, &maker, provider, staked, 0).await;
    let id = body(resp).await["offer"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let uid: Uuid = id.parse().expect("id");
    h.wait_status(uid, &maker, "INVOICE_PAID").await;
    claim(&h, &taker, &id, json!({"outputs": [taker_earn.json()]}))
        .await
        .assert_status_is_ok();
    h.wait_status(uid, &taker, "TAKER_BOND_PAID").await;
    h.upload_receipt(uid, &taker).await.assert_status_is_ok();
    let reveal = |who: &Session, role| {
        let ts = chrono::Utc::now().timestamp_millis();
        json!({"pubkey": who.trader.pubkey(), "timestamp": ts,
               "signature": who.trader.sign_digest(
                   openpleb_common::domain::dispute::reveal_digest(uid, role, ts))})
    };
    use openpleb_common::domain::role::Role;
    let post = |who: &Session, path: String, v: Value| {
        h.public
            .post(path)
            .header("Authorization", who.bearer())
            .body_json(&v)
            .send()
    };
    post(
        &maker,
        format!("/api/v1/offers/{id}/issue"),
        json!({"reason": "other", "message": "hm", "reveal": reveal(&maker, Role::Maker)}),
    )
    .await
    .assert_status_is_ok();
    post(
        &taker,
        format!("/api/v1/offers/{id}/issue/answer"),
        json!({"action": "DISPUTE", "message": "paid", "reveal": reveal(&taker, Role::Taker)}),
    )
    .await
    .assert_status_is_ok();
    post(
        &maker,
        format!("/api/v1/offers/{id}/dispute/answer"),
        json!({"action": "FORFEIT"}),
    )
    .await
    .assert_status_is_ok();
    h.wait_status(uid, &maker, "RESOLVED").await;
    assert_eq!(
        signatures(&h, &maker, &id).await,
        json!([]),
        "the loser's stake is burned"
    );
    let signed = signatures(&h, &taker, &id).await;
    assert!(
        unblind(&signed, &taker_earn, &keys)
            .expect("DLEQ")
            .is_some(),
        "the winner earns"
    );
    let void: i64 = sqlx::query_scalar(
        "select count(*) from reputation_outputs where offer_id = $1 and state = 'void'",
    )
    .bind(uid)
    .fetch_one(&h.pool)
    .await
    .expect("count");
    assert_eq!(void, 1);
    h.stop().await;
}

/// The reputation tables name no session, user or key, and the spent-token table names no
/// offer: staking, issuing and returning cannot be joined to who anyone is.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn reputation_tables_name_nobody(pool: sqlx::PgPool) {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "select table_name::text, column_name::text from information_schema.columns
          where table_schema = 'public' and table_name like 'reputation%'",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    assert!(columns.len() >= 12, "{columns:?}");
    for (table, column) in &columns {
        for word in ["session", "user", "pubkey", "key"] {
            assert!(
                !column.contains(word) || column == "keyset_id",
                "{table}.{column} names a {word}"
            );
        }
        if table == "reputation_spent" {
            assert!(!column.contains("offer"), "{table}.{column}");
        }
    }
}

/// A claim that lapses (its bond never paid) gives the taker's stake back, fetchable by the
/// outputs alone since the taker is no longer a party.
#[sqlx::test(migrations = false)]
async fn a_lapsed_claim_returns_the_stake(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let (keyset, keys) = active(&h).await;
    let maker = h.session().await;
    let taker = h.session().await;

    // Earn a token: a trade completed with one output (payments made by hand).
    let (id, _) = h.funded_offer(&maker, provider).await;
    let earn = Blinded::new(keyset).expect("blind");
    let resp = claim(
        &h,
        &taker,
        &id.to_string(),
        json!({"outputs": [earn.json()]}),
    )
    .await;
    let v = body(resp).await;
    h.pay(
        v["bond"]["invoice"].as_str().expect("invoice"),
        v["bond"]["amountSats"].as_u64().expect("sats"),
    )
    .await;
    complete(&h, &maker, &taker, &id.to_string()).await;
    let token = unblind(&signatures(&h, &taker, &id.to_string()).await, &earn, &keys)
        .expect("DLEQ")
        .expect("earned");

    // Stake it on a claim whose bond is never paid.
    let (id2, _) = h.funded_offer(&maker, provider).await;
    let back = Blinded::new(keyset).expect("blind");
    let staked = json!({"stake": [stake_json(&token)], "returnOutputs": [back.json()]});
    claim(&h, &taker, &id2.to_string(), staked)
        .await
        .assert_status_is_ok();
    // The claim's deadline passes (the backstop lapses it within seconds).
    sqlx::query("update claims set expires_at = now() - interval '1 second' where offer_id = $1")
        .bind(id2)
        .execute(&h.pool)
        .await
        .expect("due");
    let mut lapsed = Value::Null;
    for _ in 0..80 {
        let resp = h
            .public
            .get(format!("/api/v1/offers/{id2}/claim"))
            .header("Authorization", taker.bearer())
            .send()
            .await;
        lapsed = body(resp).await;
        if lapsed["status"] == "LAPSED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(lapsed["status"], "LAPSED", "{lapsed}");
    let resp = h
        .public
        .post("/api/v1/reputation/signatures")
        .body_json(&json!({"outputs": [back.b.to_hex()]}))
        .send()
        .await;
    let signed = body(resp).await;
    let returned = unblind(&signed, &back, &keys).expect("DLEQ");
    assert!(returned.is_some(), "the stake came back: {signed}");
    h.stop().await;
}
