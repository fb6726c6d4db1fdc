//! Whole trades over HTTP against the real test mint, with NUT-22 sessions, a worker and the
//! release of real P2PK-locked payouts.

mod common;

use common::{body, payout_key, Harness, PNG};
use openpleb_common::wallet::WalletId;
use poem::test::{TestForm, TestFormField};
use serde_json::json;
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
    let treasury = WalletId::parse("platform_treasury").expect("id");
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
    h.stop().await;
}
