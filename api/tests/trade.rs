//! Whole trades over HTTP against the real test mint, with NUT-22 sessions, a worker and the
//! release of real P2PK-locked payouts.

mod common;

use common::{body, expect_error, payout_key, Harness, PNG};
use openpleb_common::wallet::WalletId;
use poem::http::StatusCode;
use poem::test::{TestForm, TestFormField};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// 1. maker funds by invoice (the fake Lightning backend pays it) → INVOICE_PAID;
/// 2. taker claims, pays the bond → TAKER_BOND_PAID; uploads a receipt; maker completes;
/// 3. the taker redeems exactly S + TF + TB with its payout key, the maker MB, the treasury
///    holds PF, and the audit balances.
#[sqlx::test(migrations = false)]
async fn a_whole_trade_funded_by_lightning(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;

    // 50.00 EUR at 60,000 EUR/BTC.
    let (id, deposit, maker_sk) = h.offer(&maker, provider, 5_000).await;
    let v = h.wait_status(id, &maker, "INVOICE_PAID").await;
    let s = v["amountSats"].as_u64().expect("S");
    let tf = v["takerRewardSats"].as_u64().expect("TF");
    let tb = v["takerBondSats"].as_u64().expect("TB");
    let pf = v["platformFeeSats"].as_u64().expect("PF");
    let mb = v["makerBondSats"].as_u64().expect("MB");
    assert_eq!(s, 83_334, "ceil(50.00 × 1e8 / 60,000.00)");
    assert_eq!(deposit, s + pf + tf + mb);

    let (taker_sk, taker_key) = payout_key();
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/claim"))
        .header("Authorization", taker.bearer())
        .body_json(&json!({"takerPayoutPubkey": taker_key}))
        .send()
        .await;
    resp.assert_status_is_ok();
    let claim = body(resp).await;
    assert_eq!(claim["bond"]["amountSats"].as_u64(), Some(tb));
    assert_eq!(
        claim["offer"]["paymentDetails"],
        serde_json::Value::Null,
        "not before the bond"
    );
    let v = h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    assert!(v["paymentDetails"]
        .as_str()
        .is_some_and(|d| d.starts_with("IBAN")));

    let form = TestForm::new()
        .field(
            TestFormField::bytes(PNG.to_vec())
                .name("image")
                .filename("receipt.png")
                .content_type("image/png"),
        )
        .text("note", "paid at 10:42");
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/receipt"))
        .header("Authorization", taker.bearer())
        .multipart(form)
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(body(resp).await["status"], "RECEIPT_SUBMITTED");
    let resp = h
        .public
        .get(format!("/api/v1/offers/{id}/receipt"))
        .header("Authorization", maker.bearer())
        .send()
        .await;
    resp.assert_status_is_ok();
    resp.assert_content_type("image/png");
    resp.assert_header("x-receipt-note", "paid at 10:42");

    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/complete"))
        .header("Authorization", maker.bearer())
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(body(resp).await["status"], "COMPLETED");

    let taker_payouts = h.released_payouts(id, &taker).await;
    let maker_payouts = h.released_payouts(id, &maker).await;
    // Tokens are locked: the other party's key cannot redeem them.
    let wallet = WalletId::session(uuid::Uuid::new_v4());
    let stolen = h
        .trader_wallets
        .receive(
            &wallet,
            taker_payouts[0]["token"].as_str().expect("token"),
            vec![maker_sk.clone()],
        )
        .await;
    assert!(
        stolen.is_err(),
        "the maker cannot redeem the taker's payout"
    );
    assert_eq!(h.redeem(&taker_payouts, &taker_sk).await, s + tf + tb);
    assert_eq!(h.redeem(&maker_payouts, &maker_sk).await, mb);

    // The treasury swept the platform fee.
    let treasury = WalletId::parse(openpleb_common::wallet::treasury::TREASURY_WALLET).expect("id");
    let mut held = 0;
    for _ in 0..40 {
        held = h
            .worker_wallets
            .balance(&treasury)
            .await
            .map(|b| b.unspent)
            .unwrap_or(0);
        if held == pf {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(held, pf);

    let audit = h.audit().await;
    assert_eq!(audit["balanced"], true, "{audit}");
    assert_eq!(audit["offersChecked"], 1);

    let stats = body(h.public.get("/api/v1/stats").send().await).await;
    assert_eq!(
        stats,
        json!({"openOffers": 0, "activeTrades": 0, "completedTrades": 1, "registeredUsers": 2})
    );
    h.stop().await;
}

/// The same trade, funded with a Cashu token instead of a Lightning payment.
#[sqlx::test(migrations = false)]
async fn a_whole_trade_funded_by_token(opts: PgPoolOptions, conn: PgConnectOptions) {
    // Invoices are paid only on command, so the unused deposit invoice stays unpaid.
    let h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, deposit, maker_sk) = h.offer(&maker, provider, 1_234).await;

    // A token for the wrong amount is refused and nothing changes.
    let wrong = h.cash(deposit - 1).await;
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/fund"))
        .header("Authorization", maker.bearer())
        .body_json(&json!({"token": wrong}))
        .send()
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "token_amount_mismatch").await;
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/fund"))
        .header("Authorization", maker.bearer())
        .body_json(&json!({"token": "cashuBnotatoken"}))
        .send()
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "invalid_token").await;
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
    .await
    .expect("sealed");
    assert_eq!(sealed, 0, "nothing sealed stays after the intent ends");
    assert_eq!(
        body(h.get_offer(id, Some(&maker)).await).await["status"],
        "CREATED"
    );

    // Checked, sealed to the workers' key and handed to a worker: 202, then FUNDED.
    let token = h.cash(deposit).await;
    let intent = h.fund_with_token(id, &maker, &token).await;
    assert_eq!(intent["state"], "FUNDED", "{intent}");
    assert_eq!(intent["receivedSats"], deposit);
    let v = h.wait_status(id, &maker, "INVOICE_PAID").await;
    // The same token cannot fund anything twice.
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/fund"))
        .header("Authorization", maker.bearer())
        .body_json(&json!({"token": token}))
        .send()
        .await;
    expect_error(resp, StatusCode::CONFLICT, "invalid_state").await;

    let s = v["amountSats"].as_u64().expect("S");
    let tf = v["takerRewardSats"].as_u64().expect("TF");
    let tb = v["takerBondSats"].as_u64().expect("TB");
    let mb = v["makerBondSats"].as_u64().expect("MB");
    let taker_sk = h.trade_to_completion(id, &maker, &taker).await;
    let taker_payouts = h.released_payouts(id, &taker).await;
    let maker_payouts = h.released_payouts(id, &maker).await;
    assert_eq!(h.redeem(&taker_payouts, &taker_sk).await, s + tf + tb);
    assert_eq!(h.redeem(&maker_payouts, &maker_sk).await, mb);
    for _ in 0..40 {
        if h.audit().await["offersChecked"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let audit = h.audit().await;
    assert_eq!(audit["balanced"], true, "{audit}");
    h.stop().await;
}

/// 20 sessions claim one offer at once: the offer takes `CLAIM_MAX_PENDING_PER_OFFER` (10)
/// claims, the others get 409 `too_many_claims`; the mint pays every bond invoice, exactly one
/// bond wins the offer and the nine others come back to their payers' keys in full.
#[sqlx::test(migrations = false)]
async fn twenty_concurrent_claims_one_winner(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (id, _, _) = h.offer(&maker, provider, 2_000).await;
    h.wait_status(id, &maker, "INVOICE_PAID").await;
    let mut takers = Vec::new();
    for _ in 0..20 {
        takers.push(h.session().await);
    }
    let claims = takers.iter().map(|t| {
        let (_, key) = payout_key();
        h.public
            .post(format!("/api/v1/offers/{id}/claim"))
            .header("Authorization", t.bearer())
            .body_json(&json!({"takerPayoutPubkey": key}))
            .send()
    });
    let results = futures::future::join_all(claims).await;
    let mut claimed = Vec::new();
    let mut refused = 0;
    for (r, t) in results.into_iter().zip(&takers) {
        match r.0.status() {
            StatusCode::OK => claimed.push(t),
            StatusCode::CONFLICT => {
                let v = body(r).await;
                assert_eq!(v["error"]["code"], "too_many_claims");
                refused += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((claimed.len(), refused), (10, 10));
    h.wait_status(id, &maker, "TAKER_BOND_PAID").await;
    let mut won = 0;
    for t in &claimed {
        let mut status = Value::Null;
        for _ in 0..120 {
            let resp = h
                .public
                .get(format!("/api/v1/offers/{id}/claim"))
                .header("Authorization", t.bearer())
                .send()
                .await;
            status = body(resp).await["status"].clone();
            if status != "PENDING" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
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
    .await
    .expect("count");
    assert_eq!(
        bonds, 10,
        "one bond invoice per claim, none for a refused one"
    );
    h.stop().await;
}

/// Bad input gets a clear 4xx with its own code and writes nothing.
#[sqlx::test(migrations = false)]
async fn bad_input_is_refused_and_writes_nothing(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let (_, key) = payout_key();
    let offer = |fiat: serde_json::Value, key: &str| {
        json!({"fiatAmount": fiat, "currency": "EUR", "fiatProviderId": provider,
               "paymentDetails": "IBAN", "makerPayoutPubkey": key})
    };
    let post = |b: serde_json::Value| {
        h.public
            .post("/api/v1/offers")
            .header("Authorization", maker.bearer())
            .body_json(&b)
            .send()
    };
    expect_error(
        post(offer(json!(100_001), &key)).await,
        StatusCode::BAD_REQUEST,
        "fiat_amount_too_large",
    )
    .await;
    expect_error(
        post(offer(json!(-5), &key)).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    expect_error(
        post(offer(json!(12.5), &key)).await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    )
    .await;
    expect_error(
        post(offer(json!(500), "not-a-key")).await,
        StatusCode::BAD_REQUEST,
        "invalid_payout_pubkey",
    )
    .await;
    let mut other_currency = offer(json!(500), &key);
    other_currency["currency"] = json!("USD");
    expect_error(
        post(other_currency).await,
        StatusCode::BAD_REQUEST,
        "unsupported_currency",
    )
    .await;
    let mut unknown_provider = offer(json!(500), &key);
    unknown_provider["fiatProviderId"] = json!(uuid::Uuid::new_v4());
    expect_error(
        post(unknown_provider).await,
        StatusCode::BAD_REQUEST,
        "unknown_fiat_provider",
    )
    .await;
    // Without a session.
    let resp = h
        .public
        .post("/api/v1/offers")
        .body_json(&offer(json!(500), &key))
        .send()
        .await;
    resp.assert_status(StatusCode::UNAUTHORIZED);
    let offers: i64 = sqlx::query_scalar("select count(*) from offers")
        .fetch_one(&h.pool)
        .await
        .expect("count");
    assert_eq!(offers, 0, "nothing written");

    // Receipts: wrong state, not an image, too large.
    let taker = h.session().await;
    let (id, _, _) = h.offer(&maker, provider, 500).await;
    expect_error(
        h.upload_receipt(id, &maker).await,
        StatusCode::FORBIDDEN,
        "not_your_role",
    )
    .await;
    h.wait_status(id, &maker, "INVOICE_PAID").await;
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/complete"))
        .header("Authorization", maker.bearer())
        .send()
        .await;
    expect_error(resp, StatusCode::CONFLICT, "invalid_state").await;
    h.claim(id, &taker).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    let text = poem::test::TestForm::new().field(
        poem::test::TestFormField::bytes(b"GIF89a not allowed".to_vec())
            .name("image")
            .filename("r.gif")
            .content_type("image/png"),
    );
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/receipt"))
        .header("Authorization", taker.bearer())
        .multipart(text)
        .send()
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "receipt_not_an_image").await;
    let mut big = common::PNG.to_vec();
    big.resize(5 * 1024 * 1024 + 1, 0);
    let huge = poem::test::TestForm::new().field(
        poem::test::TestFormField::bytes(big)
            .name("image")
            .filename("r.png")
            .content_type("image/png"),
    );
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/receipt"))
        .header("Authorization", taker.bearer())
        .multipart(huge)
        .send()
        .await;
    expect_error(resp, StatusCode::PAYLOAD_TOO_LARGE, "receipt_too_large").await;
    let receipts: i64 = sqlx::query_scalar("select count(*) from receipts")
        .fetch_one(&h.pool)
        .await
        .expect("count");
    assert_eq!(receipts, 0);
    h.stop().await;
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
async fn visibility_in_every_state(opts: PgPoolOptions, conn: PgConnectOptions) {
    let h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let other = h.session().await;
    let (_, key) = payout_key();
    let resp = h
        .public
        .post("/api/v1/offers")
        .header("Authorization", maker.bearer())
        .body_json(
            &json!({"fiatAmount": 700, "currency": "EUR", "fiatProviderId": provider,
                           "paymentDetails": "IBAN", "makerPayoutPubkey": key}),
        )
        .send()
        .await;
    let created = body(resp).await;
    let id: uuid::Uuid = created["offer"]["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("uuid");
    let deposit_invoice = created["deposit"]["invoice"]
        .as_str()
        .expect("invoice")
        .to_owned();
    let deposit = created["deposit"]["amountSats"].as_u64().expect("sats");

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
                h.pay(&deposit_invoice, deposit).await;
                h.wait_status(id, &maker, "INVOICE_PAID").await;
            }
            "TAKER_BOND_PAID" => {
                // A claim alone changes nothing anyone sees; its paid bond does.
                let (_, tkey) = payout_key();
                let resp = h
                    .public
                    .post(format!("/api/v1/offers/{id}/claim"))
                    .header("Authorization", taker.bearer())
                    .body_json(&json!({"takerPayoutPubkey": tkey}))
                    .send()
                    .await;
                let v = body(resp).await;
                assert_eq!(v["offer"]["status"], "INVOICE_PAID", "{v}");
                h.pay(
                    v["bond"]["invoice"].as_str().expect("invoice"),
                    v["bond"]["amountSats"].as_u64().expect("sats"),
                )
                .await;
                h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
            }
            "RECEIPT_SUBMITTED" => h.upload_receipt(id, &taker).await.assert_status_is_ok(),
            "COMPLETED" => h
                .public
                .post(format!("/api/v1/offers/{id}/complete"))
                .header("Authorization", maker.bearer())
                .send()
                .await
                .assert_status_is_ok(),
            _ => {}
        }
        let claimed = i >= 2;
        let has_receipt = i >= 3;
        for caller in callers {
            let session = match caller {
                Caller::Other => Some(&other),
                Caller::Maker => Some(&maker),
                Caller::Taker => Some(&taker),
                _ => None,
            };
            let is_party = caller == Caller::Maker || (caller == Caller::Taker && claimed);

            // GET /offers/{id}
            let resp = if caller == Caller::Admin {
                h.admin
                    .get(format!("/api/v1/admin/offers/{id}"))
                    .header("Authorization", common::ADMIN)
                    .send()
                    .await
            } else {
                h.get_offer(id, session).await
            };
            let allowed = caller == Caller::Admin || is_party || *state == "INVOICE_PAID";
            assert_eq!(
                resp.0.status().is_success(),
                allowed,
                "GET offer as {caller:?} in {state}"
            );
            if allowed {
                let v = body(resp).await;
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
            let resp = if caller == Caller::Admin {
                h.admin
                    .get(format!("/api/v1/admin/offers/{id}/receipt"))
                    .header("Authorization", common::ADMIN)
                    .send()
                    .await
            } else {
                let mut r = h.public.get(format!("/api/v1/offers/{id}/receipt"));
                if let Some(s) = session {
                    r = r.header("Authorization", s.bearer());
                }
                r.send().await
            };
            let expect = match caller {
                Caller::Anonymous => StatusCode::UNAUTHORIZED,
                Caller::Admin if has_receipt => StatusCode::OK,
                _ if is_party && has_receipt => StatusCode::OK,
                _ => StatusCode::NOT_FOUND,
            };
            assert_eq!(
                resp.0.status(),
                expect,
                "GET receipt as {caller:?} in {state}"
            );

            // GET /offers/{id}/payouts
            if caller != Caller::Admin {
                let mut r = h.public.get(format!("/api/v1/offers/{id}/payouts"));
                if let Some(s) = session {
                    r = r.header("Authorization", s.bearer());
                }
                let expect = match caller {
                    Caller::Anonymous => StatusCode::UNAUTHORIZED,
                    _ if is_party => StatusCode::OK,
                    _ => StatusCode::NOT_FOUND,
                };
                assert_eq!(
                    r.send().await.0.status(),
                    expect,
                    "GET payouts as {caller:?} in {state}"
                );
            }
            checked += 1;
        }
        // The public book lists it only while INVOICE_PAID.
        let book = body(h.public.get("/api/v1/offers").send().await).await;
        let listed = book["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|o| o["id"] == id.to_string());
        assert_eq!(listed, *state == "INVOICE_PAID", "book in {state}");
        // Another session's book is the public one; the maker's also shows its own offer.
        let mine = body(
            h.public
                .get("/api/v1/offers")
                .header("Authorization", maker.bearer())
                .send()
                .await,
        )
        .await;
        assert!(mine["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|o| o["id"] == id.to_string()));
    }
    assert_eq!(checked, states.len() * callers.len());

    // Actions in the wrong role: the taker cannot complete, another session cannot cancel.
    let (id2, _, _) = h.offer(&maker, provider, 300).await;
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id2}/cancel"))
        .header("Authorization", other.bearer())
        .send()
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "offer_not_found").await;
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id2}/cancel"))
        .header("Authorization", maker.bearer())
        .send()
        .await;
    resp.assert_status_is_ok();
    assert_eq!(body(resp).await["status"], "CANCELLED");
    h.stop().await;
}

/// Live updates: the public stream announces the offer entering and leaving the book (and
/// nothing about the parties); the maker's private stream follows every move of its offer;
/// another session's stream stays silent about it.
#[sqlx::test(migrations = false)]
async fn live_updates(opts: PgPoolOptions, conn: PgConnectOptions) {
    use futures::StreamExt;
    let h = Harness::start_manual(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let other = h.session().await;

    let mut book = h
        .public
        .get("/api/v1/events/book")
        .send()
        .await
        .sse_stream();
    let mut mine = h
        .public
        .get("/api/v1/events/session")
        .header("Authorization", maker.bearer())
        .send()
        .await
        .sse_stream();
    let mut theirs = h
        .public
        .get("/api/v1/events/session")
        .header("Authorization", other.bearer())
        .send()
        .await
        .sse_stream();

    let (_, key) = payout_key();
    let resp = h
        .public
        .post("/api/v1/offers")
        .header("Authorization", maker.bearer())
        .body_json(
            &json!({"fiatAmount": 900, "currency": "EUR", "fiatProviderId": provider,
                           "paymentDetails": "IBAN", "makerPayoutPubkey": key}),
        )
        .send()
        .await;
    let created = body(resp).await;
    let id = created["offer"]["id"].as_str().expect("id").to_owned();
    h.pay(
        created["deposit"]["invoice"].as_str().expect("invoice"),
        created["deposit"]["amountSats"].as_u64().expect("sats"),
    )
    .await;
    let uid: uuid::Uuid = id.parse().expect("uuid");
    h.wait_status(uid, &maker, "INVOICE_PAID").await;
    h.claim(uid, &taker).await;

    let data = |e: &poem::web::sse::Event| -> (String, serde_json::Value) {
        match e {
            poem::web::sse::Event::Message { event, data, .. } => {
                (event.clone(), serde_json::from_str(data).expect("json"))
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    let (kind, v) = data(&next_event(&mut book).await);
    assert_eq!(
        (kind.as_str(), v["offerId"].as_str()),
        ("offer.listed", Some(id.as_str()))
    );
    assert_eq!(
        v.as_object().map(|o| o.len()),
        Some(1),
        "no party data: {v}"
    );
    let (kind, v) = data(&next_event(&mut book).await);
    assert_eq!(
        (kind.as_str(), v["offerId"].as_str()),
        ("offer.unlisted", Some(id.as_str()))
    );

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (kind, v) = data(&next_event(&mut mine).await);
        assert_eq!(kind, "offer.status");
        assert_eq!(v["offerId"], id);
        statuses.push(v["status"].as_str().expect("status").to_owned());
    }
    assert_eq!(statuses, ["CREATED", "INVOICE_PAID", "TAKER_BOND_PAID"]);

    let silent = tokio::time::timeout(std::time::Duration::from_millis(500), theirs.next()).await;
    assert!(
        silent.is_err(),
        "another session hears nothing of this offer"
    );
    h.stop().await;
}

async fn next_event<S>(s: &mut S) -> poem::web::sse::Event
where
    S: futures::Stream<Item = poem::web::sse::Event> + Unpin,
{
    use futures::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(10), s.next())
        .await
        .expect("an event in time")
        .expect("stream open")
}

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
    let provider = h.provider().await;
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, deposit, maker_sk) = h.offer(&maker, provider, 2_345).await;

    // Exactly the deposit is not enough once the mint takes its fee: refused before anything
    // is recorded (the api reads the keysets' fees), and the token stays the maker's.
    let token = h.cash(deposit).await;
    let resp = h
        .public
        .post(format!("/api/v1/offers/{id}/fund"))
        .header("Authorization", maker.bearer())
        .body_json(&json!({ "token": token }))
        .send()
        .await;
    expect_error(resp, StatusCode::BAD_REQUEST, "token_amount_mismatch").await;
    // The deposit plus room for the fee funds it.
    let token = h.cash(deposit + 5).await;
    let intent = h.fund_with_token(id, &maker, &token).await;
    assert_eq!(intent["state"], "FUNDED", "{intent}");
    let v = h.wait_status(id, &maker, "INVOICE_PAID").await;
    let s = v["amountSats"].as_u64().expect("S");
    let tf = v["takerRewardSats"].as_u64().expect("TF");
    let tb = v["takerBondSats"].as_u64().expect("TB");
    let mb = v["makerBondSats"].as_u64().expect("MB");

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

    let mut audit = h.audit().await;
    for _ in 0..40 {
        if audit["offersChecked"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        audit = h.audit().await;
    }
    assert_eq!(audit["offersChecked"], 1);
    assert_eq!(audit["balanced"], true, "{audit}");
    let recorded_fees: i64 = sqlx::query_scalar(
        "select coalesce(sum(amount_sats), 0)::bigint from ledger_entries
          where offer_id = $1 and kind = 'mint_fee'",
    )
    .bind(id)
    .fetch_one(&h.pool)
    .await
    .expect("fees");
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
