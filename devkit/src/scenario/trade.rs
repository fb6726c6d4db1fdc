//! One trade as a scenario: a [`Plan`] says how far it goes (`Trade::new(&api).funded()
//! .claimed().bond_paid().receipt()`), awaiting it plays each step through the API, and the
//! [`Trade`] it gives holds the offer, its parties and their payout keys for the steps and
//! checks that follow.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use anyhow::Context;
use cdk::nuts::SecretKey;
use serde_json::{json, Value};
use uuid::Uuid;

use super::party::{self, payout_key, Party};
use super::transport::{Reply, Transport, Upload};
use super::wait::poll;

/// How far a plan takes its trade; each stage includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// `POST /offers`: CREATED, its deposit invoice unpaid.
    Created,
    /// The deposit paid: INVOICE_PAID, in the book.
    Funded,
    /// A taker's claim, its bond invoice unpaid.
    Claimed,
    /// The bond paid: TAKER_BOND_PAID.
    BondPaid,
    /// The taker's receipt: RECEIPT_SUBMITTED.
    Receipt,
    /// The maker confirms: COMPLETED.
    Completed,
}

/// A trade to be played: its parties (fresh ones unless given), its offer and its last stage.
#[must_use = "a plan does nothing until awaited"]
pub struct Plan<'a, T: ?Sized> {
    api: &'a T,
    maker: Option<Party>,
    taker: Option<Party>,
    provider: Option<Uuid>,
    maker_key: Option<SecretKey>,
    offer: Value,
    claim: Value,
    until: Stage,
}

impl<'a, T: Transport + ?Sized> Plan<'a, T> {
    /// Made by `maker` (else a fresh party).
    pub fn maker(mut self, maker: &Party) -> Self {
        self.maker = Some(maker.clone());
        self
    }

    /// Claimed by `taker` (else a fresh party).
    pub fn taker(mut self, taker: &Party) -> Self {
        self.taker = Some(taker.clone());
        self
    }

    /// The maker's payouts locked to `key` (else a fresh key).
    pub fn maker_key(mut self, key: &SecretKey) -> Self {
        self.maker_key = Some(key.clone());
        self
    }

    /// Naming fiat provider `id` (else a fresh one).
    pub fn provider(mut self, id: Uuid) -> Self {
        self.provider = Some(id);
        self
    }

    /// For `minor` units of fiat (25.00 EUR unless set).
    pub fn fiat(self, minor: i64) -> Self {
        self.field("fiatAmount", json!(minor))
    }

    /// With `value` as the offer's field `name` (`paymentDetails`, `lifetimeSecs`, ...).
    pub fn field(mut self, name: &str, value: Value) -> Self {
        self.offer[name] = value;
        self
    }

    /// With `value` as the claim's field `name` (`reputation`, `notify`, ...).
    pub fn claim_field(mut self, name: &str, value: Value) -> Self {
        self.claim[name] = value;
        self
    }

    fn until(mut self, stage: Stage) -> Self {
        self.until = self.until.max(stage);
        self
    }

    /// Its deposit paid.
    pub fn funded(self) -> Self {
        self.until(Stage::Funded)
    }

    /// Claimed.
    pub fn claimed(self) -> Self {
        self.until(Stage::Claimed)
    }

    /// Claimed and the bond paid.
    pub fn bond_paid(self) -> Self {
        self.until(Stage::BondPaid)
    }

    /// With the taker's receipt.
    pub fn receipt(self) -> Self {
        self.until(Stage::Receipt)
    }

    /// Completed by the maker.
    pub fn completed(self) -> Self {
        self.until(Stage::Completed)
    }

    /// Only `POST /offers` as planned: its answer as it came (for a test of a refusal), the
    /// maker and its payout key.
    pub async fn send(&mut self) -> anyhow::Result<(Reply, Party, SecretKey)> {
        let api = self.api;
        let maker = match &self.maker {
            Some(m) => m.clone(),
            None => party::party(api).await?,
        };
        let provider = match self.provider {
            Some(p) => p,
            None => party::provider(api).await?,
        };
        self.provider = Some(provider);
        let maker_key = self.maker_key.clone().unwrap_or_else(SecretKey::generate);
        let key = maker_key.public_key().x_only_public_key().to_string();
        let mut body = self.offer.clone();
        body["fiatProviderId"] = json!(provider);
        body["makerPayoutPubkey"] = json!(key);
        let reply = api.post("/offers", &maker, body).await?;
        Ok((reply, maker, maker_key))
    }

    async fn play(mut self) -> anyhow::Result<Trade<'a, T>> {
        let api = self.api;
        let (reply, maker, maker_key) = self.send().await?;
        let created = reply.expect(201).context("create the offer")?;
        let id = created["offer"]["id"]
            .as_str()
            .context("offer id")?
            .parse()
            .context("offer uuid")?;
        let mut trade = Trade {
            api,
            id,
            maker,
            maker_key,
            created,
            taker: None,
            taker_key: None,
            claim: Value::Null,
        };
        if self.until >= Stage::Funded {
            trade.fund().await?;
        }
        if self.until >= Stage::Claimed {
            let taker = match self.taker {
                Some(t) => t,
                None => party::party(api).await?,
            };
            trade.claim_with(&taker, self.claim).await?;
        }
        if self.until >= Stage::BondPaid {
            trade.pay_bond().await?;
        }
        if self.until >= Stage::Receipt {
            trade.upload_receipt().await?;
        }
        if self.until >= Stage::Completed {
            trade.complete().await?;
        }
        Ok(trade)
    }
}

impl<'a, T: Transport + ?Sized> IntoFuture for Plan<'a, T> {
    type Output = anyhow::Result<Trade<'a, T>>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.play())
    }
}

/// A trade under way: the offer, its parties and their payout keys.
pub struct Trade<'a, T: ?Sized> {
    api: &'a T,
    /// The offer.
    pub id: Uuid,
    /// Its maker.
    pub maker: Party,
    /// The key the maker's payouts are locked to.
    pub maker_key: SecretKey,
    /// The answer to `POST /offers` (the offer and its deposit invoice).
    pub created: Value,
    /// Its taker, once claimed.
    pub taker: Option<Party>,
    /// The key the taker's payouts are locked to, once claimed.
    pub taker_key: Option<SecretKey>,
    /// The answer to the taker's claim (its bond invoice), once claimed.
    pub claim: Value,
}

impl<'a, T: Transport + ?Sized> Trade<'a, T> {
    /// A plan for a trade on `api`: created, unless a step says how far it goes.
    #[allow(clippy::new_ret_no_self)] // the plan becomes the trade when awaited
    pub fn new(api: &'a T) -> Plan<'a, T> {
        Plan {
            api,
            maker: None,
            taker: None,
            provider: None,
            maker_key: None,
            offer: json!({
                "fiatAmount": 2_500, "currency": "EUR",
                "paymentDetails": "IBAN DE00 1234 5678 9012 3456 78",
            }),
            claim: json!({}),
            until: Stage::Created,
        }
    }

    /// `/offers/{id}` followed by `rest` (`""`, `"/claim"`, ...).
    pub fn path(&self, rest: &str) -> String {
        format!("/offers/{}{rest}", self.id)
    }

    /// The deposit: (invoice, sats).
    pub fn deposit(&self) -> anyhow::Result<(String, u64)> {
        invoice(&self.created["deposit"])
    }

    /// The bond: (invoice, sats).
    pub fn bond(&self) -> anyhow::Result<(String, u64)> {
        invoice(&self.claim["bond"])
    }

    /// The taker (an error before the claim).
    pub fn taker(&self) -> anyhow::Result<&Party> {
        self.taker.as_ref().context("not claimed yet")
    }

    /// Pays the deposit invoice; waits for INVOICE_PAID.
    pub async fn fund(&self) -> anyhow::Result<Value> {
        fund(self.api, &self.created, &self.maker).await?;
        self.offer(&self.maker).await
    }

    /// `taker` claims with a fresh payout key; the claim's answer.
    pub async fn claim(&mut self, taker: &Party) -> anyhow::Result<Value> {
        self.claim_with(taker, json!({})).await
    }

    /// `taker` claims with a fresh payout key and the fields of `extra`; the claim's answer.
    pub async fn claim_with(&mut self, taker: &Party, extra: Value) -> anyhow::Result<Value> {
        let (reply, sk) = try_claim_with(self.api, self.id, taker, extra).await?;
        let claim = reply.expect(200).context("claim")?;
        self.claim = claim;
        self.taker = Some(taker.clone());
        self.taker_key = Some(sk);
        Ok(self.claim.clone())
    }

    /// Pays the bond invoice; waits for TAKER_BOND_PAID.
    pub async fn pay_bond(&self) -> anyhow::Result<Value> {
        let (invoice, sats) = self.bond()?;
        self.api.pay_invoice(&invoice, sats).await?;
        self.wait_status(self.taker()?, "TAKER_BOND_PAID").await
    }

    /// The taker uploads [`super::PNG`] as the receipt.
    pub async fn upload_receipt(&self) -> anyhow::Result<Value> {
        let path = self.path("/receipt");
        let reply = self.api.upload(&path, self.taker()?, Upload::png()).await?;
        reply.expect(200).context("receipt")
    }

    /// The maker confirms the payment arrived: COMPLETED.
    pub async fn complete(&self) -> anyhow::Result<Value> {
        let reply = self
            .api
            .post_empty(&self.path("/complete"), &self.maker)
            .await?;
        reply.expect(200).context("complete")
    }

    /// The maker cancels.
    pub async fn cancel(&self) -> anyhow::Result<Value> {
        let reply = self
            .api
            .post_empty(&self.path("/cancel"), &self.maker)
            .await?;
        reply.expect(200).context("cancel")
    }

    /// The offer as `who` sees it.
    pub async fn offer(&self, who: &Party) -> anyhow::Result<Value> {
        self.api.get(&self.path(""), who).await?.ok()
    }

    /// Waits until the offer, as `who` sees it, has `status`; the offer.
    pub async fn wait_status(&self, who: &Party, status: &str) -> anyhow::Result<Value> {
        wait_status(self.api, self.id, who, status).await
    }

    /// Waits until every payout `who` has for the offer is released; the payouts.
    pub async fn released_payouts(&self, who: &Party) -> anyhow::Result<Vec<Value>> {
        released_payouts(self.api, self.id, who).await
    }

    /// Checks that the maker's released payouts redeem to exactly `sats` with its key.
    pub async fn maker_redeems(&self, sats: u64) -> anyhow::Result<()> {
        let payouts = self.released_payouts(&self.maker).await?;
        super::check::redeems(self.api, &payouts, &self.maker_key, sats).await
    }

    /// Checks that the taker's released payouts redeem to exactly `sats` with its key.
    pub async fn taker_redeems(&self, sats: u64) -> anyhow::Result<()> {
        let key = self.taker_key.as_ref().context("not claimed yet")?;
        let payouts = self.released_payouts(self.taker()?).await?;
        super::check::redeems(self.api, &payouts, key, sats).await
    }
}

/// An invoice object's (invoice, amountSats).
pub fn invoice(v: &Value) -> anyhow::Result<(String, u64)> {
    let bolt11 = v["invoice"].as_str().context("invoice")?.to_owned();
    Ok((bolt11, v["amountSats"].as_u64().context("amountSats")?))
}

/// Pays the deposit of `created` (an answer to `POST /offers`) and waits until its offer,
/// as `maker` sees it, is INVOICE_PAID; the offer's id.
pub async fn fund<T: Transport + ?Sized>(
    api: &T,
    created: &Value,
    maker: &Party,
) -> anyhow::Result<Uuid> {
    let id = created["offer"]["id"]
        .as_str()
        .context("offer id")?
        .parse()?;
    let (invoice, sats) = self::invoice(&created["deposit"])?;
    api.pay_invoice(&invoice, sats).await?;
    wait_status(api, id, maker, "INVOICE_PAID").await?;
    Ok(id)
}

/// `taker` claims offer `id` with a fresh payout key; the claim's answer and the key.
pub async fn claim<T: Transport + ?Sized>(
    api: &T,
    id: Uuid,
    taker: &Party,
) -> anyhow::Result<(Value, SecretKey)> {
    let (reply, sk) = try_claim(api, id, taker).await?;
    Ok((reply.expect(200).context("claim")?, sk))
}

/// `taker` tries to claim offer `id` with a fresh payout key: the answer as it came, the key.
pub async fn try_claim<T: Transport + ?Sized>(
    api: &T,
    id: Uuid,
    taker: &Party,
) -> anyhow::Result<(Reply, SecretKey)> {
    try_claim_with(api, id, taker, json!({})).await
}

/// [`try_claim`] with the fields of `extra` in the claim (`reputation`, `notify`, ...).
pub async fn try_claim_with<T: Transport + ?Sized>(
    api: &T,
    id: Uuid,
    taker: &Party,
    extra: Value,
) -> anyhow::Result<(Reply, SecretKey)> {
    let (sk, key) = payout_key();
    let mut body = extra;
    body["takerPayoutPubkey"] = json!(key);
    let reply = api
        .post(&format!("/offers/{id}/claim"), taker, body)
        .await?;
    Ok((reply, sk))
}

/// Waits until `who`'s claim of offer `id` has `status` (PENDING, WON, LOST, LAPSED); the claim.
pub async fn wait_claim<T: Transport + ?Sized>(
    api: &T,
    id: Uuid,
    who: &Party,
    status: &str,
) -> anyhow::Result<Value> {
    let path = format!("/offers/{id}/claim");
    poll(&format!("the claim of {id} {status}"), || async {
        let v = api.get(&path, who).await?.body;
        Ok((v["status"] == status).then_some(v))
    })
    .await
}

/// Waits until offer `id`, as `who` sees it, has `status`; the offer.
pub async fn wait_status<T: Transport + ?Sized>(
    api: &T,
    id: Uuid,
    who: &Party,
    status: &str,
) -> anyhow::Result<Value> {
    let path = format!("/offers/{id}");
    let got = poll(&format!("offer {id} in {status}"), || async {
        let v = api.get(&path, who).await?.body;
        Ok((v["status"] == status).then_some(v))
    })
    .await;
    match got {
        Ok(v) => Ok(v),
        Err(e) => {
            let last = api.get(&path, who).await?.body;
            Err(e.context(format!("last seen: {last}")))
        }
    }
}

/// Waits until every payout `who` has for offer `id` is released; the payouts.
pub async fn released_payouts<T: Transport + ?Sized>(
    api: &T,
    id: Uuid,
    who: &Party,
) -> anyhow::Result<Vec<Value>> {
    let path = format!("/offers/{id}/payouts");
    poll(&format!("the payouts of offer {id}"), || async {
        let v = api.get(&path, who).await?.body;
        let list = v.as_array().cloned().unwrap_or_default();
        let released = !list.is_empty() && list.iter().all(|p| p["state"] == "RELEASED");
        Ok(released.then_some(list))
    })
    .await
}

/// An offer's amounts as its maker sees them: S, PF, TF, MB and TB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amounts {
    /// S: what the taker is paid for the fiat.
    pub s: u64,
    /// PF: the platform's fee.
    pub pf: u64,
    /// TF: the taker's reward.
    pub tf: u64,
    /// MB: the maker's bond.
    pub mb: u64,
    /// TB: the taker's bond.
    pub tb: u64,
}

impl Amounts {
    /// The amounts of `offer` (as `GET /offers/{id}` shows it to its maker).
    pub fn of(offer: &Value) -> anyhow::Result<Self> {
        let n = |k: &str| offer[k].as_u64().with_context(|| format!("{k}: {offer}"));
        Ok(Self {
            s: n("amountSats")?,
            pf: n("platformFeeSats")?,
            tf: n("takerRewardSats")?,
            mb: n("makerBondSats")?,
            tb: n("takerBondSats")?,
        })
    }

    /// The deposit: S + PF + TF + MB.
    pub fn deposit(&self) -> u64 {
        self.s + self.pf + self.tf + self.mb
    }

    /// What the taker is owed on completion: S + TF + TB.
    pub fn taker_owed(&self) -> u64 {
        self.s + self.tf + self.tb
    }
}
