//! The mint down: an outage the api and the worker wait out, and a mint that answers without
//! what the api relies on: a configuration error the api exits on.

use std::net::SocketAddr;
use std::time::Duration;

use cdk::nuts::SecretKey;
use openpleb_common::health::Dependency;
use openpleb_common::jobs::queues;
use openpleb_devkit::client::{new_party, request};
use openpleb_devkit::oidc::DEV_CLIENT_ID;
use openpleb_devkit::scenario::check::refuses_to_start_aside;
use openpleb_devkit::{test_config, DevMint, DevMintOptions, MintAuthOptions};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use super::support::*;

/// The refund's release job and payout: (job status, attempts, payout state).
async fn refund(pool: &PgPool, offer: &str) -> (String, i32, String) {
    let offer: uuid::Uuid = offer.parse().expect("offer id");
    let payout: String =
        sqlx::query_scalar("select state from payouts where offer_id = $1 and party = 'maker'")
            .bind(offer)
            .fetch_one(pool)
            .await
            .expect("payout");
    let (status, attempts): (String, i32) = sqlx::query_as(
        "select status, attempts from apalis.jobs where job_type = $1 order by run_at desc limit 1",
    )
    .bind(queues::RELEASE_PAYOUTS)
    .fetch_one(pool)
    .await
    .expect("release job");
    (status, attempts, payout)
}

/// 1. The api (the binary, on a fresh database it migrates) and a worker start while the mint
///    is stopped, and stay up: the book is served, `/ready` is 503 naming the mint (its api
///    scope and `/health` 200), opening a session answers 503 `mint_unavailable` with
///    `Retry-After`, the gauge says 0.
/// 2. The mint starts: `/ready` is 200 within a few seconds, no restart; a maker opens a
///    session, creates an offer and pays it; the worker mints the deposit.
/// 3. The mint stops again; the maker cancels (a move that needs no mint): the refund's
///    release job waits in its queue, never tried.
/// 4. The mint starts again (same port, same data): the worker releases the refund.
#[sqlx::test(migrations = false)]
async fn a_stopped_mint_is_waited_out(_opts: PgPoolOptions, conn: PgConnectOptions) {
    let db_url = database_url(&conn);
    let dir = tempfile::tempdir().expect("dir");
    let admin_port = free_port();
    let oidc = issuer(admin_port).await;
    let mint_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mint_url = format!("http://{mint_addr}");
    let mint_opts = DevMintOptions {
        listen: mint_addr,
        db_path: Some(dir.path().join("mint.db")),
        seed: [9u8; 32],
        payment_delay_secs: 3600,
        auth: Some(MintAuthOptions::openpleb(
            oidc.discovery_url.clone(),
            DEV_CLIENT_ID,
        )),
        ..DevMintOptions::default()
    };

    // 1. Both start without the mint.
    let mut api = ApiProcess::start(&db_url, &mint_url, dir.path(), admin_port);
    let wallets = dir.path().join("wallets");
    let worker = Worker::start(test_config(&db_url, &mint_url), &wallets).await;
    api.wait_listening().await;
    wait_until(Duration::from_secs(60), "database migrated", || async {
        api.ready("?scope=api").await.status == 200
    })
    .await;
    let ready = api.ready("").await;
    assert_eq!(ready.status, 503, "{:?}", ready.body);
    assert_eq!(ready.body["down"], json!(["mint"]));
    assert_eq!(
        (&ready.body["database"], &ready.body["mint"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(
        http("GET", &api.public, "/health", None, None).await.status,
        200
    );
    let book = http("GET", &api.public, "/api/v1/offers", None, None).await;
    assert_eq!(book.status, 200, "{:?}", book.body);
    let body = json!({"bat": unsigned_bat()});
    let open = http("POST", &api.public, "/api/v1/sessions", None, Some(&body)).await;
    assert_eq!(
        (open.status, open.code()),
        (503, "mint_unavailable"),
        "{:?}",
        open.body
    );
    assert_eq!(open.header("retry-after"), Some("3"));
    assert_eq!(api.dependency_gauge("mint").await, Some(0.0));
    assert_eq!(api.dependency_gauge("database").await, Some(1.0));
    let health = worker.ctx.health.clone();
    wait_until(
        Duration::from_secs(10),
        "the worker sees the mint down",
        || {
            let down = health.is_down(Dependency::Mint);
            async move { down }
        },
    )
    .await;
    api.assert_running();
    worker.assert_running();

    // 2. The mint starts: both notice by themselves.
    let mint = DevMint::start_with(mint_opts.clone()).await.expect("mint");
    let took = wait_until(Duration::from_secs(15), "ready with the mint", || async {
        api.ready("").await.status == 200
    })
    .await;
    assert!(
        took < Duration::from_secs(5),
        "ready {took:?} after the mint started"
    );
    assert_eq!(api.dependency_gauge("mint").await, Some(1.0));
    let env = api.endpoints(&mint_url, &oidc.issuer);
    let provider = provider(&env).await;
    let maker = new_party(&env, "maker", false)
        .await
        .expect("maker session");
    let key = SecretKey::generate();
    let (id, _) = funded_offer(&env, &mint, &maker, &provider, &key).await;

    // 3. The mint stops; a move that needs none still happens, its payout waits.
    mint.stop().await.expect("stop mint");
    wait_until(Duration::from_secs(15), "the outage noticed", || async {
        health.is_down(Dependency::Mint) && api.ready("").await.status == 503
    })
    .await;
    let url = format!("{}/offers/{id}/cancel", env.api);
    request("POST", &url, Some(&maker.bat), None)
        .await
        .expect("cancel while the mint is down");
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect_with(conn)
        .await
        .expect("pool");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, attempts, payout) = refund(&pool, &id).await;
    assert_eq!(
        (status.as_str(), attempts, payout.as_str()),
        ("Pending", 0, "RECORDED"),
        "the release waits, untried"
    );
    api.assert_running();
    worker.assert_running();

    // 4. The mint is back: the queued job runs.
    let mint = DevMint::start_with(mint_opts).await.expect("mint again");
    wait_until(Duration::from_secs(60), "the refund released", || async {
        refund(&pool, &id).await.2 == "RELEASED"
    })
    .await;
    assert_eq!(api.ready("").await.status, 200);
    api.assert_running();
    worker.assert_running();
    worker.stop().await;
    drop(api);
    pool.close().await;
    mint.stop().await.expect("stop mint");
}

/// A mint that answers but does not blind-protect `POST /v1/checkstate` cannot verify BATs:
/// the api started against it exits with code 2 and one line saying so, even while
/// PostgreSQL is unreachable (the mint's first answer decides, not the start).
#[tokio::test]
async fn a_mint_without_protected_checkstate_stops_the_api() {
    let mint = DevMint::start().await.expect("mint without auth");
    let stderr = refuses_to_start_aside(api_command("postgres://127.0.0.1:1/none", &mint.url))
        .await
        .expect("refused");
    assert!(
        stderr.contains("does not blind-protect POST /v1/checkstate"),
        "{stderr}"
    );
    mint.stop().await.expect("stop mint");
}
