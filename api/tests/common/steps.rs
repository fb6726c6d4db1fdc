//! The harness's steps: a trade's moves and reads as one-line calls over the scenario
//! builders, each panicking with what went wrong, for tests that check one move at a time.

use std::time::Duration;

use openpleb_common::wallet::WalletId;
use openpleb_devkit::scenario::trade::{claim, released_payouts, wait_status};
use openpleb_devkit::scenario::{party, wait, Auth, Trade, Transport, PNG};
use poem::test::TestResponse;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{body, Harness, Session};

impl Harness {
    pub async fn alerts(&self) -> Value {
        let reply = self
            .get("/admin/alerts", Auth::Admin)
            .await
            .expect("alerts");
        reply.expect(200).expect("alerts")
    }

    pub async fn provider(&self) -> Uuid {
        party::provider(self).await.expect("provider")
    }

    /// `maker` cancels `id`; the offer as the answer shows it (CANCELLED).
    pub async fn cancel(&self, id: Uuid, maker: &Session) -> Value {
        let reply = self
            .post_empty(&format!("/offers/{id}/cancel"), maker)
            .await;
        let v = reply.expect("cancel").expect(200).expect("cancelled");
        assert_eq!(v["status"], "CANCELLED", "{v}");
        v
    }

    /// Session `id` ran past its expiry (an hour ago, opened two hours ago).
    pub async fn expire_session(&self, id: Uuid) {
        sqlx::query(
            "update sessions set created_at = now() - interval '2 hours',
                    expires_at = now() - interval '1 hour' where id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .expect("expire session");
    }

    /// The lock path of offer `id`'s deposit quote (none: a quote the wallet made itself).
    pub async fn lock_path(&self, id: Uuid) -> Option<String> {
        sqlx::query_scalar("select lock_path from wallet_quotes where offer_id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("quote")
    }

    /// The id of offer `id`'s deposit quote at the mint.
    pub async fn deposit_quote(&self, id: Uuid) -> String {
        sqlx::query_scalar("select deposit_quote_id from offers where id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .expect("quote")
    }

    /// The sats `sql` sums for offer `id` (its `$1`).
    pub async fn sum_for(&self, sql: &'static str, id: Uuid) -> i64 {
        let sum = sqlx::query_scalar(sql).bind(id).fetch_one(&self.pool).await;
        sum.expect("sum")
    }

    /// The number `sql` (a `select count(*) ...`) gives.
    pub async fn count(&self, sql: &'static str) -> i64 {
        let n = sqlx::query_scalar(sql).fetch_one(&self.pool).await;
        n.expect("count")
    }

    /// A fresh fiat provider and `N` fresh parties: who a test's trades are between.
    pub async fn cast<const N: usize>(&self) -> (Uuid, [Session; N]) {
        let provider = self.provider().await;
        let mut parties = Vec::with_capacity(N);
        for _ in 0..N {
            parties.push(self.session().await);
        }
        let parties = parties.try_into().unwrap_or_else(|_| unreachable!());
        (provider, parties)
    }

    /// Registers a trader, logs in, mints a BAT and opens a session.
    pub async fn session(&self) -> Session {
        party::party(self).await.expect("session")
    }

    /// Creates an offer for `fiat` minor units; returns (offer id, deposit sats, maker key).
    pub async fn offer(
        &self,
        maker: &Session,
        provider: Uuid,
        fiat: i64,
    ) -> (Uuid, u64, cdk::nuts::SecretKey) {
        let trade = Trade::new(self).maker(maker).provider(provider).fiat(fiat);
        let trade = trade
            .field("description", json!("test"))
            .await
            .expect("offer");
        let (invoice, deposit) = trade.deposit().expect("deposit");
        assert!(invoice.starts_with("lnbc"), "{invoice}");
        (trade.id, deposit, trade.maker_key)
    }

    pub async fn get_offer(&self, id: Uuid, who: Option<&Session>) -> TestResponse {
        let mut req = self.public.get(format!("/api/v1/offers/{id}"));
        if let Some(s) = who {
            req = req.header("Authorization", s.bearer());
        }
        req.send().await
    }

    /// Waits until the offer (seen by `who`) has `status`.
    pub async fn wait_status(&self, id: Uuid, who: &Session, status: &str) -> Value {
        wait_status(self, id, who, status).await.expect("status")
    }

    /// Funds offer `id` with `token` as `maker`: the api answers 202 with the intent, a worker
    /// receives it; returns the intent once it ended (FUNDED, REFUNDED or ABANDONED).
    pub async fn fund_with_token(&self, id: Uuid, maker: &Session, token: &str) -> Value {
        let path = format!("/offers/{id}/fund");
        let reply = self.post(&path, maker, json!({ "token": token })).await;
        let intent = reply.expect("fund").expect(202).expect("accepted");
        assert_eq!(intent["state"], "OPEN", "{intent}");
        let intent_id = intent["id"].as_str().expect("intent id").to_owned();
        self.wait_intent(id, maker, &intent_id).await
    }

    /// Waits until funding intent `intent_id` of offer `id` ended; returns it.
    pub async fn wait_intent(&self, id: Uuid, maker: &Session, intent_id: &str) -> Value {
        let path = format!("/offers/{id}/fund/{intent_id}");
        wait::poll(&format!("funding intent {intent_id} ended"), || async {
            let v = self.get(&path, maker).await?.expect(200)?;
            Ok((v["state"] != "OPEN").then_some(v))
        })
        .await
        .expect("intent")
    }

    /// Waits until every payout `who` has for the offer is released; returns the tokens.
    pub async fn released_payouts(&self, id: Uuid, who: &Session) -> Vec<Value> {
        released_payouts(self, id, who).await.expect("released")
    }

    /// Waits until the payouts locked to `key` are released, fetching them by key proof (no
    /// session needed); returns them.
    pub async fn payouts_by_key(&self, id: Uuid, key: &cdk::nuts::SecretKey) -> Vec<Value> {
        let pubkey = key.public_key().x_only_public_key().to_string();
        for _ in 0..120 {
            let ts = chrono::Utc::now().timestamp_millis();
            let msg = format!("openpleb-payouts:{id}:{ts}");
            let sig = key.sign(msg.as_bytes()).expect("sign").to_string();
            let resp = self
                .public
                .post(format!("/api/v1/offers/{id}/payouts/by-key"))
                .body_json(&json!({"payoutPubkey": pubkey, "timestamp": ts, "signature": sig}))
                .send()
                .await;
            let v = body(resp).await;
            let list = v.as_array().cloned().unwrap_or_default();
            if !list.is_empty() && list.iter().all(|p| p["state"] == "RELEASED") {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("payouts of {id} for the key were not released");
    }

    /// Redeems tokens into a fresh wallet of the trader's with `key`; returns the sats.
    pub async fn redeem(&self, payouts: &[Value], key: &cdk::nuts::SecretKey) -> u64 {
        let wallet = WalletId::session(Uuid::new_v4());
        let mut total = 0;
        for p in payouts {
            let token = p["token"].as_str().expect("token");
            total += self
                .trader_wallets
                .receive(&wallet, token, vec![key.clone()])
                .await
                .expect("redeem");
        }
        total
    }

    /// A plain token worth `sats` from the test mint, paid for through the fake Lightning
    /// backend by a trader's own wallet.
    pub async fn cash(&self, sats: u64) -> String {
        use openpleb_common::wallet::MintOutcome;
        let wallet = WalletId::session(Uuid::new_v4());
        let quote = self
            .trader_wallets
            .create_mint_quote(&wallet, sats)
            .await
            .expect("quote");
        if self.manual {
            self.pay(&quote.request, sats).await;
        }
        for _ in 0..60 {
            if let MintOutcome::Issued(_) = self
                .trader_wallets
                .mint_quote(&wallet, &quote.quote_id)
                .await
                .expect("mint")
            {
                return self
                    .trader_wallets
                    .send(&wallet, sats, None)
                    .await
                    .expect("send")
                    .token;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("the trader's quote was never paid");
    }

    /// Takes a listed offer through a whole trade: `taker` claims and pays the bond, uploads a
    /// receipt, `maker` confirms. Returns the taker's payout secret key.
    pub async fn trade_to_completion(
        &self,
        id: Uuid,
        maker: &Session,
        taker: &Session,
    ) -> cdk::nuts::SecretKey {
        let taker_sk = self.claim(id, taker).await;
        self.wait_status(id, taker, "TAKER_BOND_PAID").await;
        self.upload_receipt(id, taker).await.assert_status_is_ok();
        let done = self
            .post_empty(&format!("/offers/{id}/complete"), maker)
            .await;
        done.expect("complete").expect(200).expect("completed");
        taker_sk
    }

    /// Claims `id` as `taker`; returns the taker's payout secret key. With manual payments the
    /// bond is paid too.
    pub async fn claim(&self, id: Uuid, taker: &Session) -> cdk::nuts::SecretKey {
        let (v, sk) = claim(self, id, taker).await.expect("claim");
        let invoice = v["bond"]["invoice"].as_str().expect("invoice");
        let sats = v["bond"]["amountSats"].as_u64().expect("sats");
        self.pay_invoice(invoice, sats).await.expect("bond paid");
        sk
    }

    /// Claims `id` as `taker` without paying the bond; the taker's payout key and the claim.
    pub async fn claim_unpaid(&self, id: Uuid, taker: &Session) -> (cdk::nuts::SecretKey, Value) {
        let (v, sk) = claim(self, id, taker).await.expect("claim");
        (sk, v)
    }

    /// Uploads the test PNG as `taker`.
    pub async fn upload_receipt(&self, id: Uuid, taker: &Session) -> TestResponse {
        let form = poem::test::TestForm::new().field(
            poem::test::TestFormField::bytes(PNG.to_vec())
                .name("image")
                .filename("receipt.png")
                .content_type("image/png"),
        );
        self.public
            .post(format!("/api/v1/offers/{id}/receipt"))
            .header("Authorization", taker.bearer())
            .multipart(form)
            .send()
            .await
    }

    /// Creates an offer as `maker` and funds it (paying the deposit invoice when payments are
    /// manual); waits for INVOICE_PAID. Returns the id and the maker's payout key.
    pub async fn funded_offer(
        &self,
        maker: &Session,
        provider: Uuid,
    ) -> (Uuid, cdk::nuts::SecretKey) {
        let trade = Trade::new(self).maker(maker).provider(provider).funded();
        let trade = trade.await.expect("funded offer");
        (trade.id, trade.maker_key)
    }

    pub async fn audit(&self) -> Value {
        let reply = self.get("/admin/audit", Auth::Admin).await.expect("audit");
        reply.expect(200).expect("audit")
    }
}

/// An offer created by `maker`, its deposit not paid; returns (id, deposit invoice, deposit sats, maker key).
pub async fn offer_with_invoice(
    h: &Harness,
    maker: &Session,
    provider: Uuid,
) -> (Uuid, String, u64, cdk::nuts::SecretKey) {
    let plan = Trade::new(h).maker(maker).provider(provider).fiat(1_000);
    let trade = plan
        .field("paymentDetails", json!("IBAN"))
        .await
        .expect("offer");
    let (invoice, sats) = trade.deposit().expect("deposit");
    (trade.id, invoice, sats, trade.maker_key)
}

/// Waits until the audit has checked `settled` offers and finds them balanced.
pub async fn balanced(h: &Harness, settled: i64) {
    let mut audit = Value::Null;
    for _ in 0..40 {
        audit = h.audit().await;
        if audit["offersChecked"] == settled {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(audit["offersChecked"], settled, "{audit}");
    assert_eq!(audit["balanced"], true, "{audit}");
}
