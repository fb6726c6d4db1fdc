//! Invite codes, registration, roles and the OIDC provider's check, over HTTP against a real
//! PostgreSQL.

use std::sync::Arc;

use openpleb_api::{admin_app, public_app, AppState};
use openpleb_common::mint::MintClient;
use openpleb_devkit::scenario::in_process::Apps;
use openpleb_devkit::scenario::{Auth, Reply, Transport};
use openpleb_devkit::{test_config, trader::fresh_nonce, Trader};
use poem::{test::TestClient, EndpointExt};
use serde_json::{json, Value};
use sqlx::PgPool;

const OIDC: &str = "test-oidc-token-0123456789";

struct Backend {
    apps: Apps,
    pool: PgPool,
}

fn apps(pool: PgPool) -> Backend {
    // No mint is needed for these endpoints; the URL is never called.
    let config = test_config("postgres://unused", "http://127.0.0.1:9");
    let state = AppState::new(
        Arc::new(config),
        pool.clone(),
        MintClient::new("http://127.0.0.1:9").expect("mint url"),
    )
    .expect("app state");
    let apps = Apps {
        public: TestClient::new(public_app(state.clone()).map_to_response().boxed()),
        admin: TestClient::new(admin_app(state).map_to_response().boxed()),
        auth: None,
    };
    Backend { apps, pool }
}

/// A refusal with `status`, `code` and a message for people.
fn refused(reply: Reply, status: u16, code: &str) -> anyhow::Result<()> {
    let v = reply.refused(status, code)?;
    let message = v["error"]["message"].as_str().unwrap_or_default();
    anyhow::ensure!(!message.is_empty(), "no message: {v}");
    Ok(())
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
        .fetch_one(pool)
        .await
        .expect("count")
}

impl Backend {
    async fn invite(&self) -> anyhow::Result<String> {
        let v = self
            .apps
            .post("/admin/invite-codes", Auth::Admin, json!({}))
            .await?;
        let v = v.expect(201)?;
        assert_eq!(v["status"], "valid");
        Ok(v["code"].as_str().expect("code").to_owned())
    }

    async fn register(&self, req: &Value) -> anyhow::Result<Reply> {
        self.apps
            .post("/users/register", Auth::Anonymous, req.clone())
            .await
    }

    async fn validate(&self, code: &str) -> anyhow::Result<Reply> {
        let path = format!("/invite-codes/{code}/validate");
        self.apps.get(&path, Auth::Anonymous).await
    }
}

/// 1. admin creates an invite (default 7 days), it validates;
/// 2. a trader registers with it; the invite now reads as used (410);
/// 3. a second invite revoked by the admin reads as revoked; unknown codes are 404.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn invite_lifecycle(pool: PgPool) -> anyhow::Result<()> {
    let b = apps(pool);
    let code = b.invite().await?;
    let v = b.validate(&code).await?.expect(200)?;
    assert_eq!(v["valid"], true);
    let expires: chrono::DateTime<chrono::Utc> =
        v["expiresAt"].as_str().expect("expiresAt").parse()?;
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!(
        (6.9..=7.0).contains(&days),
        "default lifetime is 7 days: {days}"
    );

    let trader = Trader::new();
    b.register(&trader.registration(&code)).await?.expect(201)?;
    refused(b.validate(&code).await?, 410, "invite_used")?;
    // A used invite cannot be revoked.
    let used = format!("/admin/invite-codes/{code}");
    refused(
        b.apps.delete(&used, Auth::Admin).await?,
        409,
        "invite_not_revocable",
    )?;

    let other = b.invite().await?;
    let path = format!("/admin/invite-codes/{other}");
    b.apps.delete(&path, Auth::Admin).await?.expect(204)?;
    refused(b.validate(&other).await?, 410, "invite_revoked")?;
    refused(b.validate("NOSUCHCODE123").await?, 404, "invite_not_found")?;

    let list = b
        .apps
        .get("/admin/invite-codes", Auth::Admin)
        .await?
        .expect(200)?;
    let statuses: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["status"].as_str())
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.contains(&"used") && statuses.contains(&"revoked"));
    Ok(())
}

/// Every way a registration can be wrong gets its own code, and none of them writes anything.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn registration_errors_have_their_own_codes_and_write_nothing(
    pool: PgPool,
) -> anyhow::Result<()> {
    let b = apps(pool);
    let code = b.invite().await?;
    let trader = Trader::new();
    let now = chrono::Utc::now().timestamp_millis();

    // Signed by someone else.
    let mut forged = trader.registration(&code);
    forged["signature"] = json!(Trader::new().sign_digest([0u8; 32]));
    // Clock skew both ways.
    let stale = trader.registration_at(&code, &fresh_nonce(), now - 61_000);
    let future = trader.registration_at(&code, &fresh_nonce(), now + 61_000);
    // Malformed hex.
    let mut bad_key = trader.registration(&code);
    bad_key["payload"]["pubkey"] = json!("zz".repeat(32));
    let mut bad_sig = trader.registration(&code);
    bad_sig["signature"] = json!("xyz");
    let short_nonce = trader.registration_at(&code, "short", now);
    // Unknown invite.
    let unknown = trader.registration("NOSUCHINVITE99");
    let cases = [
        (forged, 400, "invalid_signature"),
        (stale, 400, "stale_timestamp"),
        (future, 400, "future_timestamp"),
        (bad_key, 400, "malformed_pubkey"),
        (bad_sig, 400, "malformed_signature"),
        (short_nonce, 400, "malformed_nonce"),
        (unknown, 404, "invite_not_found"),
    ];
    for (registration, status, code) in cases {
        refused(b.register(&registration).await?, status, code)?;
    }

    // Expired invite.
    let expired = b.invite().await?;
    sqlx::query("update invite_codes set expires_at = now() - interval '1 minute', created_at = now() - interval '1 day' where code = $1")
        .bind(&expired)
        .execute(&b.pool)
        .await?;
    let late = trader.registration(&expired);
    refused(b.register(&late).await?, 410, "invite_expired")?;

    assert_eq!(count(&b.pool, "users").await, 0, "no partial write");

    // Success, then every replay.
    let good = trader.registration(&code);
    b.register(&good).await?.expect(201)?;
    refused(b.register(&good).await?, 409, "nonce_reused")?;
    let again = trader.registration(&code);
    refused(b.register(&again).await?, 410, "invite_used")?;
    let second_invite = b.invite().await?;
    let duplicate = trader.registration(&second_invite);
    refused(b.register(&duplicate).await?, 409, "pubkey_registered")?;

    // The failed duplicate left its invite unused.
    b.validate(&second_invite).await?.expect(200)?;
    assert_eq!(count(&b.pool, "users").await, 1);
    Ok(())
}

/// Roles: the OIDC token answers the pubkey check only; the admin token does everything.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn roles_and_the_oidc_check(pool: PgPool) -> anyhow::Result<()> {
    let b = apps(pool);
    let trader = Trader::new();
    let code = b.invite().await?;
    let user = b.register(&trader.registration(&code)).await?.expect(201)?;
    let id = user["id"].as_str().expect("id").to_owned();
    let oidc = || Auth::Bearer(OIDC.to_owned());

    let apps = &b.apps;
    let check = |pubkey: String| async move {
        let path = format!("/oidc-api/pubkey/{pubkey}");
        apps.get(&path, oidc()).await
    };
    let v = check(trader.pubkey()).await?.expect(200)?;
    assert_eq!(v, json!({"registered": true, "active": true}));
    let v = check(Trader::new().pubkey()).await?.body;
    assert_eq!(v, json!({"registered": false, "active": false}));
    refused(check("nothex".to_owned()).await?, 400, "malformed_pubkey")?;

    // The OIDC token may not administer.
    let invite = b
        .apps
        .post("/admin/invite-codes", oidc(), json!({}))
        .await?;
    refused(invite, 403, "insufficient_role")?;
    let status = format!("/admin/users/{id}/status");
    let inactive = json!({"status": "inactive"});
    let deactivate = b.apps.patch(&status, oidc(), inactive.clone()).await?;
    refused(deactivate, 403, "insufficient_role")?;
    // No token, or a wrong one.
    let anonymous = b.apps.get("/admin/invite-codes", Auth::Anonymous).await?;
    anonymous.expect(401)?;
    let wrong = Auth::Bearer("not-the-token-at-all".to_owned());
    refused(
        b.apps.get("/admin/invite-codes", wrong).await?,
        401,
        "invalid_token",
    )?;

    // The admin deactivates the user; the OIDC check now says inactive.
    let v = b
        .apps
        .patch(&status, Auth::Admin, inactive)
        .await?
        .expect(200)?;
    assert_eq!(v["status"], "inactive");
    let v = check(trader.pubkey()).await?.body;
    assert_eq!(v, json!({"registered": true, "active": false}));

    // Admin routes do not exist on the public listener.
    let on_public = b.apps.public.get("/api/v1/admin/invite-codes");
    let on_public = on_public.header(
        "Authorization",
        format!(
            "Bearer {}",
            openpleb_devkit::scenario::in_process::ADMIN_TOKEN
        ),
    );
    on_public
        .send()
        .await
        .assert_status(poem::http::StatusCode::NOT_FOUND);
    Ok(())
}
