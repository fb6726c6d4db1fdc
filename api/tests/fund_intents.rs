//! A funding token is never stranded: `POST /offers/{id}/fund` records the token sealed to
//! the workers' key and a worker receives it. Cut at each point (the api after the intent is
//! committed, the worker after the receive, the reconciliation itself before it records), the
//! offer ends funded or the sats refunded, exactly once; a token spent between the api's check
//! and the worker's receive ends the intent with a reason; nothing sealed stays after an
//! intent ends.

mod common;

use std::time::Duration;

use common::{body, Harness};
use openpleb_common::failpoint::Cuts;
use openpleb_common::trade::fund::{self, CUT_INTENT_RECORDED};
use openpleb_common::trade::fund_receive::{self, Ran, CUT_RECEIVED, CUT_SETTLING};
use openpleb_worker::jobs::reconcile_wallets::settle_fund_intents;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

async fn maker_session(h: &Harness, offer: Uuid) -> Uuid {
    sqlx::query_scalar("select maker_session_id from offers where id = $1")
        .bind(offer)
        .fetch_one(&h.pool)
        .await
        .expect("maker session")
}

async fn status(h: &Harness, offer: Uuid) -> String {
    sqlx::query_scalar("select status from offers where id = $1")
        .bind(offer)
        .fetch_one(&h.pool)
        .await
        .expect("status")
}

async fn intents(h: &Harness, offer: Uuid) -> Vec<(String, Option<i64>)> {
    // Whatever the state, an ended intent keeps nothing sealed.
    let sealed: i64 = sqlx::query_scalar(
        "select count(*) from fund_intents
          where offer_id = $1 and state <> 'OPEN' and sealed_token is not null",
    )
    .bind(offer)
    .fetch_one(&h.pool)
    .await
    .expect("sealed");
    assert_eq!(sealed, 0, "an ended intent keeps its sealed token");
    sqlx::query_as(
        "select state, received_sats from fund_intents where offer_id = $1 order by created_at",
    )
    .bind(offer)
    .fetch_all(&h.pool)
    .await
    .expect("intents")
}

async fn deposits(h: &Harness, offer: Uuid) -> i64 {
    sqlx::query_scalar(
        "select coalesce(sum(amount_sats), 0)::bigint from ledger_entries
          where offer_id = $1 and kind = 'deposit'",
    )
    .bind(offer)
    .fetch_one(&h.pool)
    .await
    .expect("ledger")
}

/// Records a funding intent through the api (202) while no worker runs; returns its id.
async fn intend(h: &Harness, maker: &common::Session, id: Uuid, token: &str) -> Uuid {
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/fund"))
        .header("Authorization", maker.bearer())
        .body_json(&json!({ "token": token }))
        .send()
        .await;
    resp.assert_status(poem::http::StatusCode::ACCEPTED);
    body(resp).await["id"]
        .as_str()
        .expect("intent id")
        .parse()
        .expect("uuid")
}

/// The sats refunded to an offer's maker after its deposit came late or unasked.
const LATE_REFUNDS: &str = "select coalesce(sum(amount_sats), 0)::bigint from payouts
                             where offer_id = $1 and purpose = 'late_refund'";

#[sqlx::test(migrations = false)]
async fn a_funding_token_cut_anywhere_funds_or_refunds_once(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let mut h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let mut ctx = h.trade_ctx();
    ctx.cuts = Cuts::armable();
    // The receive jobs are driven by hand below; a second worker is started at the end.
    h.stop_worker().await;

    // 1. The worker cut after the receive, before anything was recorded of it; then the
    //    reconciliation is cut too before it records. The next run funds the offer, once.
    let (id, deposit, _) = h.offer(&maker, provider, 1_000).await;
    let token = h.cash(deposit).await;
    let intent = intend(&h, &maker, id, &token).await;
    assert_eq!(intents(&h, id).await, vec![("OPEN".to_owned(), None)]);
    ctx.cuts.arm(CUT_RECEIVED);
    let cut = fund_receive::receive(&ctx, intent).await;
    assert!(cut.is_err(), "{cut:?}");
    ctx.cuts.clear();
    assert_eq!(status(&h, id).await, "CREATED");
    assert_eq!(intents(&h, id).await, vec![("OPEN".to_owned(), None)]);
    // A young intent is left to its job.
    assert_eq!(
        settle_fund_intents(&ctx, Duration::from_secs(3_600))
            .await
            .expect("run"),
        0
    );
    ctx.cuts.arm(CUT_SETTLING);
    assert_eq!(
        settle_fund_intents(&ctx, Duration::ZERO)
            .await
            .expect("run"),
        0
    );
    ctx.cuts.clear();
    assert_eq!(
        settle_fund_intents(&ctx, Duration::ZERO)
            .await
            .expect("run"),
        1
    );
    assert_eq!(status(&h, id).await, "INVOICE_PAID");
    let deposit_i = i64::try_from(deposit).expect("fits");
    assert_eq!(
        intents(&h, id).await,
        vec![("FUNDED".to_owned(), Some(deposit_i))]
    );
    // The job, run late, and the reconciliation again change nothing.
    assert_eq!(
        fund_receive::receive(&ctx, intent).await.expect("late job"),
        Ran::Left
    );
    assert_eq!(
        settle_fund_intents(&ctx, Duration::ZERO)
            .await
            .expect("again"),
        0
    );
    assert_eq!(deposits(&h, id).await, deposit_i, "booked once");

    // 2. The api cut after the intent and its job were committed, before it answered: the
    //    token was never taken, and the job (here the reconciliation's same work) funds the
    //    offer with it.
    let (id, deposit, _) = h.offer(&maker, provider, 1_000).await;
    let session = maker_session(&h, id).await;
    let token = h.cash(deposit).await;
    ctx.cuts.arm(CUT_INTENT_RECORDED);
    assert!(fund::fund(&ctx, session, id, &token).await.is_err());
    ctx.cuts.clear();
    // While the intent is open the token cannot start a second one.
    let busy = fund::fund(&ctx, session, id, &token).await;
    assert!(busy.is_err(), "{busy:?}");
    assert_eq!(
        settle_fund_intents(&ctx, Duration::ZERO)
            .await
            .expect("run"),
        1
    );
    let deposit_i = i64::try_from(deposit).expect("fits");
    assert_eq!(
        intents(&h, id).await,
        vec![("FUNDED".to_owned(), Some(deposit_i))]
    );
    assert_eq!(status(&h, id).await, "INVOICE_PAID");

    // 3. Cut after the receive, and the maker cancels before the reconciliation: the sats are
    //    refunded to the maker's key, and booked once.
    let (id, deposit, _) = h.offer(&maker, provider, 1_000).await;
    let token = h.cash(deposit).await;
    let intent = intend(&h, &maker, id, &token).await;
    ctx.cuts.arm(CUT_RECEIVED);
    assert!(fund_receive::receive(&ctx, intent).await.is_err());
    ctx.cuts.clear();
    h.cancel(id, &maker).await;
    assert_eq!(
        settle_fund_intents(&ctx, Duration::ZERO)
            .await
            .expect("run"),
        1
    );
    assert_eq!(status(&h, id).await, "CANCELLED");
    let deposit_i = i64::try_from(deposit).expect("fits");
    assert_eq!(
        intents(&h, id).await,
        vec![("REFUNDED".to_owned(), Some(deposit_i))]
    );
    let refunds = h.sum_for(LATE_REFUNDS, id).await;
    assert_eq!(refunds, deposit_i, "the received sats go back to the maker");
    assert_eq!(
        settle_fund_intents(&ctx, Duration::ZERO)
            .await
            .expect("again"),
        0
    );

    // 4. A token spent between the api's check and the worker's receive: the intent ends
    //    ABANDONED with its reason, and the offer still waits for a deposit.
    let (id, deposit, maker_sk) = h.offer(&maker, provider, 1_000).await;
    let token = h.cash(deposit).await;
    let intent = intend(&h, &maker, id, &token).await;
    let elsewhere = h.redeem(&[json!({ "token": token })], &maker_sk).await;
    assert_eq!(elsewhere, deposit, "spent elsewhere");
    assert_eq!(
        fund_receive::receive(&ctx, intent).await.expect("job"),
        Ran::Ended(openpleb_common::db::fund_intents::IntentEnd::Abandoned)
    );
    assert_eq!(intents(&h, id).await, vec![("ABANDONED".to_owned(), None)]);
    let reason: Option<String> =
        sqlx::query_scalar("select reason from fund_intents where id = $1")
            .bind(intent)
            .fetch_one(&h.pool)
            .await
            .expect("reason");
    assert_eq!(reason.as_deref(), Some("token_spent"));
    assert_eq!(status(&h, id).await, "CREATED");

    // The queued jobs of every intent above, run by a worker now, change nothing.
    let (stop, worker) = h.second_worker();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), worker).await;
    let open: i64 = sqlx::query_scalar("select count(*) from fund_intents where state = 'OPEN'")
        .fetch_one(&h.pool)
        .await
        .expect("open");
    assert_eq!(open, 0);
    assert!(
        openpleb_common::db::ledger::audit(&h.pool)
            .await
            .expect("audit")
            .is_empty(),
        "the books balance"
    );
    h.stop().await;
}
