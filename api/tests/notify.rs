//! Nobody loses a trade by a silence they never heard of: every move that asks something of a
//! party or moves its money reaches exactly that party out of band (Web Push, checked and
//! decrypted by the devkit's push service as a browser would; webhooks, checked like an
//! integrator would), reminders come before the deadlines where silence decides, failures are
//! retried or end the subscription, and no notice says more than what to do by when. Real
//! PostgreSQL, real mint, real HTTP.

mod common;

use std::time::Duration;

use common::{balanced, body, Harness, Session, Trade, Transport};
use openpleb_common::domain::notify::{topic, Notice};
use openpleb_devkit::push::{Delivered, PushService};
use openpleb_devkit::scenario::trade::{invoice, try_claim_with};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn push_service(h: &Harness) -> PushService {
    let v = body(h.public.get("/api/v1/push/key").send().await).await;
    let key = v["publicKey"].as_str().expect("VAPID key").to_owned();
    PushService::start(Some(key)).await.expect("push service")
}

/// Every message is a notice of the closed schema: four fields, nothing else.
fn notices(got: &[Delivered]) -> Vec<Notice> {
    got.iter()
        .map(|d| serde_json::from_value(d.body.clone()).expect("a notice and nothing more"))
        .collect()
}

/// (status, action) of each notice, in order.
fn said(got: &[Delivered]) -> Vec<(String, String)> {
    notices(got)
        .into_iter()
        .map(|n| (n.status, n.action))
        .collect()
}

fn pair(status: &str, action: &str) -> (String, String) {
    (status.to_owned(), action.to_owned())
}

/// A funded offer made with `notify`; (id, the answer to `POST /offers`).
async fn offer_with(h: &Harness, maker: &Session, provider: Uuid, notify: Value) -> (Uuid, Value) {
    let plan = Trade::new(h)
        .maker(maker)
        .provider(provider)
        .field("notify", notify);
    let trade = plan.funded().await.expect("funded offer");
    (trade.id, trade.created)
}

/// A claim with `notify`, its bond not paid: (bond invoice, sats, the taker's key, the answer).
async fn claim_with(
    h: &Harness,
    id: Uuid,
    taker: &Session,
    notify: Value,
) -> (String, u64, cdk::nuts::SecretKey, Value) {
    let extra = json!({ "notify": notify });
    let (reply, sk) = try_claim_with(h, id, taker, extra).await.expect("claim");
    let v = reply.expect(200).expect("claimed");
    let (invoice, sats) = invoice(&v["bond"]).expect("bond");
    (invoice, sats, sk, v)
}

/// A whole trade: the maker, the winning taker and a claimant that lost each hear exactly
/// their part, with the offer's topic and a TTL up to the deadline; the maker of another offer
/// hears nothing; every payload is the closed four-field notice; nothing was refused.
#[sqlx::test(migrations = false)]
async fn a_whole_trade_tells_each_party_its_part(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let ps = push_service(&h).await;
    let provider = h.provider().await;
    let (maker, taker, loser, bystander) = (
        h.session().await,
        h.session().await,
        h.session().await,
        h.session().await,
    );
    let (mb, tb, lb, bb) = (
        ps.subscribe(),
        ps.subscribe(),
        ps.subscribe(),
        ps.subscribe(),
    );
    let (id, _) = offer_with(&h, &maker, provider, json!({"push": mb.json()})).await;
    let (other, _) = offer_with(&h, &bystander, provider, json!({"push": bb.json()})).await;
    let (bond, sats, _, _) = claim_with(&h, id, &taker, json!({"push": tb.json()})).await;
    let (lost_bond, lost_sats, loser_key, _) =
        claim_with(&h, id, &loser, json!({"push": lb.json()})).await;
    // Claims buzz nobody.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(ps.messages(&mb).is_empty(), "a claim notified the maker");
    h.pay(&bond, sats).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    let m = ps.wait_for(&mb, 1, WAIT).await;
    assert_eq!(said(&m), [pair("TAKER_BOND_PAID", "await_fiat")]);
    let t = ps.wait_for(&tb, 1, WAIT).await;
    assert_eq!(
        said(&t),
        [pair("TAKER_BOND_PAID", "pay_fiat_and_send_receipt")]
    );
    let deadline = notices(&t)[0].deadline.expect("the receipt's deadline");
    let ttl = t[0].ttl.expect("TTL");
    assert!(ttl <= (deadline - chrono::Utc::now()).num_seconds().unsigned_abs() + 5);
    assert_eq!(t[0].topic.as_deref(), Some(topic(id).as_str()));
    let l = ps.wait_for(&lb, 1, WAIT).await;
    assert_eq!(said(&l), [pair("CLAIM_LOST", "none")]);

    h.upload_receipt(id, &taker).await.assert_status_is_ok();
    let m = ps.wait_for(&mb, 2, WAIT).await;
    assert_eq!(
        said(&m)[1],
        pair("RECEIPT_SUBMITTED", "confirm_or_mark_issue")
    );
    let completed = h
        .post_empty(&format!("/offers/{id}/complete"), &maker)
        .await;
    completed.expect("complete").expect(200).expect("completed");
    // The loser pays its bond anyway: it comes back, and only the loser hears of it.
    h.pay(&lost_bond, lost_sats).await;
    let refund = h.released_payouts(id, &loser).await;
    assert_eq!(h.redeem(&refund, &loser_key).await, lost_sats);

    let m = ps.wait_for(&mb, 4, WAIT).await;
    assert_eq!(
        said(&m)[2..],
        [pair("COMPLETED", "none"), pair("COMPLETED", "fetch_payout")]
    );
    let t = ps.wait_for(&tb, 3, WAIT).await;
    assert_eq!(
        said(&t)[1..],
        [pair("COMPLETED", "none"), pair("COMPLETED", "fetch_payout")]
    );
    let l = ps.wait_for(&lb, 2, WAIT).await;
    assert_eq!(said(&l)[1], pair("COMPLETED", "fetch_payout"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (b, n) in [(&mb, 4), (&tb, 3), (&lb, 2)] {
        assert_eq!(ps.messages(b).len(), n, "{:?}", said(&ps.messages(b)));
    }
    assert!(
        ps.messages(&bb).is_empty(),
        "another offer's maker heard this trade"
    );
    for n in notices(&ps.messages(&mb)) {
        assert_eq!(n.offer_id, id);
        assert_ne!(n.offer_id, other);
    }
    assert!(ps.refused().is_empty(), "{:?}", ps.refused());
    balanced(&h, 1).await;
    h.stop().await;
}

/// Failures: 429 and 500 are retried (honouring `Retry-After`) and then delivered; 410 ends the
/// subscription (it receives nothing more).
#[sqlx::test(migrations = false)]
async fn failures_are_retried_and_a_gone_subscription_is_deleted(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_manual(opts, conn).await;
    let ps = push_service(&h).await;
    let provider = h.provider().await;
    let (maker, taker) = (h.session().await, h.session().await);
    let (mb, tb) = (ps.subscribe(), ps.subscribe());
    let (id, _) = offer_with(&h, &maker, provider, json!({"push": mb.json()})).await;
    let (bond, sats, _, _) = claim_with(&h, id, &taker, json!({"push": tb.json()})).await;
    ps.fail_next(&mb, 429, 1, Some(1));
    ps.fail_next(&mb, 500, 1, None);
    ps.fail_next(&tb, 410, 1, None);
    h.pay(&bond, sats).await;
    let m = ps.wait_for(&mb, 1, WAIT).await;
    assert_eq!(said(&m), [pair("TAKER_BOND_PAID", "await_fiat")]);
    let gone: i64 = sqlx::query_scalar("select count(*) from notify_targets where offer_id = $1")
        .bind(id)
        .fetch_one(&h.pool)
        .await
        .expect("count");
    assert_eq!(gone, 1, "the 410 subscription is deleted, the maker's kept");
    h.upload_receipt(id, &taker).await.assert_status_is_ok();
    ps.wait_for(&mb, 2, WAIT).await;
    assert!(ps.messages(&tb).is_empty(), "a gone subscription received");
    h.stop().await;
}
