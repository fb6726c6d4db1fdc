//! The people of a scenario: traders with a registered key and an open session (a
//! [`Party`]: its bearer and its key), and what an admin sets up for them (invites, a fiat
//! provider). Each goes through the API the way a client does: invite, registration, login at
//! the OIDC issuer, BATs minted at the mint, `POST /sessions`.

use anyhow::Context;
use serde_json::json;
use uuid::Uuid;

use cdk::nuts::SecretKey;

use super::transport::{Auth, Transport};
use crate::Trader;

/// A registered trader with an open session.
#[derive(Debug, Clone)]
pub struct Party {
    /// The registered key.
    pub trader: Trader,
    /// The BAT that is the session's bearer credential.
    pub bat: String,
}

impl Party {
    /// The session's `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.bat)
    }
}

impl From<&Party> for Auth {
    fn from(p: &Party) -> Self {
        Self::Bearer(p.bat.clone())
    }
}

impl From<Option<&Party>> for Auth {
    fn from(p: Option<&Party>) -> Self {
        p.map_or(Self::Anonymous, Self::from)
    }
}

/// A fresh per-trade payout key and its x-only hex.
pub fn payout_key() -> (SecretKey, String) {
    let sk = SecretKey::generate();
    let x = sk.public_key().x_only_public_key().to_string();
    (sk, x)
}

/// A fresh invite code.
pub async fn invite<T: Transport + ?Sized>(api: &T) -> anyhow::Result<String> {
    let v = api
        .post("/admin/invite-codes", Auth::Admin, json!({}))
        .await?
        .expect(201)?;
    Ok(v["code"].as_str().context("invite code")?.to_owned())
}

/// A fresh trader, registered with a fresh invite.
pub async fn registered<T: Transport + ?Sized>(api: &T) -> anyhow::Result<Trader> {
    let code = invite(api).await?;
    let trader = Trader::new();
    let body = trader.registration(&code);
    api.post("/users/register", Auth::Anonymous, body)
        .await?
        .expect(201)?;
    Ok(trader)
}

/// Opens a session with `bat` for `trader`.
pub async fn open_session<T: Transport + ?Sized>(
    api: &T,
    trader: &Trader,
    bat: String,
) -> anyhow::Result<Party> {
    api.post("/sessions", Auth::Anonymous, json!({ "bat": bat }))
        .await?
        .expect(201)?;
    Ok(Party {
        trader: trader.clone(),
        bat,
    })
}

/// A fresh trader with one open session.
pub async fn party<T: Transport + ?Sized>(api: &T) -> anyhow::Result<Party> {
    let mut one = sessions(api, 1).await?;
    one.pop().context("no session")
}

/// `n` sessions of one fresh trader (one login, `n` BATs).
pub async fn sessions<T: Transport + ?Sized>(api: &T, n: usize) -> anyhow::Result<Vec<Party>> {
    let trader = registered(api).await?;
    let mut out = Vec::with_capacity(n);
    // The mint signs at most a few dozen BATs per request.
    for chunk in (0..n).collect::<Vec<_>>().chunks(20) {
        for bat in api.bats(&trader, chunk.len() as u64).await? {
            out.push(open_session(api, &trader, bat).await?);
        }
    }
    Ok(out)
}

/// A well-formed BAT no mint ever signed: it reaches the point where the mint is asked.
pub fn made_up_bat() -> String {
    let keyset_id = match "00916bbf7ef91a36".parse() {
        Ok(id) => id,
        Err(e) => panic!("keyset id: {e}"),
    };
    cdk::nuts::BlindAuthToken::new(cdk::nuts::AuthProof {
        keyset_id,
        secret: cdk::secret::Secret::generate(),
        c: SecretKey::generate().public_key(),
        dleq: None,
    })
    .to_string()
}

/// A fresh bank-transfer fiat provider.
pub async fn provider<T: Transport + ?Sized>(api: &T) -> anyhow::Result<Uuid> {
    let name = format!("SEPA {}", Uuid::new_v4().simple());
    let body = json!({"name": name, "kind": "bank_transfer"});
    let v = api
        .post("/admin/fiat-providers", Auth::Admin, body)
        .await?
        .expect(201)?;
    v["id"]
        .as_str()
        .context("provider id")?
        .parse()
        .context("provider uuid")
}
