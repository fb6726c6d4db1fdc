//! Whole trades over HTTP against the real test mint, with NUT-22 sessions, a worker and the
//! release of real P2PK-locked payouts.

mod common;

use common::{balanced, payout_key, Amounts, Auth, Harness, Trade, Transport, Upload};
use openpleb_common::wallet::WalletId;
use openpleb_devkit::scenario::check;
use openpleb_devkit::scenario::trade::try_claim;
use openpleb_devkit::scenario::wait::poll;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// 1. maker funds by invoice (the fake Lightning backend pays it) → INVOICE_PAID;
/// 2. taker claims, pays the bond → TAKER_BOND_PAID; uploads a receipt; maker completes;
/// 3. the taker redeems exactly S + TF + TB with its payout key, the maker MB, the treasury
///    holds PF, and the audit balances.
#[sqlx::test(migrations = false)]
async fn a_whole_trade_funded_by_lightning(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let h = Harness::start(opts, conn).await;
    let (provider, [maker, taker]) = h.cast().await;

    // 50.00 EUR at 60,000 EUR/BTC.
    let plan = Trade::new(&h).maker(&maker).provider(provider).fiat(5_000);
    let mut trade = plan.field("description", json!("test")).funded().await?;
    let (invoice, deposit) = trade.deposit()?;
    assert!(invoice.starts_with("lnbc"), "{invoice}");
    let a = Amounts::of(&trade.wait_status(&maker, "INVOICE_PAID").await?)?;
    assert_eq!(a.s, 83_334, "ceil(50.00 × 1e8 / 60,000.00)");
    assert_eq!(deposit, a.deposit());

    let claim = trade.claim(&taker).await?;
    assert_eq!(claim["bond"]["amountSats"].as_u64(), Some(a.tb));
    assert_eq!(
        claim["offer"]["paymentDetails"],
        Value::Null,
        "not before the bond"
    );
    let v = trade.pay_bond().await?;
    assert!(v["paymentDetails"]
        .as_str()
        .is_some_and(|d| d.starts_with("IBAN")));

    let receipt = Upload::png().note("paid at 10:42");
    let sent = h.upload(&trade.path("/receipt"), &taker, receipt).await?;
    assert_eq!(sent.expect(200)?["status"], "RECEIPT_SUBMITTED");
    let seen = h.get(&trade.path("/receipt"), &maker).await?;
    assert_eq!(seen.status, 200);
    assert_eq!(seen.header("content-type"), Some("image/png"));
    assert_eq!(seen.header("x-receipt-note"), Some("paid at 10:42"));

    assert_eq!(trade.complete().await?["status"], "COMPLETED");
    // Tokens are locked: the other party's key cannot redeem them.
    let taker_payouts = trade.released_payouts(&taker).await?;
    check::locked_against(&h, &taker_payouts[..1], &trade.maker_key).await?;
    trade.taker_redeems(a.taker_owed()).await?;
    trade.maker_redeems(a.mb).await?;

    // The treasury swept the platform fee.
    let treasury = WalletId::parse(openpleb_common::wallet::treasury::TREASURY_WALLET)?;
    let held = poll("the platform fee in the treasury", || async {
        let held = h.worker_wallets.balance(&treasury).await.map(|b| b.unspent);
        Ok((held.unwrap_or(0) == a.pf).then_some(a.pf))
    })
    .await?;
    assert_eq!(held, a.pf);

    let audit = h.audit().await;
    assert_eq!(audit["balanced"], true, "{audit}");
    assert_eq!(audit["offersChecked"], 1);

    let stats = h.get("/stats", Auth::Anonymous).await?.body;
    assert_eq!(
        stats,
        json!({"openOffers": 0, "activeTrades": 0, "completedTrades": 1, "registeredUsers": 2})
    );
    h.stop().await;
    Ok(())
}

/// The same trade, funded with a Cashu token instead of a Lightning payment.
#[sqlx::test(migrations = false)]
async fn a_whole_trade_funded_by_token(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    // Invoices are paid only on command, so the unused deposit invoice stays unpaid.
    let h = Harness::start_manual(opts, conn).await;
    let (provider, [maker, taker]) = h.cast().await;
    let (id, deposit, maker_sk) = h.offer(&maker, provider, 1_234).await;
    let fund = format!("/offers/{id}/fund");

    // A token for the wrong amount is refused and nothing changes.
    let wrong = json!({"token": h.cash(deposit - 1).await});
    h.post(&fund, &maker, wrong)
        .await?
        .refused(400, "token_amount_mismatch")?;
    let garbage = json!({"token": "cashuBnotatoken"});
    h.post(&fund, &maker, garbage)
        .await?
        .refused(400, "invalid_token")?;
    // A token someone already spent: the worker's receive finds out (the api spends no BAT
    // on a NUT-07 check), the intent ends ABANDONED with the reason, nothing sealed stays,
    // and the offer still waits for its deposit.
    let spent = h.cash(deposit).await;
    h.redeem(&[json!({ "token": spent })], &maker_sk).await;
    let intent = h.fund_with_token(id, &maker, &spent).await;
    assert_eq!(intent["state"], "ABANDONED", "{intent}");
    assert_eq!(intent["reason"], "token_spent", "{intent}");
    let sealed: i64 = sqlx::query_scalar(
        "select count(*) from fund_intents where offer_id = $1 and sealed_token is not null",
    )
    .bind(id)
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(sealed, 0, "nothing sealed stays after the intent ends");
    let offer = h.get(&format!("/offers/{id}"), &maker).await?.body;
    assert_eq!(offer["status"], "CREATED");

    // Checked, sealed to the workers' key and handed to a worker: 202, then FUNDED.
    let token = h.cash(deposit).await;
    let intent = h.fund_with_token(id, &maker, &token).await;
    assert_eq!(intent["state"], "FUNDED", "{intent}");
    assert_eq!(intent["receivedSats"], deposit);
    let a = Amounts::of(&h.wait_status(id, &maker, "INVOICE_PAID").await)?;
    // The same token cannot fund anything twice.
    let again = json!({"token": token});
    h.post(&fund, &maker, again)
        .await?
        .refused(409, "invalid_state")?;

    let taker_sk = h.trade_to_completion(id, &maker, &taker).await;
    let taker_payouts = h.released_payouts(id, &taker).await;
    let maker_payouts = h.released_payouts(id, &maker).await;
    assert_eq!(h.redeem(&taker_payouts, &taker_sk).await, a.taker_owed());
    assert_eq!(h.redeem(&maker_payouts, &maker_sk).await, a.mb);
    balanced(&h, 1).await;
    h.stop().await;
    Ok(())
}

/// 20 sessions claim one offer at once: the offer takes `CLAIM_MAX_PENDING_PER_OFFER` (10)
/// claims, the others get 409 `too_many_claims`; the mint pays every bond invoice, exactly one
/// bond wins the offer and the nine others come back to their payers' keys in full.
#[sqlx::test(migrations = false)]
async fn twenty_concurrent_claims_one_winner(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let h = Harness::start(opts, conn).await;
    let (provider, [maker]) = h.cast().await;
    let (id, _, _) = h.offer(&maker, provider, 2_000).await;
    h.wait_status(id, &maker, "INVOICE_PAID").await;
    let mut takers = Vec::new();
    for _ in 0..20 {
        takers.push(h.session().await);
    }
    let claims = takers.iter().map(|t| try_claim(&h, id, t));
    let results = futures::future::join_all(claims).await;
    let mut claimed = Vec::new();
    let mut refused = 0;
    for (r, t) in results.into_iter().zip(&takers) {
        let (reply, _) = r?;
        match reply.status {
            200 => claimed.push(t),
            409 => {
                reply.refused(409, "too_many_claims")?;
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((claimed.len(), refused), (10, 10));
    h.wait_status(id, &maker, "TAKER_BOND_PAID").await;
    let mut won = 0;
    for t in &claimed {
        let path = format!("/offers/{id}/claim");
        let status = poll("the claim decided", || async {
            let status = h.get(&path, *t).await?.body["status"].clone();
            Ok((status != "PENDING").then_some(status))
        })
        .await?;
        if status == "WON" {
            won += 1;
            continue;
        }
        assert_eq!(status, "LOST");
        let refund = h.released_payouts(id, t).await;
        assert_eq!(refund.len(), 1, "{refund:?}");
        assert_eq!(refund[0]["purpose"], "late_refund");
    }
    assert_eq!(won, 1);
    let bonds: i64 = sqlx::query_scalar(
        "select count(*) from wallet_quotes where offer_id = $1 and purpose = 'bond'",
    )
    .bind(id)
    .fetch_one(&h.pool)
    .await?;
    assert_eq!(
        bonds, 10,
        "one bond invoice per claim, none for a refused one"
    );
    h.stop().await;
    Ok(())
}

/// Bad input gets a clear 4xx with its own code and writes nothing.
#[sqlx::test(migrations = false)]
async fn bad_input_is_refused_and_writes_nothing(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let h = Harness::start(opts, conn).await;
    let (provider, [maker, taker]) = h.cast().await;
    let (_, key) = payout_key();
    let offer = |fiat: Value, key: &str| {
        json!({"fiatAmount": fiat, "currency": "EUR", "fiatProviderId": provider,
               "paymentDetails": "IBAN", "makerPayoutPubkey": key})
    };
    let mut other_currency = offer(json!(500), &key);
    other_currency["currency"] = json!("USD");
    let mut unknown_provider = offer(json!(500), &key);
    unknown_provider["fiatProviderId"] = json!(uuid::Uuid::new_v4());
    let cases = [
        (offer(json!(100_001), &key), "fiat_amount_too_large"),
        (offer(json!(-5), &key), "bad_request"),
        (offer(json!(12.5), &key), "bad_request"),
        (offer(json!(500), "not-a-key"), "invalid_payout_pubkey"),
        (other_currency, "unsupported_currency"),
        (unknown_provider, "unknown_fiat_provider"),
    ];
    for (body, code) in cases {
        h.post("/offers", &maker, body).await?.refused(400, code)?;
    }
    // Without a session.
    let anonymous = h
        .post("/offers", Auth::Anonymous, offer(json!(500), &key))
        .await?;
    anonymous.expect(401)?;
    assert_eq!(
        h.count("select count(*) from offers").await,
        0,
        "nothing written"
    );

    // Receipts: wrong state, not an image, too large.
    let (id, _, _) = h.offer(&maker, provider, 500).await;
    let receipt = format!("/offers/{id}/receipt");
    let early = h.upload(&receipt, &maker, Upload::png()).await?;
    early.refused(403, "not_your_role")?;
    h.wait_status(id, &maker, "INVOICE_PAID").await;
    let complete = h
        .post_empty(&format!("/offers/{id}/complete"), &maker)
        .await?;
    complete.refused(409, "invalid_state")?;
    h.claim(id, &taker).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    let gif = Upload::image(b"GIF89a not allowed".to_vec(), "r.gif");
    let resp = h.upload(&receipt, &taker, gif).await?;
    resp.refused(400, "receipt_not_an_image")?;
    let mut big = common::PNG.to_vec();
    big.resize(5 * 1024 * 1024 + 1, 0);
    let resp = h
        .upload(&receipt, &taker, Upload::image(big, "r.png"))
        .await?;
    resp.refused(413, "receipt_too_large")?;
    assert_eq!(h.count("select count(*) from receipts").await, 0);
    h.stop().await;
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Anonymous,
    Other,
    Maker,
    Taker,
    Admin,
}

/// Who may see what, in every state: each offer endpoint tried as anonymous, another
/// session, the maker, the taker and an admin; only the allowed combinations succeed.
#[sqlx::test(migrations = false)]
async fn visibility_in_every_state(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) -> anyhow::Result<()> {
    let h = Harness::start_manual(opts, conn).await;
    let (provider, [maker, taker, other]) = h.cast().await;
    let plan = Trade::new(&h).maker(&maker).provider(provider).fiat(700);
    let mut trade = plan.field("paymentDetails", json!("IBAN")).await?;
    let id = trade.id;

    let callers = [
        Caller::Anonymous,
        Caller::Other,
        Caller::Maker,
        Caller::Taker,
        Caller::Admin,
    ];
    let states = [
        "CREATED",
        "INVOICE_PAID",
        "TAKER_BOND_PAID",
        "RECEIPT_SUBMITTED",
        "COMPLETED",
    ];
    let mut checked = 0;
    for (i, state) in states.iter().enumerate() {
        // Advance to `state`.
        match *state {
            "INVOICE_PAID" => {
                trade.fund().await?;
            }
            "TAKER_BOND_PAID" => {
                // A claim alone changes nothing anyone sees; its paid bond does.
                let v = trade.claim(&taker).await?;
                assert_eq!(v["offer"]["status"], "INVOICE_PAID", "{v}");
                trade.pay_bond().await?;
            }
            "RECEIPT_SUBMITTED" => {
                trade.upload_receipt().await?;
            }
            "COMPLETED" => {
                trade.complete().await?;
            }
            _ => {}
        }
        let claimed = i >= 2;
        let has_receipt = i >= 3;
        for caller in callers {
            let auth = match caller {
                Caller::Other => Auth::from(&other),
                Caller::Maker => Auth::from(&maker),
                Caller::Taker => Auth::from(&taker),
                Caller::Anonymous => Auth::Anonymous,
                Caller::Admin => Auth::Admin,
            };
            // An admin reads an offer through the admin API.
            let base = match caller {
                Caller::Admin => format!("/admin/offers/{id}"),
                _ => format!("/offers/{id}"),
            };
            let is_party = caller == Caller::Maker || (caller == Caller::Taker && claimed);

            // GET /offers/{id}
            let resp = h.get(&base, auth.clone()).await?;
            let allowed = caller == Caller::Admin || is_party || *state == "INVOICE_PAID";
            assert_eq!(
                resp.is_success(),
                allowed,
                "GET offer as {caller:?} in {state}"
            );
            if allowed {
                let v = resp.body;
                assert_eq!(v["status"], *state);
                let sees_details = caller == Caller::Admin
                    || caller == Caller::Maker
                    || (caller == Caller::Taker && claimed);
                assert_eq!(
                    v["paymentDetails"].is_string(),
                    sees_details,
                    "details as {caller:?} in {state}"
                );
                assert_eq!(
                    v["depositSats"].is_number(),
                    caller == Caller::Admin || caller == Caller::Maker
                );
            }

            // GET /offers/{id}/receipt
            let resp = h.get(&format!("{base}/receipt"), auth.clone()).await?;
            let expect = match caller {
                Caller::Anonymous => 401,
                Caller::Admin if has_receipt => 200,
                _ if is_party && has_receipt => 200,
                _ => 404,
            };
            assert_eq!(resp.status, expect, "GET receipt as {caller:?} in {state}");

            // GET /offers/{id}/payouts
            if caller != Caller::Admin {
                let expect = match caller {
                    Caller::Anonymous => 401,
                    _ if is_party => 200,
                    _ => 404,
                };
                let resp = h.get(&format!("{base}/payouts"), auth).await?;
                assert_eq!(resp.status, expect, "GET payouts as {caller:?} in {state}");
            }
            checked += 1;
        }
        // The public book lists it only while INVOICE_PAID.
        let lists = |book: Value| {
            let items = book["items"].as_array().cloned().unwrap_or_default();
            items.iter().any(|o| o["id"] == id.to_string())
        };
        let book = h.get("/offers", Auth::Anonymous).await?.body;
        assert_eq!(lists(book), *state == "INVOICE_PAID", "book in {state}");
        // Another session's book is the public one; the maker's also shows its own offer.
        assert!(lists(h.get("/offers", &maker).await?.body));
    }
    assert_eq!(checked, states.len() * callers.len());

    // Actions in the wrong role: the taker cannot complete, another session cannot cancel.
    let (id2, _, _) = h.offer(&maker, provider, 300).await;
    let cancel = format!("/offers/{id2}/cancel");
    h.post_empty(&cancel, &other)
        .await?
        .refused(404, "offer_not_found")?;
    let cancelled = h.post_empty(&cancel, &maker).await?.expect(200)?;
    assert_eq!(cancelled["status"], "CANCELLED");
    h.stop().await;
    Ok(())
}

/// The mint's fees an offer's ledger records.
const MINT_FEES: &str = "select coalesce(sum(amount_sats), 0)::bigint from ledger_entries
                          where offer_id = $1 and kind = 'mint_fee'";

/// The value of a token, from the token itself.
fn token_value(token: &str) -> u64 {
    use std::str::FromStr;
    cdk::nuts::Token::from_str(token)
        .expect("token")
        .value()
        .expect("value")
        .into()
}

/// At a mint that charges input fees (100 ppk: a sat per ten input proofs), fees come
/// out of the moved amounts (DESIGN.md section 4): the deposit token carries the receive fee,
/// every payout token is worth its amount minus the fee its send paid, the ledger records the
/// fees, the audit balances, and the session wallets keep nothing owed to anyone.
#[sqlx::test(migrations = false)]
async fn a_whole_trade_at_a_mint_that_charges_fees(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual_with_fees(opts, conn, 100).await;
    let (provider, [maker, taker]) = h.cast().await;
    let (id, deposit, maker_sk) = h.offer(&maker, provider, 2_345).await;

    // Exactly the deposit is not enough once the mint takes its fee: refused before anything
    // is recorded (the api reads the keysets' fees), and the token stays the maker's.
    let exact = json!({ "token": h.cash(deposit).await });
    let resp = h.post(&format!("/offers/{id}/fund"), &maker, exact).await;
    let resp = resp.expect("fund");
    resp.refused(400, "token_amount_mismatch").expect("refused");
    // The deposit plus room for the fee funds it.
    let token = h.cash(deposit + 5).await;
    let intent = h.fund_with_token(id, &maker, &token).await;
    assert_eq!(intent["state"], "FUNDED", "{intent}");
    let a = Amounts::of(&h.wait_status(id, &maker, "INVOICE_PAID").await).expect("amounts");
    let (s, tf, tb, mb) = (a.s, a.tf, a.tb, a.mb);

    let taker_sk = h.trade_to_completion(id, &maker, &taker).await;

    let taker_payouts = h.released_payouts(id, &taker).await;
    let maker_payouts = h.payouts_by_key(id, &maker_sk).await;
    let mut fees = 0;
    for p in taker_payouts.iter().chain(&maker_payouts) {
        let amount = p["amountSats"].as_u64().expect("amount");
        let fee = p["feeSats"].as_u64().expect("fee");
        assert!(
            fee <= 8,
            "a send's fee is a few sats here: {amount} with fee {fee}"
        );
        assert_eq!(
            token_value(p["token"].as_str().expect("token")),
            amount - fee,
            "the token is worth what is owed minus the fee ({amount}, fee {fee})"
        );
        fees += fee;
    }
    let owed_taker: u64 = taker_payouts
        .iter()
        .map(|p| p["amountSats"].as_u64().expect("amount"))
        .sum();
    assert_eq!(owed_taker, s + tf + tb);
    let owed_maker: u64 = maker_payouts
        .iter()
        .map(|p| p["amountSats"].as_u64().expect("amount"))
        .sum();
    // MB: the token too small for the fee was refused before anything was received. (The
    // funding token's excess stays in the session's wallet for the session's sweep.)
    assert_eq!(owed_maker, mb, "the maker is owed MB");
    // Redeeming costs the recipients the mint's fee again, on their side.
    let got_taker = h.redeem(&taker_payouts, &taker_sk).await;
    assert!(got_taker < s + tf + tb && got_taker + 10 >= s + tf + tb);
    let got_maker = h.redeem(&maker_payouts, &maker_sk).await;
    assert!(got_maker < owed_maker && got_maker + 10 >= owed_maker);

    balanced(&h, 1).await;
    let recorded_fees = h.sum_for(MINT_FEES, id).await;
    assert!(
        recorded_fees >= i64::try_from(fees).expect("fees"),
        "every payout's fee is in the ledger"
    );
    let (maker_sid, taker_sid): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("select maker_session_id, taker_session_id from offers where id = $1")
            .bind(id)
            .fetch_one(&h.pool)
            .await
            .expect("sessions");
    for sid in [maker_sid, taker_sid] {
        let left = h
            .worker_wallets
            .balance(&WalletId::session(sid))
            .await
            .expect("balance");
        // The funding token's excess (at most 5 sats) and a fee fit's odd sat; nothing owed.
        assert!(
            left.unspent <= 6 && left.reserved == 0 && left.pending == 0,
            "nothing but the excess and fee dust stays behind: {left:?}"
        );
    }
    h.stop().await;
}
