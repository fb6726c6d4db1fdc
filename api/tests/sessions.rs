//! The identity chain end to end over HTTP, against a real mint with NUT-21/22 auth and a real
//! OIDC issuer: admin creates an invite → a trader registers → logs in at the issuer (which
//! asks the backend's OIDC endpoint) → mints BATs at the mint → opens a session with one.

use std::sync::Arc;

use openpleb_api::{admin_app, public_app, AppState};
use openpleb_common::mint::{BlindAuthSetupError, MintClient};
use openpleb_devkit::scenario::in_process::Apps;
use openpleb_devkit::scenario::{party, Auth, Transport};
use openpleb_devkit::stack::AuthStack;
use openpleb_devkit::{test_config, DevMint, Trader};
use poem::http::StatusCode;
use poem::listener::TcpAcceptor;
use poem::test::{TestClient, TestResponse};
use poem::{EndpointExt, Server};
use serde_json::{json, Value};
use sqlx::PgPool;

const ADMIN: &str = "Bearer test-admin-token-0123456789";
const OIDC_TOKEN: &str = "test-oidc-token-0123456789";

async fn body(resp: TestResponse) -> Value {
    let text = resp.0.into_body().into_string().await.expect("body");
    serde_json::from_str(&text).expect("json")
}

async fn expect_error(resp: TestResponse, status: StatusCode, code: &str) {
    resp.assert_status(status);
    let v = body(resp).await;
    assert_eq!(v["error"]["code"], code, "{v}");
}

fn bearer(bat: &str) -> Auth {
    Auth::Bearer(bat.to_owned())
}

/// Serves the admin API on the stack's listener; the public and admin apps, without the
/// stack (the tests log in and mint BATs themselves).
async fn backend(pool: PgPool, stack: &mut AuthStack) -> Apps {
    let config = test_config("postgres://unused", &stack.mint.url);
    let state = AppState::new(
        Arc::new(config),
        pool,
        MintClient::new(&stack.mint.url).expect("mint url"),
    )
    .expect("app state");
    let listener = stack.admin_listener.take().expect("admin listener");
    let acceptor = TcpAcceptor::from_tokio(listener).expect("acceptor");
    let admin = admin_app(state.clone());
    tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(admin).await;
    });
    Apps {
        public: TestClient::new(public_app(state.clone()).map_to_response().boxed()),
        admin: TestClient::new(admin_app(state).map_to_response().boxed()),
        auth: None,
    }
}

/// Opens a session with `bat` in the body.
async fn open(apps: &Apps, bat: &str) -> anyhow::Result<openpleb_devkit::scenario::Reply> {
    apps.post("/sessions", Auth::Anonymous, json!({ "bat": bat }))
        .await
}

/// 1. invite → register → login at the issuer → BATs → session;
/// 2. the session works, the same BAT cannot open a second one (409), a BAT the mint never
///    signed is refused (401);
/// 3. renewal moves the session to a new BAT: the old one stops working, the new one works;
/// 4. logout ends it; an unregistered or deactivated pubkey cannot log in at the issuer.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn bat_sessions_over_the_real_chain(pool: PgPool) -> anyhow::Result<()> {
    let mut stack = AuthStack::start(OIDC_TOKEN).await?;
    let apps = backend(pool.clone(), &mut stack).await;

    let trader = party::registered(&apps).await?;
    let cat = stack.login(&trader).await.expect("login at the issuer");
    let bats = stack.mint_bats(&cat, 3).await?;
    assert_eq!(bats.len(), 3);

    // Open with the BAT in the body.
    let opened = open(&apps, &bats[0]).await?.expect(201)?;
    assert_eq!(opened["valid"], true);
    let current = apps.get("/sessions/current", bearer(&bats[0])).await?;
    assert_eq!(current.expect(200)?["expiresAt"], opened["expiresAt"]);

    // The same BAT cannot open a second session, by body or by header.
    open(&apps, &bats[0])
        .await?
        .refused(409, "bat_already_used")?;
    let by_header = apps.post("/sessions", bearer(&bats[0]), json!({})).await?;
    by_header.refused(409, "bat_already_used")?;

    // A BAT from another mint (same protocol, keys the platform's mint never had) is refused.
    let other_stack = AuthStack::start(OIDC_TOKEN).await?;
    // The second issuer trusts nobody's backend, so log in as its service account.
    let service = client_credentials(&other_stack).await;
    let foreign = openpleb_devkit::stack::mint_bats(&other_stack.mint.url, &service, 1).await?;
    open(&apps, &foreign[0])
        .await?
        .refused(401, "invalid_bat")?;
    open(&apps, "authAnotatoken")
        .await?
        .refused(400, "malformed_bat")?;

    // Renewal: the session moves to bats[1]; bats[0] stops working.
    let renew = json!({"bat": bats[1]});
    let renewed = apps
        .post("/sessions/renew", bearer(&bats[0]), renew)
        .await?;
    assert_eq!(
        renewed.expect(200)?["createdAt"],
        opened["createdAt"],
        "same session"
    );
    let old = apps.get("/sessions/current", bearer(&bats[0])).await?;
    old.refused(401, "invalid_session")?;
    let new = apps.get("/sessions/current", bearer(&bats[1])).await?;
    new.expect(200)?;
    let sessions: i64 = sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(&pool)
        .await?;
    assert_eq!(sessions, 1, "renewal keeps one session");

    // Logout.
    apps.delete("/sessions", bearer(&bats[1]))
        .await?
        .expect(204)?;
    let ended = apps.get("/sessions/current", bearer(&bats[1])).await?;
    ended.refused(401, "session_expired")?;

    // Expiry: a session past its time is refused with the same code.
    open(&apps, &bats[2]).await?.expect(201)?;
    sqlx::query("update sessions set created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' where ended_at is null")
        .execute(&pool)
        .await?;
    let expired = apps.get("/sessions/current", bearer(&bats[2])).await?;
    expired.refused(401, "session_expired")?;

    // The issuer only serves registered, active pubkeys.
    assert_eq!(stack.login(&Trader::new()).await, Err(403));
    let user_id: uuid::Uuid = sqlx::query_scalar("select id from users where pubkey = $1")
        .bind(trader.pubkey())
        .fetch_one(&pool)
        .await?;
    let path = format!("/admin/users/{user_id}/status");
    let inactive = json!({"status": "inactive"});
    apps.patch(&path, Auth::Admin, inactive)
        .await?
        .expect(200)?;
    assert_eq!(stack.login(&trader).await, Err(403));
    Ok(())
}

async fn client_credentials(stack: &AuthStack) -> String {
    let resp = cdk::http_client::HttpClient::new()
        .post(&format!("{}/token", stack.oidc.issuer))
        .json(&json!({
            "grant_type": "client_credentials",
            "client_id": openpleb_devkit::oidc::DEV_CLIENT_ID,
            "client_secret": openpleb_devkit::stack::DEV_SERVICE_SECRET,
        }))
        .send()
        .await
        .expect("token");
    let v: Value = serde_json::from_str(&resp.body_lossy()).expect("json");
    v["access_token"].as_str().expect("access token").to_owned()
}

/// A mint that does not blind-protect checkstate cannot verify BATs: the check says so clearly
/// (the api binary exits on it at the mint's first answer, `tests/outage`), and a session
/// attempt gets 503 rather than a session.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn a_mint_without_protected_checkstate_is_refused(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint without auth");
    let client = MintClient::new(&mint.url).expect("client");
    let err = client.check_blind_auth().await.expect_err("must refuse");
    assert!(matches!(err, BlindAuthSetupError::CheckstateUnprotected(_)));
    assert!(err
        .to_string()
        .contains("does not blind-protect POST /v1/checkstate"));

    let state = AppState::new(
        Arc::new(test_config("postgres://unused", &mint.url)),
        pool.clone(),
        client,
    )
    .expect("app state");
    let public = TestClient::new(public_app(state));
    // Any string would pass an unprotected checkstate; the backend must not accept it.
    let fake = party::made_up_bat();
    let resp = public
        .post("/api/v1/sessions")
        .body_json(&json!({"bat": fake}))
        .send()
        .await;
    expect_error(
        resp,
        StatusCode::SERVICE_UNAVAILABLE,
        "mint_auth_unavailable",
    )
    .await;
    let sessions: i64 = sqlx::query_scalar("select count(*) from sessions")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(sessions, 0);
    mint.stop().await.expect("stop");
}

/// Nothing in `sessions`, or in any table that references it, identifies a user.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn sessions_schema_identifies_nobody(pool: PgPool) {
    let columns: Vec<String> = sqlx::query_scalar(
        "select column_name::text from information_schema.columns
          where table_schema = 'public' and table_name = 'sessions' order by column_name",
    )
    .fetch_all(&pool)
    .await
    .expect("columns");
    assert_eq!(
        columns,
        [
            "bat_hash",
            "cleanup_claimed_until",
            "created_at",
            "ended_at",
            "expires_at",
            "id",
            "wallet_removed_at"
        ]
    );
    // Tables joined to sessions by a foreign key, and what sessions itself references.
    let linked: Vec<(String, String)> = sqlx::query_as(
        "select distinct tc.table_name::text, ccu.table_name::text
           from information_schema.table_constraints tc
           join information_schema.constraint_column_usage ccu
             on tc.constraint_name = ccu.constraint_name
          where tc.constraint_type = 'FOREIGN KEY'
            and (tc.table_name = 'sessions' or ccu.table_name = 'sessions')",
    )
    .fetch_all(&pool)
    .await
    .expect("foreign keys");
    for (from, to) in &linked {
        assert_ne!(to, "users", "{from} must not reference users");
        assert_ne!(from, "users", "users must not reference sessions");
        let table = if from == "sessions" { to } else { from };
        let cols: Vec<String> = sqlx::query_scalar(
            "select column_name::text from information_schema.columns
              where table_schema = 'public' and table_name = $1",
        )
        .bind(table)
        .fetch_all(&pool)
        .await
        .expect("columns");
        for c in cols {
            for banned in [
                "user_id",
                "ip",
                "ip_address",
                "remote_addr",
                "invite_code_id",
            ] {
                assert_ne!(c, banned, "{table}.{c} would identify a user");
            }
        }
    }
}

/// The 101st anonymous request in the window is refused with `Retry-After`; a session has its
/// own, larger budget and is unaffected; the admin listener limits per role.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn rate_limits_are_tiered(pool: PgPool) {
    let mut stack = AuthStack::start(OIDC_TOKEN).await.expect("auth stack");
    let apps = backend(pool.clone(), &mut stack).await;
    let trader = party::registered(&apps).await.expect("registered");
    let (public, admin) = (&apps.public, &apps.admin);
    let cat = stack.login(&trader).await.expect("login");
    let bats = stack.mint_bats(&cat, 1).await.expect("BAT");
    // Registering and opening the session were anonymous requests from this client too.
    let resp = public
        .post("/api/v1/sessions")
        .body_json(&json!({"bat": bats[0]}))
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
    resp.assert_header("x-ratelimit-remaining", "98");

    for i in 3..=100u32 {
        let resp = public.get("/api/v1/config").send().await;
        resp.assert_status_is_ok();
        resp.assert_header("x-ratelimit-limit", "100");
        resp.assert_header("x-ratelimit-remaining", (100 - i).to_string());
    }
    let resp = public.get("/api/v1/config").send().await;
    resp.assert_status(StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = resp
        .0
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(
        (1..=9).contains(&retry),
        "one request refills every 9 s: {retry}"
    );
    expect_error(resp, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // The session is unaffected and has its own budget.
    let resp = public
        .get("/api/v1/sessions/current")
        .header("Authorization", format!("Bearer {}", bats[0]))
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("x-ratelimit-limit", "1000");
    resp.assert_header("x-ratelimit-remaining", "999");

    // A made-up bearer token does not escape the anonymous limit.
    let resp = public
        .get("/api/v1/config")
        .header("Authorization", "Bearer authAmadeup")
        .send()
        .await;
    resp.assert_status(StatusCode::TOO_MANY_REQUESTS);

    // Admins have their own budget.
    let resp = admin
        .get("/api/v1/admin/invite-codes")
        .header("Authorization", ADMIN)
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_header("x-ratelimit-limit", "5000");
}
