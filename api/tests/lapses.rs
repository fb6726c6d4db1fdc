//! Every state's timer, lapsing against the real test mint (DESIGN.md section 3): who can
//! redeem what afterwards, and the audit balances. Timers are seconds here; the mint pays
//! invoices only when a test says so.

mod common;

use std::time::Duration;

use common::{balanced, body, offer_with_invoice, short_timers, Auth, Harness, Session, Transport};
use openpleb_common::config::Config;
use openpleb_devkit::scenario::trade::invoice;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

const SHORT: Duration = Duration::from_secs(2);

fn timers(c: &mut Config, short: &str) {
    short_timers(c, &[short], SHORT);
}

/// Claims without paying the bond; returns (taker key, bond invoice, bond sats).
async fn claim_unpaid(
    h: &Harness,
    id: Uuid,
    taker: &Session,
) -> (cdk::nuts::SecretKey, String, u64) {
    let (sk, v) = h.claim_unpaid(id, taker).await;
    let (invoice, sats) = invoice(&v["bond"]).expect("bond");
    (sk, invoice, sats)
}

async fn amounts(h: &Harness, id: Uuid, maker: &Session) -> Value {
    body(h.get_offer(id, Some(maker)).await).await
}

/// CREATED lapses to EXPIRED; a deposit paid afterwards is minted and refunded, never lost.
#[sqlx::test(migrations = false)]
async fn created_lapses_and_a_late_deposit_is_refunded(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_configured(opts, conn, |c| timers(c, "created")).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (id, invoice, deposit, maker_sk) = offer_with_invoice(&h, &maker, provider).await;
    h.wait_status(id, &maker, "EXPIRED").await;
    h.pay(&invoice, deposit).await;
    let refund = h.released_payouts(id, &maker).await;
    assert_eq!(refund[0]["purpose"], "late_refund");
    assert_eq!(h.redeem(&refund, &maker_sk).await, deposit);
    balanced(&h, 1).await;
    h.stop().await;
}

/// INVOICE_PAID lapses to EXPIRED with the deposit refunded in full.
#[sqlx::test(migrations = false)]
async fn a_listed_offer_lapses_with_a_full_refund(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, |c| timers(c, "invoice_paid")).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (id, invoice, deposit, maker_sk) = offer_with_invoice(&h, &maker, provider).await;
    h.pay(&invoice, deposit).await;
    h.wait_status(id, &maker, "EXPIRED").await;
    let refund = h.released_payouts(id, &maker).await;
    assert_eq!(h.redeem(&refund, &maker_sk).await, deposit);
    balanced(&h, 1).await;
    h.stop().await;
}

/// A claim lapses (the mint asked first: unpaid); the offer never left the book; the bond paid
/// late is refunded to the would-be taker, who is no party but can still fetch its refund.
#[sqlx::test(migrations = false)]
async fn a_lapsed_claim_leaves_the_book_alone(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, |c| timers(c, "invoice_created")).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, invoice, deposit, _) = offer_with_invoice(&h, &maker, provider).await;
    h.pay(&invoice, deposit).await;
    h.wait_status(id, &maker, "INVOICE_PAID").await;
    let (taker_sk, bond_invoice, bond) = claim_unpaid(&h, id, &taker).await;
    let mut claim = Value::Null;
    for _ in 0..80 {
        claim = h
            .get(&format!("/offers/{id}/claim"), &taker)
            .await
            .expect("claim")
            .body;
        if claim["status"] == "LAPSED" {
            break;
        }
        // Public throughout: anyone sees it, and it can be claimed by others.
        h.get_offer(id, None).await.assert_status_is_ok();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(claim["status"], "LAPSED", "{claim}");
    h.pay(&bond_invoice, bond).await;
    let refund = h.released_payouts(id, &taker).await;
    assert_eq!(refund[0]["purpose"], "late_refund");
    assert_eq!(h.redeem(&refund, &taker_sk).await, bond);
    assert_eq!(amounts(&h, id, &maker).await["status"], "INVOICE_PAID");
    h.stop().await;
}

/// TAKER_BOND_PAID lapses to EXPIRED: the maker gets the deposit and the forfeited bond.
#[sqlx::test(migrations = false)]
async fn no_receipt_forfeits_the_bond(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, |c| timers(c, "taker_bond_paid")).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, invoice, deposit, maker_sk) = offer_with_invoice(&h, &maker, provider).await;
    h.pay(&invoice, deposit).await;
    h.wait_status(id, &maker, "INVOICE_PAID").await;
    let (_, bond_invoice, bond) = claim_unpaid(&h, id, &taker).await;
    h.pay(&bond_invoice, bond).await;
    h.wait_status(id, &maker, "EXPIRED").await;
    let paid = h.released_payouts(id, &maker).await;
    assert_eq!(h.redeem(&paid, &maker_sk).await, deposit + bond);
    let none = h
        .get(&format!("/offers/{id}/payouts"), &taker)
        .await
        .expect("payouts");
    assert_eq!(
        none.expect(200).expect("ok"),
        json!([]),
        "the taker gets nothing"
    );
    balanced(&h, 1).await;
    h.stop().await;
}

/// RECEIPT_SUBMITTED lapses to COMPLETED: maker silence is consent.
#[sqlx::test(migrations = false)]
async fn maker_silence_completes(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, |c| timers(c, "receipt_submitted")).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, invoice, deposit, maker_sk) = offer_with_invoice(&h, &maker, provider).await;
    h.pay(&invoice, deposit).await;
    let v = h.wait_status(id, &maker, "INVOICE_PAID").await;
    let (taker_sk, bond_invoice, bond) = claim_unpaid(&h, id, &taker).await;
    h.pay(&bond_invoice, bond).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    h.upload_receipt(id, &taker).await.assert_status_is_ok();
    h.wait_status(id, &maker, "COMPLETED").await;
    let n = |k: &str| v[k].as_u64().expect(k);
    let taker_paid = h.released_payouts(id, &taker).await;
    assert_eq!(
        h.redeem(&taker_paid, &taker_sk).await,
        n("amountSats") + n("takerRewardSats") + bond
    );
    let maker_paid = h.released_payouts(id, &maker).await;
    assert_eq!(h.redeem(&maker_paid, &maker_sk).await, n("makerBondSats"));
    balanced(&h, 1).await;
    h.stop().await;
}

// Silence on an issue or a dispute is tested through the real endpoints in `disputes.rs`.

/// The alerts name what the workers could not settle on their own: an offer stuck past its
/// deadline, a payout owed and not moving, a job that gave up. With a worker running they
/// are all clear and the reconciliation has reached every wallet.
#[sqlx::test(migrations = false)]
async fn alerts_name_what_needs_an_operator(opts: PgPoolOptions, conn: PgConnectOptions) {
    let mut h = Harness::start_configured(opts, conn, |c| timers(c, "none")).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (id, invoice, deposit, _) = offer_with_invoice(&h, &maker, provider).await;
    h.pay(&invoice, deposit).await;
    h.wait_status(id, &maker, "INVOICE_PAID").await;
    let mut reconciled = false;
    for _ in 0..40 {
        let a = h.alerts().await;
        assert_eq!(a["ok"], true, "{a}");
        if a["lastReconciledAt"].is_string() {
            reconciled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(reconciled, "the worker's reconciliation ran");

    h.stop_worker().await;
    sqlx::query(
        "update offers set expires_at = now() - interval '20 minutes'
          where id = $1",
    )
    .bind(id)
    .execute(&h.pool)
    .await
    .expect("stuck");
    sqlx::query(
        "insert into payouts (id, offer_id, party, purpose, source_wallet, amount_sats, lock_pubkey, created_at)
         select $1, id, 'maker', 'refund', session_wallet_id(maker_session_id),
                21, maker_payout_pubkey, now() - interval '15 minutes'
           from offers where id = $2",
    )
    .bind(Uuid::new_v4())
    .bind(id)
    .execute(&h.pool)
    .await
    .expect("overdue payout");
    sqlx::query(
        "update apalis.jobs set status = 'Killed'
          where id = (select id from apalis.jobs order by run_at limit 1)",
    )
    .execute(&h.pool)
    .await
    .expect("dead job");

    let a = h.alerts().await;
    assert_eq!(a["ok"], false);
    let stuck = a["stuckOffers"].as_array().expect("stuck");
    assert_eq!(stuck.len(), 1, "{a}");
    assert_eq!(stuck[0]["offerId"], id.to_string());
    assert_eq!(stuck[0]["status"], "INVOICE_PAID");
    let overdue = a["overduePayouts"].as_array().expect("overdue");
    assert_eq!(overdue.len(), 1, "{a}");
    assert_eq!(overdue[0]["amountSats"], 21);
    assert_eq!(overdue[0]["state"], "RECORDED");
    let dead = a["deadJobs"].as_array().expect("dead");
    assert_eq!(dead.len(), 1, "{a}");
    assert_eq!(dead[0]["count"], 1);
    assert_eq!(a["disputesWaitingForAdmin"], 0);
    assert_eq!(a["disputeRateHigh"], false);

    // Without an admin token there is nothing to see.
    let resp = h
        .get("/admin/alerts", Auth::Anonymous)
        .await
        .expect("alerts");
    assert_eq!(resp.status, 401);
    h.stop().await;
}

/// Two workers, both running the cron and the delayed jobs: every lapse acts once. Five listed
/// offers expire; each gets exactly one EXPIRED move and one refund, and the audit balances.
#[sqlx::test(migrations = false)]
async fn two_workers_lapse_each_offer_once(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, |c| timers(c, "invoice_paid")).await;
    let (stop_second, second) = h.second_worker();
    let provider = h.provider().await;
    let maker = h.session().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (id, invoice, deposit, _) = offer_with_invoice(&h, &maker, provider).await;
        h.pay(&invoice, deposit).await;
        ids.push((id, deposit));
    }
    for (id, _) in &ids {
        h.wait_status(*id, &maker, "EXPIRED").await;
        h.released_payouts(*id, &maker).await;
    }
    // Let both cron loops run a few more slots over the expired offers.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (id, deposit) in &ids {
        let expired: i64 = sqlx::query_scalar(
            "select count(*) from offer_events where offer_id = $1 and status = 'EXPIRED'",
        )
        .bind(id)
        .fetch_one(&h.pool)
        .await
        .expect("count");
        assert_eq!(expired, 1, "one EXPIRED move for {id}");
        let (n, sats): (i64, i64) = sqlx::query_as(
            "select count(*), coalesce(sum(amount_sats), 0)::bigint from payouts where offer_id = $1",
        )
        .bind(id)
        .fetch_one(&h.pool)
        .await
        .expect("payouts");
        assert_eq!(
            (n, sats),
            (1, i64::try_from(*deposit).expect("sats")),
            "one refund for {id}"
        );
    }
    balanced(&h, 5).await;
    let _ = stop_second.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), second).await;
    h.stop().await;
}
