//! Invite codes, registration, roles and the OIDC provider's check, over HTTP against a real
//! PostgreSQL.

use std::sync::Arc;

use openpleb_api::{admin_app, public_app, AppState};
use openpleb_common::mint::MintClient;
use openpleb_devkit::{test_config, trader::fresh_nonce, Trader};
use poem::http::StatusCode;
use poem::test::{TestClient, TestResponse};
use serde_json::{json, Value};
use sqlx::PgPool;

const ADMIN: &str = "Bearer test-admin-token-0123456789";
const OIDC: &str = "Bearer test-oidc-token-0123456789";

struct Apps<P, A> {
    public: TestClient<P>,
    admin: TestClient<A>,
    pool: PgPool,
    _dir: tempfile::TempDir,
}

fn apps(pool: PgPool) -> Apps<impl poem::Endpoint, impl poem::Endpoint> {
    let dir = tempfile::tempdir().expect("dir");
    // No mint is needed for these endpoints; the URL is never called.
    let config = test_config("postgres://unused", "http://127.0.0.1:9");
    let state = AppState::new(
        Arc::new(config),
        pool.clone(),
        MintClient::new("http://127.0.0.1:9").expect("mint url"),
    )
    .expect("app state");
    Apps {
        public: TestClient::new(public_app(state.clone())),
        admin: TestClient::new(admin_app(state)),
        pool,
        _dir: dir,
    }
}

async fn body(resp: TestResponse) -> Value {
    let text = resp.0.into_body().into_string().await.expect("body");
    serde_json::from_str(&text).expect("json body")
}

async fn expect_error(resp: TestResponse, status: StatusCode, code: &str) {
    resp.assert_status(status);
    let v = body(resp).await;
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(pool)
        .await
        .expect("count")
}

impl<P: poem::Endpoint, A: poem::Endpoint> Apps<P, A> {
    async fn invite(&self) -> String {
        let resp = self
            .admin
            .post("/api/v1/admin/invite-codes")
            .header("Authorization", ADMIN)
            .body_json(&json!({}))
            .send()
            .await;
        resp.assert_status(StatusCode::CREATED);
        let v = body(resp).await;
        assert_eq!(v["status"], "valid");
        v["code"].as_str().expect("code").to_owned()
    }

    async fn register(&self, req: &Value) -> TestResponse {
        self.public
            .post("/api/v1/users/register")
            .body_json(req)
            .send()
            .await
    }
}

/// 1. admin creates an invite (default 7 days), it validates;
/// 2. a trader registers with it; the invite now reads as used (410);
/// 3. a second invite revoked by the admin reads as revoked; unknown codes are 404.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn invite_lifecycle(pool: PgPool) {
    let apps = apps(pool);
    let code = apps.invite().await;
    let resp = apps
        .public
        .get(format!("/api/v1/invite-codes/{code}/validate"))
        .send()
        .await;
    resp.assert_status_is_ok();
    let v = body(resp).await;
    assert_eq!(v["valid"], true);
    let expires: chrono::DateTime<chrono::Utc> = v["expiresAt"]
        .as_str()
        .expect("expiresAt")
        .parse()
        .expect("time");
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!(
        (6.9..=7.0).contains(&days),
        "default lifetime is 7 days: {days}"
    );

    let trader = Trader::new();
    apps.register(&trader.registration(&code))
        .await
        .assert_status(StatusCode::CREATED);
    let resp = apps
        .public
        .get(format!("/api/v1/invite-codes/{code}/validate"))
        .send()
        .await;
    expect_error(resp, StatusCode::GONE, "invite_used").await;
    // A used invite cannot be revoked.
    let resp = apps
        .admin
        .delete(format!("/api/v1/admin/invite-codes/{code}"))
        .header("Authorization", ADMIN)
        .send()
        .await;
    expect_error(resp, StatusCode::CONFLICT, "invite_not_revocable").await;

    let other = apps.invite().await;
    apps.admin
        .delete(format!("/api/v1/admin/invite-codes/{other}"))
        .header("Authorization", ADMIN)
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let resp = apps
        .public
        .get(format!("/api/v1/invite-codes/{other}/validate"))
        .send()
        .await;
    expect_error(resp, StatusCode::GONE, "invite_revoked").await;

    let resp = apps
        .public
        .get("/api/v1/invite-codes/NOSUCHCODE123/validate")
        .send()
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "invite_not_found").await;

    let resp = apps
        .admin
        .get("/api/v1/admin/invite-codes")
        .header("Authorization", ADMIN)
        .send()
        .await;
    resp.assert_status_is_ok();
    let list = body(resp).await;
    let statuses: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["status"].as_str())
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&"used") && statuses.contains(&"revoked"));
}

/// Every way a registration can be wrong gets its own code, and none of them writes anything.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn registration_errors_have_their_own_codes_and_write_nothing(pool: PgPool) {
    let apps = apps(pool);
    let code = apps.invite().await;
    let trader = Trader::new();
    let now = chrono::Utc::now().timestamp_millis();

    // Signed by someone else.
    let mut forged = trader.registration(&code);
    forged["signature"] = json!(Trader::new().sign_digest([0u8; 32]));
    expect_error(
        apps.register(&forged).await,
        StatusCode::BAD_REQUEST,
        "invalid_signature",
    )
    .await;

    // Clock skew both ways.
    let stale = trader.registration_at(&code, &fresh_nonce(), now - 61_000);
    expect_error(
        apps.register(&stale).await,
        StatusCode::BAD_REQUEST,
        "stale_timestamp",
    )
    .await;
    let future = trader.registration_at(&code, &fresh_nonce(), now + 61_000);
    expect_error(
        apps.register(&future).await,
        StatusCode::BAD_REQUEST,
        "future_timestamp",
    )
    .await;

    // Malformed hex.
    let mut bad_key = trader.registration(&code);
    bad_key["payload"]["pubkey"] = json!("zz".repeat(32));
    expect_error(
        apps.register(&bad_key).await,
        StatusCode::BAD_REQUEST,
        "malformed_pubkey",
    )
    .await;
    let mut bad_sig = trader.registration(&code);
    bad_sig["signature"] = json!("xyz");
    expect_error(
        apps.register(&bad_sig).await,
        StatusCode::BAD_REQUEST,
        "malformed_signature",
    )
    .await;
    let short_nonce = trader.registration_at(&code, "short", now);
    expect_error(
        apps.register(&short_nonce).await,
        StatusCode::BAD_REQUEST,
        "malformed_nonce",
    )
    .await;

    // Unknown invite.
    let unknown = trader.registration("NOSUCHINVITE99");
    expect_error(
        apps.register(&unknown).await,
        StatusCode::NOT_FOUND,
        "invite_not_found",
    )
    .await;

    // Expired invite.
    let expired = apps.invite().await;
    sqlx::query("update invite_codes set expires_at = now() - interval '1 minute', created_at = now() - interval '1 day' where code = $1")
        .bind(&expired)
        .execute(&apps.pool)
        .await
        .expect("expire invite");
    let late = trader.registration(&expired);
    expect_error(
        apps.register(&late).await,
        StatusCode::GONE,
        "invite_expired",
    )
    .await;

    assert_eq!(count(&apps.pool, "users").await, 0, "no partial write");

    // Success, then every replay.
    let good = trader.registration(&code);
    apps.register(&good)
        .await
        .assert_status(StatusCode::CREATED);
    expect_error(
        apps.register(&good).await,
        StatusCode::CONFLICT,
        "nonce_reused",
    )
    .await;
    let again = trader.registration(&code);
    expect_error(apps.register(&again).await, StatusCode::GONE, "invite_used").await;
    let second_invite = apps.invite().await;
    let duplicate = trader.registration(&second_invite);
    expect_error(
        apps.register(&duplicate).await,
        StatusCode::CONFLICT,
        "pubkey_registered",
    )
    .await;

    // The failed duplicate left its invite unused.
    let resp = apps
        .public
        .get(format!("/api/v1/invite-codes/{second_invite}/validate"))
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(count(&apps.pool, "users").await, 1);
}

/// Roles: the OIDC token answers the pubkey check only; the admin token does everything.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn roles_and_the_oidc_check(pool: PgPool) {
    let apps = apps(pool);
    let trader = Trader::new();
    let code = apps.invite().await;
    let resp = apps.register(&trader.registration(&code)).await;
    resp.assert_status(StatusCode::CREATED);
    let user = body(resp).await;
    let id = user["id"].as_str().expect("id").to_owned();

    let check = |token: &'static str, pubkey: String| {
        apps.admin
            .get(format!("/api/v1/oidc-api/pubkey/{pubkey}"))
            .header("Authorization", token)
            .send()
    };
    let resp = check(OIDC, trader.pubkey()).await;
    resp.assert_status_is_ok();
    assert_eq!(
        body(resp).await,
        json!({"registered": true, "active": true})
    );
    let resp = check(OIDC, Trader::new().pubkey()).await;
    assert_eq!(
        body(resp).await,
        json!({"registered": false, "active": false})
    );
    let resp = check(OIDC, "nothex".to_owned()).await;
    expect_error(resp, StatusCode::BAD_REQUEST, "malformed_pubkey").await;

    // The OIDC token may not administer.
    let resp = apps
        .admin
        .post("/api/v1/admin/invite-codes")
        .header("Authorization", OIDC)
        .body_json(&json!({}))
        .send()
        .await;
    expect_error(resp, StatusCode::FORBIDDEN, "insufficient_role").await;
    let resp = apps
        .admin
        .patch(format!("/api/v1/admin/users/{id}/status"))
        .header("Authorization", OIDC)
        .body_json(&json!({"status": "inactive"}))
        .send()
        .await;
    expect_error(resp, StatusCode::FORBIDDEN, "insufficient_role").await;
    // No token, or a wrong one.
    let resp = apps.admin.get("/api/v1/admin/invite-codes").send().await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    let resp = apps
        .admin
        .get("/api/v1/admin/invite-codes")
        .header("Authorization", "Bearer not-the-token-at-all")
        .send()
        .await;
    expect_error(resp, StatusCode::UNAUTHORIZED, "invalid_token").await;

    // The admin deactivates the user; the OIDC check now says inactive.
    let resp = apps
        .admin
        .patch(format!("/api/v1/admin/users/{id}/status"))
        .header("Authorization", ADMIN)
        .body_json(&json!({"status": "inactive"}))
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(body(resp).await["status"], "inactive");
    let resp = check(OIDC, trader.pubkey()).await;
    assert_eq!(
        body(resp).await,
        json!({"registered": true, "active": false})
    );

    // Admin routes do not exist on the public listener.
    apps.public
        .get("/api/v1/admin/invite-codes")
        .header("Authorization", ADMIN)
        .send()
        .await
        .assert_status(StatusCode::NOT_FOUND);
}
