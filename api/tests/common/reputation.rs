//! Reputation helpers shared by the reputation tests: the issuer's published active keyset, and
//! tokens signed by the server's own issuer and unblinded by the client, as a completed trade
//! would give them (`reputation.rs` earns them through trades instead).

use cdk::nuts::{BlindedMessage, Id, Keys, Proof};
use openpleb_devkit::reputation::{keysets, unblind, Blinded};
use serde_json::json;

use super::{body, Harness};

/// The issuer's active keyset, as `GET /reputation/keys` publishes it.
pub async fn active(h: &Harness) -> (Id, Keys) {
    let v = body(h.public.get("/api/v1/reputation/keys").send().await).await;
    keysets(&v)
        .expect("keysets")
        .into_iter()
        .find(|(_, _, active)| *active)
        .map(|(id, keys, _)| (id, keys))
        .expect("an active keyset")
}

/// A fresh token signed by the server's issuer and unblinded by the client, its DLEQ proof
/// checked against the published keys.
pub fn issued(h: &Harness, keyset: Id, keys: &Keys) -> Proof {
    let out = Blinded::new(keyset).expect("blind");
    let message: BlindedMessage = serde_json::from_value(out.json()).expect("message");
    let signature = h.trade_ctx().reputation.sign(&message).expect("sign");
    let signed = json!([{"B_": out.b.to_hex(), "signature": signature}]);
    unblind(&signed, &out, keys).expect("DLEQ").expect("signed")
}
