//! The session cache across api processes: two apps over one database, as two api hosts
//! behind a balancer are. A logout or renewal through one ends reads through the other at
//! once (PostgreSQL `NOTIFY`), and within `SESSION_CACHE_MS` even when no notice arrives.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Client, Harness, Session};
use openpleb_api::{public_app, AppState};
use openpleb_common::mint::MintClient;
use openpleb_devkit::test_config;
use poem::http::StatusCode;
use poem::test::TestClient;
use poem::EndpointExt;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The longest the cache may keep a session (`SESSION_CACHE_MS`' cap).
const CAP: Duration = Duration::from_secs(5);

/// A second api over the harness' database, its session cache at the cap.
async fn second_api(h: &Harness, conn: PgConnectOptions) -> Client {
    let mut config = test_config("postgres://unused", &h.stack.mint.url);
    config.api.session_cache = CAP;
    config.api.rate_limits.anonymous = 100_000;
    let pool = openpleb_common::db::pool_options(5)
        .connect_with(conn)
        .await
        .expect("pool");
    let state = AppState::new(
        Arc::new(config),
        pool,
        MintClient::new(&h.stack.mint.url).expect("mint url"),
    )
    .expect("app state");
    TestClient::new(public_app(state).map_to_response().boxed())
}

async fn current(api: &Client, bearer: &str) -> StatusCode {
    api.get("/api/v1/sessions/current")
        .header("Authorization", bearer)
        .send()
        .await
        .0
        .status()
}

/// How long until reads of `bearer` through `api` are refused (panics after `limit`).
async fn refused_within(api: &Client, bearer: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let status = current(api, bearer).await;
        if status == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() < limit,
            "still served after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `s`' session twice through `api`, so its cache holds it.
async fn cached_in(api: &Client, s: &Session) {
    for _ in 0..2 {
        assert_eq!(current(api, &s.bearer()).await, StatusCode::OK);
    }
}

/// A logout and a renewal through api A end reads through api B in well under the cache's
/// age, though B's cache would keep the session for 5 s.
#[sqlx::test(migrations = false)]
async fn a_logout_through_one_api_ends_reads_through_another(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_configured(opts, conn.clone(), |c| c.api.session_cache = CAP).await;
    let b = second_api(&h, conn).await;

    let s = h.session().await;
    cached_in(&b, &s).await;
    h.public
        .delete("/api/v1/sessions")
        .header("Authorization", s.bearer())
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let lag = refused_within(&b, &s.bearer(), Duration::from_secs(1)).await;
    eprintln!("logout through A: reads through B refused after {lag:?}");

    // Renewal moves the session onto a new BAT: the old one stops reading through B too.
    let s = h.session().await;
    cached_in(&b, &s).await;
    let cat = h.stack.login(&s.trader).await.expect("login");
    let fresh = h.stack.mint_bats(&cat, 1).await.expect("BAT").remove(0);
    h.public
        .post("/api/v1/sessions/renew")
        .header("Authorization", s.bearer())
        .body_json(&json!({ "bat": fresh }))
        .send()
        .await
        .assert_status_is_ok();
    let lag = refused_within(&b, &s.bearer(), Duration::from_secs(1)).await;
    eprintln!("renewal through A: old BAT refused through B after {lag:?}");
    assert_eq!(
        current(&b, &format!("Bearer {fresh}")).await,
        StatusCode::OK
    );
    h.stop().await;
}

/// A session ended with no notice (a direct update, as a lost notification would leave it)
/// is still refused through B within the cache's cap.
#[sqlx::test(migrations = false)]
async fn without_a_notice_the_cap_bounds_the_lag(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn.clone()).await;
    let b = second_api(&h, conn).await;
    let s = h.session().await;
    cached_in(&b, &s).await;
    sqlx::query("update sessions set ended_at = now() where ended_at is null")
        .execute(&h.pool)
        .await
        .expect("end quietly");
    let lag = refused_within(&b, &s.bearer(), CAP + Duration::from_secs(1)).await;
    eprintln!("quiet end: reads through B refused after {lag:?}");
    h.stop().await;
}
