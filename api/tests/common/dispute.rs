//! Dispute steps over HTTP, shared by the tests that take trades through an issue: a trade
//! taken to RECEIPT_SUBMITTED, the reveal of a registered key, each party's answers and an
//! admin's resolution.

use openpleb_common::domain::dispute::reveal_digest;
use openpleb_common::domain::role::Role;
use poem::test::TestResponse;
use serde_json::{json, Value};
use uuid::Uuid;

pub use super::Amounts;
use super::{Harness, Session};

/// Now, in milliseconds (reveal timestamps).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A reveal of `who`'s registered key for `id` as `role`, signed now.
pub fn reveal(who: &Session, id: Uuid, role: Role) -> Value {
    let ts = now_ms();
    json!({
        "pubkey": who.trader.pubkey(),
        "timestamp": ts,
        "signature": who.trader.sign_digest(reveal_digest(id, role, ts)),
    })
}

/// The registered key's secret, as cdk wants it for redeeming locked tokens.
pub fn registered_key(who: &Session) -> cdk::nuts::SecretKey {
    cdk::nuts::SecretKey::from_slice(&who.trader.secret_key().secret_bytes()).expect("key")
}

/// A trade taken to RECEIPT_SUBMITTED.
pub struct Trade {
    pub id: Uuid,
    pub maker: Session,
    pub taker: Session,
    pub amounts: Amounts,
}

/// A fresh maker and taker take a funded offer to RECEIPT_SUBMITTED.
pub async fn to_receipt(h: &Harness, provider: Uuid) -> Trade {
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, _) = h.funded_offer(&maker, provider).await;
    h.claim(id, &taker).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    h.upload_receipt(id, &taker).await.assert_status_is_ok();
    let v = h.wait_status(id, &maker, "RECEIPT_SUBMITTED").await;
    Trade {
        id,
        amounts: Amounts::of(&v).expect("amounts"),
        maker,
        taker,
    }
}

pub async fn post(h: &Harness, who: &Session, path: String, body: Value) -> TestResponse {
    h.public
        .post(path)
        .header("Authorization", who.bearer())
        .body_json(&body)
        .send()
        .await
}

pub async fn mark_issue(h: &Harness, t: &Trade) -> TestResponse {
    let body = json!({
        "reason": "not_received",
        "message": "nothing arrived on my account",
        "reveal": reveal(&t.maker, t.id, Role::Maker),
    });
    post(h, &t.maker, format!("/api/v1/offers/{}/issue", t.id), body).await
}

pub async fn taker_answers(h: &Harness, t: &Trade, action: &str) -> TestResponse {
    let body = if action == "DISPUTE" {
        json!({"action": "DISPUTE", "message": "I paid; see the receipt",
               "reveal": reveal(&t.taker, t.id, Role::Taker)})
    } else {
        json!({"action": action})
    };
    post(
        h,
        &t.taker,
        format!("/api/v1/offers/{}/issue/answer", t.id),
        body,
    )
    .await
}

pub async fn maker_answers(h: &Harness, t: &Trade, action: &str) -> TestResponse {
    let body = json!({"action": action, "message": "still nothing here"});
    post(
        h,
        &t.maker,
        format!("/api/v1/offers/{}/dispute/answer", t.id),
        body,
    )
    .await
}

pub async fn resolve(h: &Harness, id: Uuid, token: &str, resolution: &str) -> TestResponse {
    h.admin
        .post(format!("/api/v1/admin/disputes/{id}/resolve"))
        .header("Authorization", token)
        .body_json(&json!({"resolution": resolution, "note": "looked at both sides"}))
        .send()
        .await
}
