//! The taker's recourse before paying: the maker's payment details do not work. From
//! TAKER_BOND_PAID the taker reports it (revealing its registered key); the maker forfeits
//! (BAD_DETAILS: its bond to the taker beside the taker's own, the rest of its deposit back)
//! or counters (revealing its key) and an admin decides; maker silence leaves it to an admin.
//! Real mint, real worker; every payout is redeemed with the key it is locked to.

mod common;

use std::time::Duration;

use common::dispute::{post, registered_key, resolve, reveal, Amounts, Trade};
use common::{balanced, body, expect_error, read_config, Harness, ADMIN};
use openpleb_common::config::Config;
use openpleb_common::domain::role::Role;
use poem::http::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// A fresh maker and taker take a funded offer to TAKER_BOND_PAID; returns the trade and the
/// maker's and taker's payout keys.
async fn bond_paid(
    h: &Harness,
    provider: Uuid,
) -> (Trade, cdk::nuts::SecretKey, cdk::nuts::SecretKey) {
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, maker_key) = h.funded_offer(&maker, provider).await;
    let taker_key = h.claim(id, &taker).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    let v = body(h.get_offer(id, Some(&maker)).await).await;
    let n = |k: &str| v[k].as_u64().expect(k);
    let amounts = Amounts {
        s: n("amountSats"),
        pf: n("platformFeeSats"),
        tf: n("takerRewardSats"),
        mb: n("makerBondSats"),
        tb: n("takerBondSats"),
    };
    let trade = Trade {
        id,
        maker,
        taker,
        amounts,
    };
    (trade, maker_key, taker_key)
}

async fn report(h: &Harness, t: &Trade) -> poem::test::TestResponse {
    let body = json!({"message": "the IBAN is closed: my transfer bounced",
                      "reveal": reveal(&t.taker, t.id, Role::Taker)});
    post(
        h,
        &t.taker,
        format!("/api/v1/offers/{}/details-issue", t.id),
        body,
    )
    .await
}

async fn dispute(h: &Harness, t: &Trade) -> Value {
    let resp = h
        .public
        .get(format!("/api/v1/offers/{}/dispute", t.id))
        .header("Authorization", t.maker.bearer())
        .send()
        .await;
    resp.assert_status_is_ok();
    body(resp).await
}

/// The maker forfeits: the taker gets both bonds (locked to the key it revealed), the maker
/// its deposit less its bond, the platform nothing.
#[sqlx::test(migrations = false)]
async fn the_maker_forfeits_its_bond_to_the_taker(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let (t, maker_key, _) = bond_paid(&h, provider).await;
    let moved = body(report(&h, &t).await).await;
    assert_eq!(moved["status"], "DETAILS_DISPUTED", "{moved}");
    let d = dispute(&h, &t).await;
    assert_eq!(d["kind"], "payment_details");
    assert_eq!(d["stage"], "waiting_maker");
    let forfeit = json!({"action": "FORFEIT"});
    let path = format!("/api/v1/offers/{}/dispute/answer", t.id);
    post(&h, &t.maker, path, forfeit)
        .await
        .assert_status_is_ok();
    let done = h.wait_status(t.id, &t.maker, "RESOLVED").await;
    assert_eq!(done["outcome"], "BAD_DETAILS");
    let a = &t.amounts;
    let taker_paid = h.payouts_by_key(t.id, &registered_key(&t.taker)).await;
    assert_eq!(
        h.redeem(&taker_paid, &registered_key(&t.taker)).await,
        a.tb + a.mb
    );
    let maker_paid = h.payouts_by_key(t.id, &maker_key).await;
    assert_eq!(h.redeem(&maker_paid, &maker_key).await, a.deposit() - a.mb);
    balanced(&h, 1).await;
    h.stop().await;
}

/// The maker counters (revealing its key; without a reveal it is refused): an admin decides,
/// and may not award the escrow for fiat that never moved.
#[sqlx::test(migrations = false)]
async fn a_counter_goes_to_an_admin(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let (t, _, _) = bond_paid(&h, provider).await;
    report(&h, &t).await.assert_status_is_ok();
    let path = format!("/api/v1/offers/{}/dispute/answer", t.id);
    let bare = json!({"action": "COUNTER", "message": "the details are right"});
    expect_error(
        post(&h, &t.maker, path.clone(), bare).await,
        StatusCode::BAD_REQUEST,
        "reveal_required",
    )
    .await;
    let counter = json!({"action": "COUNTER", "message": "the details are right",
                         "reveal": reveal(&t.maker, t.id, Role::Maker)});
    post(&h, &t.maker, path, counter)
        .await
        .assert_status_is_ok();
    assert_eq!(dispute(&h, &t).await["stage"], "waiting_admin");
    for wrong in ["TAKER_WINS", "SPLIT"] {
        expect_error(
            resolve(&h, t.id, ADMIN, wrong).await,
            StatusCode::BAD_REQUEST,
            "resolution_not_allowed",
        )
        .await;
    }
    let view = body(
        h.admin
            .get(format!("/api/v1/admin/disputes/{}", t.id))
            .header("Authorization", ADMIN)
            .send()
            .await,
    )
    .await;
    assert_eq!(view["maker"]["pubkey"], t.maker.trader.pubkey(), "{view}");
    assert_eq!(view["taker"]["pubkey"], t.taker.trader.pubkey(), "{view}");
    resolve(&h, t.id, ADMIN, "BAD_DETAILS")
        .await
        .assert_status_is_ok();
    let a = &t.amounts;
    // Both revealed: both parties' payouts lock to their registered keys.
    let maker_paid = h.payouts_by_key(t.id, &registered_key(&t.maker)).await;
    assert_eq!(
        h.redeem(&maker_paid, &registered_key(&t.maker)).await,
        a.deposit() - a.mb
    );
    let taker_paid = h.payouts_by_key(t.id, &registered_key(&t.taker)).await;
    assert_eq!(
        h.redeem(&taker_paid, &registered_key(&t.taker)).await,
        a.tb + a.mb
    );
    balanced(&h, 1).await;
    h.stop().await;
}

/// Timers with `TIMER_DETAILS_DISPUTED_SECS` short, read the way the binaries read them.
fn short_details_timer(c: &mut Config) {
    c.timers = read_config(&c.mint.url, ("TIMER_DETAILS_DISPUTED_SECS", "3")).timers;
}

/// Maker silence on the report leaves it to an admin, who returns everyone's own.
#[sqlx::test(migrations = false)]
async fn maker_silence_leaves_it_to_an_admin(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, short_details_timer).await;
    let provider = h.provider().await;
    let (t, maker_key, _) = bond_paid(&h, provider).await;
    report(&h, &t).await.assert_status_is_ok();
    let mut stage = Value::Null;
    for _ in 0..80 {
        stage = dispute(&h, &t).await["stage"].clone();
        if stage == "waiting_admin" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(stage, "waiting_admin");
    resolve(&h, t.id, ADMIN, "RETURN")
        .await
        .assert_status_is_ok();
    let a = &t.amounts;
    let maker_paid = h.payouts_by_key(t.id, &maker_key).await;
    assert_eq!(h.redeem(&maker_paid, &maker_key).await, a.deposit());
    let taker_paid = h.payouts_by_key(t.id, &registered_key(&t.taker)).await;
    assert_eq!(h.redeem(&taker_paid, &registered_key(&t.taker)).await, a.tb);
    balanced(&h, 1).await;
    h.stop().await;
}
