//! Notices along the dispute paths and over time: who hears each step of an issue and a
//! dispute, and of a report about the payment details; reminders before a deadline where
//! silence decides; a subscription set by payout key after the session ended; a webhook
//! signed and counted like an integrator would; a move that rolls back sends nothing; an
//! offer that is over forgets its subscriptions. Real PostgreSQL, real mint, real HTTP.

mod common;

use std::time::Duration;

use common::dispute::{maker_answers, mark_issue, post, resolve, reveal, taker_answers, Trade};
use common::{body, payout_key, Harness, ADMIN};
use openpleb_common::domain::notify::Notice;
use openpleb_common::domain::role::Role;
use openpleb_devkit::push::{Browser, Delivered, PushService};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn push_service(h: &Harness) -> PushService {
    let v = body(h.public.get("/api/v1/push/key").send().await).await;
    PushService::start(Some(v["publicKey"].as_str().expect("key").to_owned()))
        .await
        .expect("push service")
}

fn said(got: &[Delivered]) -> Vec<(String, String)> {
    got.iter()
        .map(|d| {
            let n: Notice = serde_json::from_value(d.body.clone()).expect("a notice");
            (n.status, n.action)
        })
        .collect()
}

fn pair(status: &str, action: &str) -> (String, String) {
    (status.to_owned(), action.to_owned())
}

/// A trade to TAKER_BOND_PAID with both parties subscribed (maker with the offer, taker with
/// its claim).
async fn subscribed_trade(h: &Harness, ps: &PushService) -> (Trade, Browser, Browser) {
    let maker = h.session().await;
    let taker = h.session().await;
    let provider = h.provider().await;
    let (mb, tb) = (ps.subscribe(), ps.subscribe());
    let (_, key) = payout_key();
    let v = body(
        h.public
            .post("/api/v1/offers")
            .header("Authorization", maker.bearer())
            .body_json(&json!({
                "fiatAmount": 2_500, "currency": "EUR", "fiatProviderId": provider,
                "paymentDetails": "IBAN DE00", "makerPayoutPubkey": key,
                "notify": {"push": mb.json()},
            }))
            .send()
            .await,
    )
    .await;
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
    h.wait_status(id, &maker, "INVOICE_PAID").await;
    let (_, tkey) = payout_key();
    let c = body(
        h.public
            .post(format!("/api/v1/offers/{id}/claim"))
            .header("Authorization", taker.bearer())
            .body_json(&json!({"takerPayoutPubkey": tkey, "notify": {"push": tb.json()}}))
            .send()
            .await,
    )
    .await;
    h.pay(
        c["bond"]["invoice"].as_str().expect("invoice"),
        c["bond"]["amountSats"].as_u64().expect("sats"),
    )
    .await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    ps.wait_for(&mb, 1, WAIT).await;
    ps.wait_for(&tb, 1, WAIT).await;
    let zero = common::dispute::Amounts {
        s: 0,
        pf: 0,
        tf: 0,
        mb: 0,
        tb: 0,
    };
    (
        Trade {
            id,
            maker,
            taker,
            amounts: zero,
        },
        mb,
        tb,
    )
}

/// An issue, a dispute, a counter and an admin's decision: each step reaches the party it
/// asks something of, and the end reaches both.
#[sqlx::test(migrations = false)]
async fn every_dispute_step_reaches_its_party(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let ps = push_service(&h).await;
    let (t, mb, tb) = subscribed_trade(&h, &ps).await;
    h.upload_receipt(t.id, &t.taker).await.assert_status_is_ok();
    mark_issue(&h, &t).await.assert_status_is_ok();
    let got = ps.wait_for(&tb, 2, WAIT).await;
    assert_eq!(
        said(&got)[1],
        pair("MARKED_WITH_ISSUE", "forfeit_or_dispute")
    );
    taker_answers(&h, &t, "DISPUTE").await.assert_status_is_ok();
    let got = ps.wait_for(&mb, 3, WAIT).await;
    assert_eq!(
        said(&got)[1],
        pair("RECEIPT_SUBMITTED", "confirm_or_mark_issue")
    );
    assert_eq!(said(&got)[2], pair("DISPUTED", "forfeit_or_counter"));
    maker_answers(&h, &t, "COUNTER").await.assert_status_is_ok();
    let m = ps.wait_for(&mb, 4, WAIT).await;
    let k = ps.wait_for(&tb, 3, WAIT).await;
    assert_eq!(said(&m)[3], pair("DISPUTED", "await_admin"));
    assert_eq!(said(&k)[2], pair("DISPUTED", "await_admin"));
    resolve(&h, t.id, ADMIN, "SPLIT")
        .await
        .assert_status_is_ok();
    let m = ps.wait_for(&mb, 6, WAIT).await;
    let k = ps.wait_for(&tb, 5, WAIT).await;
    assert_eq!(
        said(&m)[4..],
        [pair("RESOLVED", "none"), pair("RESOLVED", "fetch_payout")]
    );
    assert_eq!(
        said(&k)[3..],
        [pair("RESOLVED", "none"), pair("RESOLVED", "fetch_payout")]
    );
    assert!(ps.refused().is_empty(), "{:?}", ps.refused());
    h.stop().await;
}

/// The taker's report about the payment details reaches the maker, with its deadline.
#[sqlx::test(migrations = false)]
async fn a_details_report_reaches_the_maker(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let ps = push_service(&h).await;
    let (t, mb, _) = subscribed_trade(&h, &ps).await;
    let report =
        json!({"message": "closed account", "reveal": reveal(&t.taker, t.id, Role::Taker)});
    post(
        &h,
        &t.taker,
        format!("/api/v1/offers/{}/details-issue", t.id),
        report,
    )
    .await
    .assert_status_is_ok();
    let got = ps.wait_for(&mb, 2, WAIT).await;
    assert_eq!(
        said(&got)[1],
        pair("DETAILS_DISPUTED", "forfeit_or_counter")
    );
    let n: Notice = serde_json::from_value(got[1].body.clone()).expect("notice");
    assert!(n.deadline.is_some());
    h.stop().await;
}

/// Before the deadline at which the maker's silence is consent, the maker is reminded (with
/// high urgency); the taker is not. Then silence decides and both hear it.
#[sqlx::test(migrations = false)]
async fn the_silent_party_is_reminded_before_its_deadline(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_configured(opts, conn, |c| {
        c.timers.receipt_submitted = Duration::from_secs(6);
        c.notify.remind_before =
            openpleb_common::domain::notify::parse_remind_before("50%").expect("offsets");
    })
    .await;
    let ps = push_service(&h).await;
    let (t, mb, tb) = subscribed_trade(&h, &ps).await;
    h.upload_receipt(t.id, &t.taker).await.assert_status_is_ok();
    let m = ps.wait_for(&mb, 3, WAIT).await;
    assert_eq!(
        said(&m)[1],
        pair("RECEIPT_SUBMITTED", "confirm_or_mark_issue")
    );
    assert_eq!(
        said(&m)[2],
        pair("RECEIPT_SUBMITTED", "confirm_or_mark_issue")
    );
    assert_eq!(m[1].urgency.as_deref(), Some("normal"));
    assert_eq!(
        m[2].urgency.as_deref(),
        Some("high"),
        "the reminder is urgent"
    );
    let gap = m[2].at - m[1].at;
    assert!(
        gap >= Duration::from_secs(2),
        "reminded at half the timer: {gap:?}"
    );
    h.wait_status(t.id, &t.maker, "COMPLETED").await;
    let m = ps.wait_for(&mb, 4, WAIT).await;
    assert_eq!(said(&m)[3], pair("COMPLETED", "none"));
    let k = ps.wait_for(&tb, 2, WAIT).await;
    assert!(
        said(&k).iter().all(|(s, _)| s != "RECEIPT_SUBMITTED"),
        "{:?}",
        said(&k)
    );
    h.stop().await;
}

/// Trades outlive sessions: the maker, its session logged out, sets a webhook by proving its
/// payout key; the webhook is signed (checked with the secret given once) and receives the
/// receipt's notice; a delivery retried after a 500 carries the same `webhook-id`.
#[sqlx::test(migrations = false)]
async fn a_webhook_set_by_key_after_the_session_ended(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let ps = push_service(&h).await;
    let maker = h.session().await;
    let taker = h.session().await;
    let provider = h.provider().await;
    let (id, maker_key) = h.funded_offer(&maker, provider).await;
    h.claim(id, &taker).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    h.public
        .delete("/api/v1/sessions")
        .header("Authorization", maker.bearer())
        .send()
        .await
        .assert_status(poem::http::StatusCode::NO_CONTENT);
    let hook = ps.hook();
    let ts = chrono::Utc::now().timestamp_millis();
    let sig = maker_key
        .sign(format!("openpleb-notify:{id}:{ts}").as_bytes())
        .expect("sign")
        .to_string();
    let pubkey = maker_key.public_key().x_only_public_key().to_string();
    let resp = h
        .public
        .put(format!("/api/v1/offers/{id}/webhook/by-key"))
        .body_json(
            &json!({"webhook": {"url": hook.url}, "payoutPubkey": pubkey,
                           "timestamp": ts, "signature": sig}),
        )
        .send()
        .await;
    let status = resp.0.status();
    let v = body(resp).await;
    assert!(status.is_success(), "{v}");
    let secret = v["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"));
    ps.hook_secret(&hook, secret);
    h.upload_receipt(id, &taker).await.assert_status_is_ok();
    let mut got = Vec::new();
    for _ in 0..80 {
        got = ps.hook_messages(&hook);
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        said(&got),
        [pair("RECEIPT_SUBMITTED", "confirm_or_mark_issue")]
    );
    assert_eq!(ps.duplicates(&hook), 0);
    assert!(ps.refused().is_empty(), "{:?}", ps.refused());
    h.stop().await;
}

/// A move that rolls back enqueues nothing; the same move committed does.
#[sqlx::test(migrations = false)]
async fn a_move_that_rolls_back_sends_nothing(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let ps = push_service(&h).await;
    let (t, _, _) = subscribed_trade(&h, &ps).await;
    let offer = openpleb_common::db::offers::get(&h.pool, t.id)
        .await
        .expect("offer")
        .expect("row");
    let deliveries = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from apalis.jobs where job_type = 'openpleb.deliver_notice'
               and convert_from(job, 'UTF8') like '%rollback-probe%'",
        )
        .fetch_one(&h.pool)
        .await
        .expect("count")
    };
    let notice = Notice {
        offer_id: t.id,
        status: offer.status.as_str().to_owned(),
        deadline: None,
        action: "none".to_owned(),
    };
    let to = openpleb_common::notify::Recipient::Party(Role::Maker);
    let mut tx = h.pool.begin().await.expect("tx");
    openpleb_common::notify::tell(&mut tx, t.id, to, &notice, false, "rollback-probe")
        .await
        .expect("tell");
    tx.rollback().await.expect("rollback");
    assert_eq!(deliveries().await, 0);
    let mut tx = h.pool.begin().await.expect("tx");
    openpleb_common::notify::tell(&mut tx, t.id, to, &notice, false, "rollback-probe")
        .await
        .expect("tell");
    tx.commit().await.expect("commit");
    assert_eq!(deliveries().await, 1);
    h.stop().await;
}

/// An offer that is over, its payouts released, forgets where its parties were told.
#[sqlx::test(migrations = false)]
async fn a_final_offer_forgets_its_subscriptions(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let ps = push_service(&h).await;
    let (t, mb, _) = subscribed_trade(&h, &ps).await;
    h.upload_receipt(t.id, &t.taker).await.assert_status_is_ok();
    h.public
        .post(format!("/api/v1/offers/{}/complete", t.id))
        .header("Authorization", t.maker.bearer())
        .send()
        .await
        .assert_status_is_ok();
    h.released_payouts(t.id, &t.maker).await;
    h.released_payouts(t.id, &t.taker).await;
    for _ in 0..80 {
        let owed: i64 = sqlx::query_scalar(
            "select count(*) from payouts where offer_id = $1 and state = 'RECORDED'",
        )
        .bind(t.id)
        .fetch_one(&h.pool)
        .await
        .expect("owed");
        if owed == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    ps.wait_for(&mb, 4, WAIT).await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from notify_targets where offer_id = $1")
            .bind(t.id)
            .fetch_one(&h.pool)
            .await
            .expect("count")
    };
    assert_eq!(count().await, 2);
    let mut ctx = h.trade_ctx();
    let mut config = (*ctx.config).clone();
    config.notify.forget_after = Duration::ZERO;
    ctx.config = std::sync::Arc::new(config);
    openpleb_worker::jobs::prune::run(&ctx)
        .await
        .expect("prune");
    assert_eq!(count().await, 0, "the parties' subscriptions are gone");
    h.stop().await;
}

/// Endpoints and URLs are checked before they are stored: http and private addresses are
/// refused where development does not allow them.
#[sqlx::test(migrations = false)]
async fn private_endpoints_are_refused(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_configured(opts, conn, |c| c.notify.allow_private = false).await;
    let maker = h.session().await;
    let provider = h.provider().await;
    let (id, _) = h.funded_offer(&maker, provider).await;
    for url in [
        "http://push.example.com/x",
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
    ] {
        let resp = h
            .public
            .put(format!("/api/v1/offers/{id}/webhook"))
            .header("Authorization", maker.bearer())
            .body_json(&json!({"url": url}))
            .send()
            .await;
        common::expect_error(
            resp,
            poem::http::StatusCode::BAD_REQUEST,
            "invalid_webhook_url",
        )
        .await;
    }
    h.stop().await;
}
