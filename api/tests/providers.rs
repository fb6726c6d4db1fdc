//! Fiat providers: admin create, update, delete; the public list shows active ones only.

use std::sync::Arc;

use openpleb_api::{admin_app, public_app, AppState};
use openpleb_common::mint::MintClient;
use openpleb_devkit::test_config;
use poem::http::StatusCode;
use poem::test::{TestClient, TestResponse};
use serde_json::{json, Value};
use sqlx::PgPool;

const ADMIN: &str = "Bearer test-admin-token-0123456789";

async fn body(resp: TestResponse) -> Value {
    serde_json::from_str(&resp.0.into_body().into_string().await.expect("body")).expect("json")
}

#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn provider_admin_and_public_list(pool: PgPool) {
    let state = AppState::new(
        Arc::new(test_config("postgres://unused", "http://127.0.0.1:9")),
        pool,
        MintClient::new("http://127.0.0.1:9").expect("mint"),
    )
    .expect("app state");
    let public = TestClient::new(public_app(state.clone()));
    let admin = TestClient::new(admin_app(state));

    let resp = admin
        .post("/api/v1/admin/fiat-providers")
        .header("Authorization", ADMIN)
        .body_json(&json!({"name": "SEPA Instant", "kind": "bank_transfer"}))
        .send()
        .await;
    resp.assert_status(StatusCode::CREATED);
    let sepa = body(resp).await;
    assert_eq!(sepa["active"], true);
    let id = sepa["id"].as_str().expect("id").to_owned();

    let resp = admin
        .post("/api/v1/admin/fiat-providers")
        .header("Authorization", ADMIN)
        .body_json(&json!({"name": "SEPA Instant", "kind": "payment_qr"}))
        .send()
        .await;
    resp.assert_status(StatusCode::CONFLICT);
    assert_eq!(body(resp).await["error"]["code"], "provider_name_taken");

    let resp = admin
        .post("/api/v1/admin/fiat-providers")
        .header("Authorization", ADMIN)
        .body_json(&json!({"name": "Bad", "kind": "carrier_pigeon"}))
        .send()
        .await;
    resp.assert_status(StatusCode::BAD_REQUEST);

    admin
        .post("/api/v1/admin/fiat-providers")
        .header("Authorization", ADMIN)
        .body_json(&json!({"name": "Old QR", "kind": "payment_qr", "active": false}))
        .send()
        .await
        .assert_status(StatusCode::CREATED);

    let resp = public.get("/api/v1/fiat-providers").send().await;
    resp.assert_status_is_ok();
    let names: Vec<String> = body(resp)
        .await
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        names,
        ["SEPA Instant"],
        "inactive providers are not offered"
    );

    let resp = admin
        .put(format!("/api/v1/admin/fiat-providers/{id}"))
        .header("Authorization", ADMIN)
        .body_json(&json!({"name": "SEPA", "kind": "bank_transfer", "active": true}))
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(body(resp).await["name"], "SEPA");

    admin
        .delete(format!("/api/v1/admin/fiat-providers/{id}"))
        .header("Authorization", ADMIN)
        .send()
        .await
        .assert_status(StatusCode::NO_CONTENT);
    let resp = admin
        .delete(format!("/api/v1/admin/fiat-providers/{id}"))
        .header("Authorization", ADMIN)
        .send()
        .await;
    resp.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(body(resp).await["error"]["code"], "provider_not_found");
}
