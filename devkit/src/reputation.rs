//! A reputation client, as a wallet would be: blinds outputs for the issuer's active keyset,
//! unblinds the signatures it gets back and checks their DLEQ proofs against the published
//! keys. Built on cdk's wallet-side `dhke` functions only, independent of the server's signing.

use anyhow::Context;
use cdk::dhke::{blind_message, construct_proofs};
use cdk::nuts::{BlindSignature, Id, Keys, Proof, PublicKey, SecretKey};
use cdk::secret::Secret;
use serde_json::{json, Value};

/// An output waiting for its signature.
#[derive(Debug, Clone)]
pub struct Blinded {
    /// The secret that becomes the token.
    pub secret: Secret,
    /// The blinding factor.
    pub r: SecretKey,
    /// B_.
    pub b: PublicKey,
    /// The keyset it is for.
    pub keyset: Id,
}

impl Blinded {
    /// A fresh output for `keyset`.
    pub fn new(keyset: Id) -> anyhow::Result<Self> {
        let secret = Secret::generate();
        let (b, r) = blind_message(secret.as_bytes(), None)?;
        Ok(Self {
            secret,
            r,
            b,
            keyset,
        })
    }

    /// The wire form (NUT-00 BlindedMessage).
    pub fn json(&self) -> Value {
        json!({"amount": 1, "id": self.keyset.to_string(), "B_": self.b.to_hex()})
    }
}

/// The issuer's keysets as `GET /reputation/keys` publishes them: (id, keys, active).
pub fn keysets(v: &Value) -> anyhow::Result<Vec<(Id, Keys, bool)>> {
    v["keysets"]
        .as_array()
        .context("keysets")?
        .iter()
        .map(|k| {
            let id: Id = k["id"].as_str().context("id")?.parse()?;
            let keys: Keys = serde_json::from_value(k["keys"].clone())?;
            Ok((id, keys, k["active"] == true))
        })
        .collect()
}

/// Unblinds the signature for `out` found in `signed` (`GET /offers/{id}/reputation` rows),
/// checking its DLEQ proof against `keys` first. `None` when `out` was not signed.
pub fn unblind(signed: &Value, out: &Blinded, keys: &Keys) -> anyhow::Result<Option<Proof>> {
    let Some(row) = signed
        .as_array()
        .context("signatures")?
        .iter()
        .find(|r| r["B_"] == out.b.to_hex())
    else {
        return Ok(None);
    };
    let sig: BlindSignature = serde_json::from_value(row["signature"].clone())?;
    let key = keys
        .amount_key(sig.amount)
        .context("no key for the signature's amount")?;
    sig.verify_dleq(key, out.b)?;
    let proof = construct_proofs(
        vec![sig],
        vec![out.r.clone()],
        vec![out.secret.clone()],
        keys,
    )?
    .remove(0);
    Ok(Some(proof))
}

/// A token as staked (NUT-00 Proof, without its DLEQ: that would link it to its issuance).
pub fn stake_json(p: &Proof) -> Value {
    json!({"amount": 1, "id": p.keyset_id.to_string(), "secret": p.secret.to_string(), "C": p.c.to_hex()})
}
