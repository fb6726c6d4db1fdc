//! Each party's reputation stake across every way a trade ends: each party stakes a
//! token and sends an output to earn, and afterwards holds exactly what the rules give it, no
//! more: an expiry in each state, every dispute path (each side forfeiting, each side silent,
//! the four admin resolutions). Signatures are fetched by output (no session needed) and
//! unblinded with their DLEQ proofs checked; a party's own key fetches them without a session.
//!
//! Tokens to stake are issued by the server's own issuer (the keys `GET /reputation/keys`
//! publishes), as a completed trade would; `reputation.rs` earns them through trades.

mod common;

use cdk::nuts::{Id, Keys, SecretKey};
use common::dispute::{
    maker_answers, mark_issue, registered_key, resolve, taker_answers, Amounts, Trade,
};
use common::reputation::{active, issued};
use common::{body, expect_error, Harness, Session, ADMIN};
use openpleb_common::trade::reputation::key_proof_message;
use openpleb_devkit::reputation::{stake_json, unblind, Blinded};
use openpleb_devkit::scenario::trade::{invoice, try_claim_with};
use poem::http::StatusCode;
use poem::test::TestResponse;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// One party's reputation on one trade: a staked token's return output and an earn output.
struct Rep {
    earn: Blinded,
    back: Blinded,
}

impl Rep {
    /// A token to stake and the two outputs; returns the request's `reputation` too.
    fn new(h: &Harness, keyset: Id, keys: &Keys) -> (Self, Value) {
        let token = issued(h, keyset, keys);
        let rep = Self {
            earn: Blinded::new(keyset).expect("blind"),
            back: Blinded::new(keyset).expect("blind"),
        };
        let v = json!({"outputs": [rep.earn.json()], "stake": [stake_json(&token)],
                       "returnOutputs": [rep.back.json()]});
        (rep, v)
    }
}

/// Asserts the party got exactly: a new token if `earned`, its stake back if `returned`.
async fn holds(h: &Harness, keys: &Keys, rep: &Rep, earned: bool, returned: bool, what: &str) {
    let resp = h
        .public
        .post("/api/v1/reputation/signatures")
        .body_json(&json!({"outputs": [rep.earn.b.to_hex(), rep.back.b.to_hex()]}))
        .send()
        .await;
    resp.assert_status_is_ok();
    let signed = body(resp).await;
    let got_earn = unblind(&signed, &rep.earn, keys).expect("DLEQ").is_some();
    let got_back = unblind(&signed, &rep.back, keys).expect("DLEQ").is_some();
    assert_eq!(
        (got_earn, got_back),
        (earned, returned),
        "{what}: (earned, stake back) {signed}"
    );
    assert_eq!(
        signed.as_array().map(Vec::len),
        Some(usize::from(earned) + usize::from(returned)),
        "{what}: {signed}"
    );
}

/// Outputs of the offer still waiting for its end.
async fn pending(h: &Harness, id: Uuid) -> i64 {
    sqlx::query_scalar(
        "select count(*) from reputation_outputs where offer_id = $1 and state = 'pending'",
    )
    .bind(id)
    .fetch_one(&h.pool)
    .await
    .expect("pending")
}

/// Makes the offer's current state overdue; the expiry backstop lapses it within seconds.
async fn overdue(h: &Harness, id: Uuid) {
    sqlx::query("update offers set expires_at = now() - interval '1 second' where id = $1")
        .bind(id)
        .execute(&h.pool)
        .await
        .expect("overdue");
}

/// An offer with a maker stake; its deposit paid unless `unpaid`. Returns (id, maker's
/// reputation, maker's payout key).
async fn staked_offer(
    h: &Harness,
    maker: &Session,
    provider: Uuid,
    (keyset, keys): (Id, &Keys),
    unpaid: bool,
) -> (Uuid, Rep, SecretKey) {
    let (rep, reputation) = Rep::new(h, keyset, keys);
    let plan = common::Trade::new(h)
        .maker(maker)
        .provider(provider)
        .fiat(1_000);
    let plan = plan.field("paymentDetails", json!("IBAN DE00 1234"));
    let plan = plan.field("reputation", reputation);
    let trade = if unpaid {
        plan.await
    } else {
        plan.funded().await
    };
    let trade = trade.expect("staked offer");
    let v = &trade.created;
    assert_eq!(v["offer"]["makerStake"], 1, "{v}");
    (trade.id, rep, trade.maker_key)
}

/// A claim with a taker stake; the bond paid unless `unpaid`.
async fn staked_claim(
    h: &Harness,
    id: Uuid,
    taker: &Session,
    (keyset, keys): (Id, &Keys),
    unpaid: bool,
) -> Rep {
    let (rep, reputation) = Rep::new(h, keyset, keys);
    let extra = json!({ "reputation": reputation });
    let (reply, _) = try_claim_with(h, id, taker, extra).await.expect("claim");
    let v = reply.expect(200).expect("claimed");
    if !unpaid {
        let (invoice, sats) = invoice(&v["bond"]).expect("bond");
        h.pay(&invoice, sats).await;
        h.wait_status(id, taker, "TAKER_BOND_PAID").await;
    }
    rep
}

/// A staked trade taken to RECEIPT_SUBMITTED, as the dispute helpers want it.
struct Staked {
    t: Trade,
    maker: Rep,
    taker: Rep,
    maker_sk: SecretKey,
}

async fn staked_to_receipt(h: &Harness, provider: Uuid, keys: (Id, &Keys)) -> Staked {
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, maker_rep, maker_sk) = staked_offer(h, &maker, provider, keys, false).await;
    let taker_rep = staked_claim(h, id, &taker, keys, false).await;
    h.upload_receipt(id, &taker).await.assert_status_is_ok();
    h.wait_status(id, &maker, "RECEIPT_SUBMITTED").await;
    let zero = Amounts {
        s: 0,
        pf: 0,
        tf: 0,
        mb: 0,
        tb: 0,
    };
    Staked {
        t: Trade {
            id,
            maker,
            taker,
            amounts: zero,
        },
        maker: maker_rep,
        taker: taker_rep,
        maker_sk,
    }
}

/// `POST /offers/{id}/reputation/by-key`, signed by `sk` at `timestamp`.
async fn by_key(h: &Harness, id: Uuid, sk: &SecretKey, timestamp: i64) -> TestResponse {
    let msg = key_proof_message(id, timestamp);
    let signature = sk.sign(msg.as_bytes()).expect("sign").to_string();
    h.public
        .post(format!("/api/v1/offers/{id}/reputation/by-key"))
        .body_json(&json!({
            "payoutPubkey": sk.public_key().x_only_public_key().to_string(),
            "timestamp": timestamp, "signature": signature,
        }))
        .send()
        .await
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An expiry in each state: nobody's fault before a bond (stakes back, nothing earned); a
/// lapsed claim gives the taker its stake back and leaves the maker's waiting; no receipt burns
/// the taker's stake; maker silence completes (both earn and get their stakes back); taker
/// silence on an issue loses to the maker; maker silence on a dispute counters, and the stakes
/// wait for the admin.
#[sqlx::test(migrations = false)]
async fn an_expiry_in_each_state_returns_or_burns_by_the_rules(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_configured(opts, conn, |_| {}).await;
    let provider = h.provider().await;
    let (keyset, keys) = active(&h).await;
    let k = (keyset, &keys);

    // CREATED: the deposit is never paid.
    let maker = h.session().await;
    let (id, rep, _) = staked_offer(&h, &maker, provider, k, true).await;
    overdue(&h, id).await;
    h.wait_status(id, &maker, "EXPIRED").await;
    holds(&h, &keys, &rep, false, true, "CREATED lapse, maker").await;
    assert_eq!(pending(&h, id).await, 0);

    // INVOICE_PAID: the offer's lifetime ends unclaimed.
    let (id, rep, _) = staked_offer(&h, &maker, provider, k, false).await;
    overdue(&h, id).await;
    h.wait_status(id, &maker, "EXPIRED").await;
    holds(&h, &keys, &rep, false, true, "INVOICE_PAID lapse, maker").await;

    // A claim whose bond is never paid lapses; the offer never left the book and the maker's
    // stake stays on it. Then TAKER_BOND_PAID: a second taker pays its bond and sends no
    // receipt.
    let (id, maker_rep, _) = staked_offer(&h, &maker, provider, k, false).await;
    let lapsed = h.session().await;
    let lapsed_rep = staked_claim(&h, id, &lapsed, k, true).await;
    sqlx::query("update claims set expires_at = now() - interval '1 second' where offer_id = $1")
        .bind(id)
        .execute(&h.pool)
        .await
        .expect("claim overdue");
    for _ in 0..80 {
        let status: String = sqlx::query_scalar("select status from claims where offer_id = $1")
            .bind(id)
            .fetch_one(&h.pool)
            .await
            .expect("claim");
        if status == "LAPSED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    holds(&h, &keys, &lapsed_rep, false, true, "lapsed claim, taker").await;
    holds(
        &h,
        &keys,
        &maker_rep,
        false,
        false,
        "lapsed claim, maker (waits)",
    )
    .await;
    assert_eq!(pending(&h, id).await, 2, "the maker's outputs wait");
    let taker = h.session().await;
    let taker_rep = staked_claim(&h, id, &taker, k, false).await;
    overdue(&h, id).await;
    h.wait_status(id, &maker, "EXPIRED").await;
    holds(&h, &keys, &maker_rep, false, true, "no receipt, maker").await;
    holds(&h, &keys, &taker_rep, false, false, "no receipt, taker").await;
    assert_eq!(pending(&h, id).await, 0);

    // RECEIPT_SUBMITTED: maker silence is consent.
    let s = staked_to_receipt(&h, provider, k).await;
    overdue(&h, s.t.id).await;
    h.wait_status(s.t.id, &s.t.maker, "COMPLETED").await;
    holds(&h, &keys, &s.maker, true, true, "maker silence, maker").await;
    holds(&h, &keys, &s.taker, true, true, "maker silence, taker").await;
    // The maker's payout key fetches the same signatures without a session.
    let resp = by_key(&h, s.t.id, &s.maker_sk, now_ms()).await;
    resp.assert_status_is_ok();
    let signed = body(resp).await;
    assert!(unblind(&signed, &s.maker.earn, &keys)
        .expect("DLEQ")
        .is_some());
    assert!(unblind(&signed, &s.maker.back, &keys)
        .expect("DLEQ")
        .is_some());
    assert_eq!(signed.as_array().map(Vec::len), Some(2), "{signed}");

    // MARKED_WITH_ISSUE: taker silence is a forfeit.
    let s = staked_to_receipt(&h, provider, k).await;
    mark_issue(&h, &s.t).await.assert_status_is_ok();
    overdue(&h, s.t.id).await;
    let v = h.wait_status(s.t.id, &s.t.maker, "RESOLVED").await;
    assert_eq!(v["outcome"], "MAKER_WINS", "{v}");
    holds(&h, &keys, &s.maker, true, true, "taker silence, maker").await;
    holds(&h, &keys, &s.taker, false, false, "taker silence, taker").await;

    // DISPUTED: maker silence counters; the stakes wait for an admin, who returns both.
    let s = staked_to_receipt(&h, provider, k).await;
    mark_issue(&h, &s.t).await.assert_status_is_ok();
    taker_answers(&h, &s.t, "DISPUTE")
        .await
        .assert_status_is_ok();
    overdue(&h, s.t.id).await;
    let mut stage = Value::Null;
    for _ in 0..40 {
        let d = body(
            h.public
                .get(format!("/api/v1/offers/{}/dispute", s.t.id))
                .header("Authorization", s.t.taker.bearer())
                .send()
                .await,
        )
        .await;
        stage = d["stage"].clone();
        if stage == "waiting_admin" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(stage, "waiting_admin");
    assert_eq!(
        pending(&h, s.t.id).await,
        4,
        "nothing decided before the admin"
    );
    resolve(&h, s.t.id, ADMIN, "RETURN")
        .await
        .assert_status_is_ok();
    h.wait_status(s.t.id, &s.t.maker, "RESOLVED").await;
    holds(&h, &keys, &s.maker, false, true, "RETURN, maker").await;
    holds(&h, &keys, &s.taker, false, true, "RETURN, taker").await;
    assert_eq!(pending(&h, s.t.id).await, 0);

    // Spent tokens keep their day only: no offer's creation or claim time matches one.
    let exact: i64 = sqlx::query_scalar(
        "select count(*) from reputation_spent s
          where s.spent_at <> date_trunc('day', s.spent_at)
             or exists (select 1 from offers o
                         where o.created_at = s.spent_at or o.state_entered_at = s.spent_at)",
    )
    .fetch_one(&h.pool)
    .await
    .expect("spent");
    assert_eq!(exact, 0);
    h.stop().await;
}

/// Every dispute path, both sides' stakes: the side that forfeits (taker or maker) or that an
/// admin decides against loses its stake and the other earns and gets its stake back; RETURN
/// and SPLIT return both and earn nothing. The taker, after disputing, fetches its signatures
/// with the registered key it revealed; a key that is no party's gets nothing; a bad proof is
/// refused.
#[sqlx::test(migrations = false)]
async fn every_dispute_path_decides_both_stakes(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, |_| {}).await;
    let provider = h.provider().await;
    let (keyset, keys) = active(&h).await;
    let k = (keyset, &keys);

    // Issue → the taker forfeits.
    let s = staked_to_receipt(&h, provider, k).await;
    mark_issue(&h, &s.t).await.assert_status_is_ok();
    taker_answers(&h, &s.t, "FORFEIT")
        .await
        .assert_status_is_ok();
    let v = h.wait_status(s.t.id, &s.t.maker, "RESOLVED").await;
    assert_eq!(v["outcome"], "MAKER_WINS", "{v}");
    holds(&h, &keys, &s.maker, true, true, "taker forfeit, maker").await;
    holds(&h, &keys, &s.taker, false, false, "taker forfeit, taker").await;

    // Issue → dispute → the maker forfeits.
    let s = staked_to_receipt(&h, provider, k).await;
    mark_issue(&h, &s.t).await.assert_status_is_ok();
    taker_answers(&h, &s.t, "DISPUTE")
        .await
        .assert_status_is_ok();
    maker_answers(&h, &s.t, "FORFEIT")
        .await
        .assert_status_is_ok();
    let v = h.wait_status(s.t.id, &s.t.maker, "RESOLVED").await;
    assert_eq!(v["outcome"], "TAKER_WINS", "{v}");
    holds(&h, &keys, &s.maker, false, false, "maker forfeit, maker").await;
    holds(&h, &keys, &s.taker, true, true, "maker forfeit, taker").await;
    // The taker's revealed key fetches its signatures without a session; the maker's (it
    // lost) fetches an empty list, as does a stranger's key.
    let signed = body(by_key(&h, s.t.id, &registered_key(&s.t.taker), now_ms()).await).await;
    assert!(unblind(&signed, &s.taker.earn, &keys)
        .expect("DLEQ")
        .is_some());
    assert_eq!(signed.as_array().map(Vec::len), Some(2), "{signed}");
    let lost = body(by_key(&h, s.t.id, &s.maker_sk, now_ms()).await).await;
    assert_eq!(lost, json!([]));
    let stranger = SecretKey::generate();
    assert_eq!(
        body(by_key(&h, s.t.id, &stranger, now_ms()).await).await,
        json!([])
    );
    // Refusals: a stale timestamp, a signature by another key, an unknown offer.
    expect_error(
        by_key(&h, s.t.id, &s.maker_sk, now_ms() - 10 * 60_000).await,
        StatusCode::BAD_REQUEST,
        "stale_timestamp",
    )
    .await;
    let ts = now_ms();
    let forged = stranger
        .sign(key_proof_message(s.t.id, ts).as_bytes())
        .expect("sign")
        .to_string();
    let resp = h
        .public
        .post(format!("/api/v1/offers/{}/reputation/by-key", s.t.id))
        .body_json(&json!({
            "payoutPubkey": s.maker_sk.public_key().x_only_public_key().to_string(),
            "timestamp": ts, "signature": forged,
        }))
        .send()
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_signature").await;
    expect_error(
        by_key(&h, Uuid::new_v4(), &s.maker_sk, now_ms()).await,
        StatusCode::NOT_FOUND,
        "offer_not_found",
    )
    .await;

    // Issue → dispute → counter → an admin, once per resolution.
    for (resolution, maker, taker) in [
        ("MAKER_WINS", (true, true), (false, false)),
        ("TAKER_WINS", (false, false), (true, true)),
        ("RETURN", (false, true), (false, true)),
        ("SPLIT", (false, true), (false, true)),
    ] {
        let s = staked_to_receipt(&h, provider, k).await;
        mark_issue(&h, &s.t).await.assert_status_is_ok();
        taker_answers(&h, &s.t, "DISPUTE")
            .await
            .assert_status_is_ok();
        maker_answers(&h, &s.t, "COUNTER")
            .await
            .assert_status_is_ok();
        resolve(&h, s.t.id, ADMIN, resolution)
            .await
            .assert_status_is_ok();
        let v = h.wait_status(s.t.id, &s.t.maker, "RESOLVED").await;
        assert_eq!(v["outcome"], resolution, "{v}");
        let what = format!("admin {resolution}");
        holds(
            &h,
            &keys,
            &s.maker,
            maker.0,
            maker.1,
            &format!("{what}, maker"),
        )
        .await;
        holds(
            &h,
            &keys,
            &s.taker,
            taker.0,
            taker.1,
            &format!("{what}, taker"),
        )
        .await;
        assert_eq!(pending(&h, s.t.id).await, 0);
    }
    h.stop().await;
}
