//! Deadlines bind every move: once a state's deadline has passed, no party may move the offer
//! any more (409 `deadline_passed`), even while the lapse job is held back (the worker is
//! stopped here); silence decides, and does as soon as a worker runs again. Real mint, real
//! worker; the mint pays invoices only when a test says so.

mod common;

use std::time::Duration;

use common::dispute::{maker_answers, mark_issue, post, reveal, taker_answers, Trade};
use common::{expect_error, offer_with_invoice, short_timers, Amounts, Harness, Reply, Transport};
use openpleb_common::config::Config;
use openpleb_common::domain::role::Role;
use openpleb_devkit::scenario::trade::try_claim;
use poem::http::StatusCode;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const SHORT: Duration = Duration::from_secs(4);

/// The named timers short, every other one long.
fn short(names: &'static [&'static str]) -> impl FnOnce(&mut Config) {
    move |c| short_timers(c, names, SHORT)
}

/// Waits out the short timer (measured from a move made just before).
async fn past_deadline() {
    tokio::time::sleep(SHORT + Duration::from_millis(800)).await;
}

/// A funded offer whose bond a fresh taker paid: (trade, with its amounts).
async fn bond_paid(h: &Harness, provider: uuid::Uuid) -> Trade {
    let t = common::Trade::new(h).provider(provider).bond_paid().await;
    let t = t.expect("bond paid");
    let amounts = Amounts::of(&t.offer(&t.maker).await.expect("offer")).expect("amounts");
    let taker = t.taker().expect("taker").clone();
    Trade {
        id: t.id,
        maker: t.maker,
        taker,
        amounts,
    }
}

/// TAKER_BOND_PAID past its deadline: the taker can neither send a receipt nor report the
/// payment details; once a worker runs, the offer expires for the maker.
#[sqlx::test(migrations = false)]
async fn a_late_receipt_is_refused(opts: PgPoolOptions, conn: PgConnectOptions) {
    let mut h = Harness::start_configured(opts, conn, short(&["taker_bond_paid"])).await;
    let provider = h.provider().await;
    let t = bond_paid(&h, provider).await;
    h.stop_worker().await;
    past_deadline().await;
    expect_error(
        h.upload_receipt(t.id, &t.taker).await,
        StatusCode::CONFLICT,
        "deadline_passed",
    )
    .await;
    let report = json!({"message": "the account is closed",
                        "reveal": reveal(&t.taker, t.id, Role::Taker)});
    let resp = post(
        &h,
        &t.taker,
        format!("/api/v1/offers/{}/details-issue", t.id),
        report,
    )
    .await;
    expect_error(resp, StatusCode::CONFLICT, "deadline_passed").await;
    let (_stop, _worker) = h.second_worker();
    h.wait_status(t.id, &t.maker, "EXPIRED").await;
    h.stop().await;
}

/// Each step of a dispute past its deadline: the maker cannot confirm or mark an issue after
/// its silence meant consent, the taker cannot dispute after its silence meant forfeit, the
/// maker cannot counter or forfeit after its silence meant a counter. Once a worker runs,
/// silence decides each.
#[sqlx::test(migrations = false)]
async fn late_answers_are_refused_at_every_step(opts: PgPoolOptions, conn: PgConnectOptions) {
    let mut h = Harness::start_configured(
        opts,
        conn,
        short(&["receipt_submitted", "marked_with_issue", "disputed"]),
    )
    .await;
    let provider = h.provider().await;
    let consent = bond_paid(&h, provider).await;
    let forfeit = bond_paid(&h, provider).await;
    let counter = bond_paid(&h, provider).await;
    h.stop_worker().await;
    // Each offer into the state under test, one move after another (each under SHORT).
    for t in [&consent, &forfeit, &counter] {
        h.upload_receipt(t.id, &t.taker).await.assert_status_is_ok();
    }
    for t in [&forfeit, &counter] {
        mark_issue(&h, t).await.assert_status_is_ok();
    }
    taker_answers(&h, &counter, "DISPUTE")
        .await
        .assert_status_is_ok();
    past_deadline().await;

    let complete = format!("/offers/{}/complete", consent.id);
    let complete = h
        .post_empty(&complete, &consent.maker)
        .await
        .expect("complete");
    complete.refused(409, "deadline_passed").expect("refused");
    expect_error(
        mark_issue(&h, &consent).await,
        StatusCode::CONFLICT,
        "deadline_passed",
    )
    .await;
    expect_error(
        taker_answers(&h, &forfeit, "DISPUTE").await,
        StatusCode::CONFLICT,
        "deadline_passed",
    )
    .await;
    for action in ["COUNTER", "FORFEIT"] {
        expect_error(
            maker_answers(&h, &counter, action).await,
            StatusCode::CONFLICT,
            "deadline_passed",
        )
        .await;
    }

    let (_stop, _worker) = h.second_worker();
    h.wait_status(consent.id, &consent.maker, "COMPLETED").await;
    let resolved = h.wait_status(forfeit.id, &forfeit.maker, "RESOLVED").await;
    assert_eq!(resolved["outcome"], "MAKER_WINS");
    // Maker silence on the dispute: an admin decides; the dispute waits for one.
    for _ in 0..60 {
        let path = format!("/offers/{}/dispute", counter.id);
        let d = h.get(&path, &counter.maker).await.expect("dispute").body;
        if d["stage"] == "waiting_admin" {
            h.stop().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("the dispute never went to an admin");
}

/// CREATED and INVOICE_PAID past their deadlines: the maker cannot fund or cancel, a taker
/// cannot claim; once a worker runs, both expire (the funded one with its deposit refunded).
#[sqlx::test(migrations = false)]
async fn late_moves_before_a_bond_are_refused(opts: PgPoolOptions, conn: PgConnectOptions) {
    let mut h = Harness::start_configured(opts, conn, short(&["created", "invoice_paid"])).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let (listed, _) = h.funded_offer(&maker, provider).await;
    let (unfunded, _, deposit, _) = offer_with_invoice(&h, &maker, provider).await;
    let token = h.cash(deposit).await;
    h.stop_worker().await;
    past_deadline().await;

    let refused = |reply: anyhow::Result<Reply>, code: &str| {
        let reply = reply.expect("answer");
        reply.refused(409, code).expect("refused");
    };
    let fund = format!("/offers/{unfunded}/fund");
    refused(
        h.post(&fund, &maker, json!({"token": token})).await,
        "deadline_passed",
    );
    for id in [unfunded, listed] {
        let cancel = format!("/offers/{id}/cancel");
        refused(h.post_empty(&cancel, &maker).await, "deadline_passed");
    }
    let claim = try_claim(&h, listed, &taker).await.map(|(reply, _)| reply);
    refused(claim, "offer_not_available");

    let (_stop, _worker) = h.second_worker();
    h.wait_status(unfunded, &maker, "EXPIRED").await;
    h.wait_status(listed, &maker, "EXPIRED").await;
    let refund = h.released_payouts(listed, &maker).await;
    assert_eq!(refund[0]["purpose"], "refund");
    h.stop().await;
}
