//! PostgreSQL down under a running api and worker: both say so, refuse cleanly, and carry on
//! by themselves once it is back; the trade in flight completes.

use std::sync::Arc;
use std::time::Duration;

use cdk::nuts::SecretKey;
use openpleb_common::health::Dependency;
use openpleb_devkit::client::{call, new_party, request, upload_receipt, CallError};
use openpleb_devkit::stack::AuthStack;
use openpleb_devkit::{test_config, Trader};
use serde_json::{json, Value};

use super::support::*;

/// Pays `invoice` (an offer's deposit or bond view) at the stack's mint.
async fn pay(stack: &AuthStack, invoice: &Value) {
    stack
        .mint
        .pay_invoice(
            invoice["invoice"].as_str().expect("invoice"),
            invoice["amountSats"].as_u64().expect("amount"),
        )
        .await
        .expect("pay");
}

/// The maker's and the taker's payouts of `offer` (party, state); one per wallet they come
/// from.
async fn payouts(pool: &sqlx::PgPool, offer: &str) -> Vec<(String, String)> {
    let offer: uuid::Uuid = offer.parse().expect("offer id");
    sqlx::query_as(
        "select party, state from payouts
          where offer_id = $1 and party in ('maker', 'taker') order by party",
    )
    .bind(offer)
    .fetch_all(pool)
    .await
    .unwrap_or_default()
}

/// 1. The api (the binary) and a worker run against a private cluster; a trade gets as far as
///    the taker's receipt.
/// 2. PostgreSQL stops. `/health` stays 200; `/ready` (both scopes) is 503 naming the
///    database and the gauge says 0; reads and the maker's confirmation answer 503
///    `database_unavailable` with `Retry-After`; the worker's queues wait.
/// 3. PostgreSQL starts again: `/ready` is 200 by itself, the confirmation did not half-happen
///    (the offer is still RECEIPT_SUBMITTED), the maker confirms again and the worker releases
///    both payouts. Neither process ever exited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_lost_and_back_needs_no_restart() {
    let mut stack = AuthStack::start_manual_payments(OIDC_TOKEN)
        .await
        .expect("mint and issuer");
    // The issuer asks the api's admin listener about pubkeys: the binary takes the port.
    let admin_port = stack
        .admin_listener
        .take()
        .and_then(|l| l.local_addr().ok())
        .expect("admin port")
        .port();
    let cluster = Arc::new(tokio::task::block_in_place(Cluster::start));
    cluster.create_database("openpleb").await;
    let db_url = cluster.url("openpleb");
    let dir = tempfile::tempdir().expect("dir");
    let mint_url = stack.mint.url.clone();

    // 1. A trade up to the receipt.
    let mut api = ApiProcess::start(&db_url, &mint_url, dir.path(), admin_port);
    let wallets = dir.path().join("wallets");
    let worker = Worker::start(test_config(&db_url, &mint_url), &wallets).await;
    api.wait_listening().await;
    wait_until(Duration::from_secs(60), "ready", || async {
        api.ready("").await.status == 200
    })
    .await;
    let env = api.endpoints(&mint_url, &stack.oidc.issuer);
    let provider = provider(&env).await;
    let maker = new_party(&env, "maker", false).await.expect("maker");
    let taker = new_party(&env, "taker", false).await.expect("taker");
    let created = create_offer(&env, &maker, &provider, &SecretKey::generate()).await;
    let id = created["offer"]["id"].as_str().expect("id").to_owned();
    pay(&stack, &created["deposit"]).await;
    wait_status(&env, &maker.bat, &id, "INVOICE_PAID").await;
    let claimed = call(
        "POST",
        &format!("{}/offers/{id}/claim", env.api),
        Some(&taker.bat),
        Some(&json!({"takerPayoutPubkey": Trader::new().pubkey()})),
    )
    .await
    .expect("claim");
    pay(&stack, &claimed["bond"]).await;
    wait_status(&env, &maker.bat, &id, "TAKER_BOND_PAID").await;
    upload_receipt(&env, &taker, &id).await.expect("receipt");
    wait_status(&env, &maker.bat, &id, "RECEIPT_SUBMITTED").await;

    // 2. The database goes away under both.
    tokio::task::block_in_place(|| cluster.down());
    wait_until(Duration::from_secs(15), "the api notices", || async {
        let ready = api.ready("?scope=api").await;
        ready.status == 503 && ready.body["down"] == json!(["database"])
    })
    .await;
    let ready = api.ready("").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["down"], json!(["database"]), "{:?}", ready.body);
    assert_eq!(
        http("GET", &api.public, "/health", None, None).await.status,
        200
    );
    assert_eq!(api.dependency_gauge("database").await, Some(0.0));
    let book = http("GET", &api.public, "/api/v1/offers", None, None).await;
    assert_eq!((book.status, book.code()), (503, "database_unavailable"));
    assert_eq!(book.header("retry-after"), Some("3"));
    let complete = format!("/api/v1/offers/{id}/complete");
    let refused = http("POST", &api.public, &complete, Some(&maker.bat), None).await;
    assert_eq!(
        (refused.status, refused.code()),
        (503, "database_unavailable")
    );
    let health = worker.ctx.health.clone();
    wait_until(Duration::from_secs(15), "the worker notices", || {
        let down = health.is_down(Dependency::Database);
        async move { down }
    })
    .await;
    // Long enough for every queue worker's heartbeat to fail and be restarted.
    tokio::time::sleep(Duration::from_secs(12)).await;
    api.assert_running();
    worker.assert_running();

    // 3. Back: nothing to restart, and the trade completes.
    tokio::task::block_in_place(|| cluster.up());
    let took = wait_until(Duration::from_secs(20), "ready again", || async {
        api.ready("").await.status == 200
    })
    .await;
    assert!(
        took < Duration::from_secs(8),
        "ready {took:?} after the database"
    );
    assert_eq!(api.dependency_gauge("database").await, Some(1.0));
    assert_eq!(
        offer_status(&env, &maker.bat, &id).await,
        "RECEIPT_SUBMITTED",
        "the refused confirmation left nothing behind"
    );
    let url = format!("{}/offers/{id}/complete", env.api);
    match request("POST", &url, Some(&maker.bat), None).await {
        Ok(_) => {}
        Err(CallError::Status(s, body)) => panic!("complete: {s} {body}"),
        Err(e) => panic!("complete: {e}"),
    }
    wait_status(&env, &maker.bat, &id, "COMPLETED").await;
    let pool = sqlx::PgPool::connect(&db_url).await.expect("pool");
    wait_until(Duration::from_secs(60), "both payouts released", || async {
        let states = payouts(&pool, &id).await;
        let has = |party: &str| states.iter().any(|(p, _)| p == party);
        has("maker") && has("taker") && states.iter().all(|(_, s)| s == "RELEASED")
    })
    .await;
    assert!(health.is_up(Dependency::Database));
    api.assert_running();
    worker.assert_running();
    worker.stop().await;
    pool.close().await;
}
