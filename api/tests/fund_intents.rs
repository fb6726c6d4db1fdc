//! A funding token is never stranded: `POST /offers/{id}/fund` cut at each
//! point (after its intent is recorded, after the receive, and the reconciliation itself cut
//! before it records) ends with the offer funded, the sats refunded, or the token still the
//! maker's to use; settling twice changes nothing.

mod common;

use std::time::Duration;

use common::{body, Harness};
use openpleb_common::failpoint::Cuts;
use openpleb_common::trade::fund::{self, CUT_INTENT_RECORDED, CUT_RECEIVED, CUT_SETTLING};
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

#[sqlx::test(migrations = false)]
async fn a_fund_request_cut_anywhere_funds_or_returns_the_token(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let mut ctx = h.trade_ctx();
    ctx.cuts = Cuts::armable();

    // 1. Cut after the receive, before anything was recorded of it; then the reconciliation is
    //    cut too before it records. The next run funds the offer, once.
    let (id, deposit, _) = h.offer(&maker, provider, 1_000).await;
    let session = maker_session(&h, id).await;
    let token = h.cash(deposit).await;
    ctx.cuts.arm(CUT_RECEIVED);
    let cut = fund::fund(&ctx, session, id, &token).await;
    assert!(cut.is_err(), "{cut:?}");
    ctx.cuts.clear();
    assert_eq!(status(&h, id).await, "CREATED");
    assert_eq!(intents(&h, id).await, vec![("OPEN".to_owned(), None)]);
    // A young intent is left to its request.
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
    assert_eq!(
        settle_fund_intents(&ctx, Duration::ZERO)
            .await
            .expect("again"),
        0
    );
    assert_eq!(deposits(&h, id).await, deposit_i, "booked once");

    // 2. Cut after the intent, before the receive: the token was never taken. The intent is
    //    abandoned and the same token funds the offer afterwards.
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
    assert_eq!(intents(&h, id).await, vec![("ABANDONED".to_owned(), None)]);
    assert_eq!(status(&h, id).await, "CREATED");
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/fund"))
        .header("Authorization", maker.bearer())
        .body_json(&json!({ "token": token }))
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(body(resp).await["status"], "INVOICE_PAID");

    // 3. Cut after the receive, and the maker cancels before the reconciliation: the sats are
    //    refunded to the maker's key, and booked once.
    let (id, deposit, _) = h.offer(&maker, provider, 1_000).await;
    let session = maker_session(&h, id).await;
    let token = h.cash(deposit).await;
    ctx.cuts.arm(CUT_RECEIVED);
    assert!(fund::fund(&ctx, session, id, &token).await.is_err());
    ctx.cuts.clear();
    h.public
        .post(format!("/api/v1/offers/{id}/cancel"))
        .header("Authorization", maker.bearer())
        .send()
        .await
        .assert_status_is_ok();
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
    let refunds: i64 = sqlx::query_scalar(
        "select coalesce(sum(amount_sats), 0)::bigint from payouts
          where offer_id = $1 and purpose = 'late_refund'",
    )
    .bind(id)
    .fetch_one(&h.pool)
    .await
    .expect("payouts");
    assert_eq!(refunds, deposit_i, "the received sats go back to the maker");
    assert_eq!(
        settle_fund_intents(&ctx, Duration::ZERO)
            .await
            .expect("again"),
        0
    );
    h.stop().await;
}
