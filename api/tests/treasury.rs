//! The platform's fee and the treasury: the token stored in `payouts.token` until the
//! treasury sweep is P2PK-locked to the treasury key, whose secret PostgreSQL never holds; a
//! platform token found spent by someone other than the treasury is an incident (marked,
//! counted, alerted), never booked as swept; a sweep repeated after its own receive is.
//! Withdrawals (`POST /admin/treasury/withdraw`), by token and by invoice, cut at each step,
//! are paid exactly once; bad requests are refused with stable codes.

mod common;

use std::str::FromStr;
use std::sync::Arc;

use cdk::nuts::{SecretKey, Token};
use common::{body, expect_error, payout_key, Harness, ADMIN};
use openpleb_common::failpoint::Cuts;
use openpleb_common::wallet::treasury::{TreasuryKey, TREASURY_WALLET};
use openpleb_common::wallet::MintOutcome;
use openpleb_common::wallet::{WalletId, WalletManager, WalletManagerConfig};
use openpleb_devkit::fixtures::fund_wallet;
use openpleb_worker::jobs::withdraw_treasury;
use openpleb_worker::WorkerContext;
use poem::http::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

/// The platform payout of `offer`: (state, token), once released.
async fn platform_payout(h: &Harness, offer: Uuid, state: &str) -> String {
    for _ in 0..120 {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "select state, token from payouts where offer_id = $1 and party = 'platform'",
        )
        .bind(offer)
        .fetch_optional(&h.pool)
        .await
        .expect("payout");
        if let Some((s, Some(token))) = row {
            if s == state {
                return token;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("the platform payout of {offer} never reached {state}");
}

/// A completed trade; returns its id.
async fn completed(h: &Harness, provider: Uuid) -> Uuid {
    let maker = h.session().await;
    let taker = h.session().await;
    let (id, _) = h.funded_offer(&maker, provider).await;
    h.trade_to_completion(id, &maker, &taker).await;
    h.released_payouts(id, &taker).await;
    id
}

/// Written first: on the code before this change the stored platform token was a plain bearer
/// token (no spending condition), redeemable by anyone who read the row.
#[sqlx::test(migrations = false)]
async fn the_stored_platform_token_is_locked_to_the_treasury(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_configured(opts, conn, |_| {}).await;
    let provider = h.provider().await;
    let id = completed(&h, provider).await;
    let token = platform_payout(&h, id, "SWEPT").await;
    let locks = Token::from_str(&token)
        .expect("token")
        .p2pk_pubkeys()
        .expect("locks");
    assert!(
        !locks.is_empty(),
        "the platform token in payouts.token is unlocked"
    );
    let treasury = TreasuryKey::from_config(&h.trade_ctx().config).expect("treasury key");
    assert!(
        locks
            .iter()
            .all(|k| k.x_only_public_key() == treasury.lock.x_only()),
        "locked to the treasury key"
    );
    h.stop().await;
}

/// With `TREASURY_PUBKEY` and no secret in the worker, the platform's tokens wait, locked, and
/// cannot be redeemed without the key. Someone holding the key takes one: the sweep (by a
/// worker given `TREASURY_SECRET`) finds it spent, marks it SPENT_ELSEWHERE, counts it and the
/// admin alerts list it. A sweep whose own receive went through before a crash (the token in
/// the treasury wallet, the row not yet marked) books it as swept.
#[sqlx::test(migrations = false)]
async fn a_platform_token_spent_elsewhere_is_an_alert_not_a_sweep(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let sk = SecretKey::generate();
    let pubkey = sk.public_key().x_only_public_key().to_string();
    let lock = pubkey.clone();
    // Only the public key: the api's configuration, and a (test-built) worker that cannot sweep.
    let h = Harness::start_configured(opts, conn, move |c| {
        c.treasury.pubkey = Some(lock);
        c.treasury.secret = None;
    })
    .await;
    let provider = h.provider().await;

    let stolen = completed(&h, provider).await;
    let token = platform_payout(&h, stolen, "RELEASED").await;
    let locks = Token::from_str(&token)
        .expect("token")
        .p2pk_pubkeys()
        .expect("locks");
    assert!(locks
        .iter()
        .all(|k| k.x_only_public_key().to_string() == pubkey));
    // Read out of the database, it is worth nothing without the key.
    let reader = WalletId::session(Uuid::new_v4());
    assert!(h
        .trader_wallets
        .receive(&reader, &token, vec![])
        .await
        .is_err());
    // Whoever holds the key can take it.
    let thief = WalletId::session(Uuid::new_v4());
    let taken = h
        .trader_wallets
        .receive(&thief, &token, vec![sk.clone()])
        .await
        .expect("redeemed with the key");
    assert!(taken > 0);

    // The sweeping worker, given the secret.
    let mut config = (*h.trade_ctx().config).clone();
    config.treasury.secret = Some(openpleb_common::config::Secret::new(sk.to_secret_hex()));
    // Its wallets have the treasury wallet's seed (from that secret).
    let sweeper_wallets = WalletManager::new(
        WalletManagerConfig::from_config(&h.wallet_settings, &config),
        h.pool.clone(),
    )
    .expect("sweeper wallets");
    let sweeper =
        WorkerContext::from_config(h.pool.clone(), sweeper_wallets.clone(), Arc::new(config));
    openpleb_worker::jobs::release_payouts::sweep(&sweeper, stolen)
        .await
        .expect("sweep");
    let state: String =
        sqlx::query_scalar("select state from payouts where offer_id = $1 and party = 'platform'")
            .bind(stolen)
            .fetch_one(&h.pool)
            .await
            .expect("state");
    assert_eq!(state, "SPENT_ELSEWHERE");
    let alerts = h.alerts().await;
    assert_eq!(alerts["ok"], false, "{alerts}");
    let listed: &Vec<Value> = alerts["platformTokensSpentElsewhere"]
        .as_array()
        .expect("listed");
    assert_eq!(listed.len(), 1, "{alerts}");
    assert_eq!(listed[0]["offerId"], stolen.to_string());
    let scrape = openpleb_common::metrics::render();
    assert!(
        scrape.contains("openpleb_platform_tokens_spent_elsewhere_total 1"),
        "{scrape}"
    );
    // A second sweep changes nothing.
    openpleb_worker::jobs::release_payouts::sweep(&sweeper, stolen)
        .await
        .expect("sweep again");

    // Cut after its own receive: the treasury holds the token, the row still says RELEASED.
    let cut = completed(&h, provider).await;
    let token = platform_payout(&h, cut, "RELEASED").await;
    let treasury = WalletId::parse(TREASURY_WALLET).expect("id");
    sweeper_wallets
        .receive(&treasury, &token, vec![sk.clone()])
        .await
        .expect("the sweep's own receive");
    openpleb_worker::jobs::release_payouts::sweep(&sweeper, cut)
        .await
        .expect("sweep");
    let state: String =
        sqlx::query_scalar("select state from payouts where offer_id = $1 and party = 'platform'")
            .bind(cut)
            .fetch_one(&h.pool)
            .await
            .expect("state");
    assert_eq!(state, "SWEPT");
    h.stop().await;
}

/// The treasury's withdrawal row, as the admin sees it.
async fn withdrawal(h: &Harness, id: &str) -> Value {
    let resp = h
        .admin
        .get(format!("/api/v1/admin/treasury/withdrawals/{id}"))
        .header("Authorization", ADMIN)
        .send()
        .await;
    resp.assert_status_is_ok();
    body(resp).await
}

async fn treasury_view(h: &Harness) -> Value {
    let resp = h
        .admin
        .get("/api/v1/admin/treasury")
        .header("Authorization", ADMIN)
        .send()
        .await;
    resp.assert_status_is_ok();
    body(resp).await
}

async fn withdraw(h: &Harness, request: Value) -> (StatusCode, Value) {
    let resp = h
        .admin
        .post("/api/v1/admin/treasury/withdraw")
        .header("Authorization", ADMIN)
        .body_json(&request)
        .send()
        .await;
    let status = resp.0.status();
    (status, body(resp).await)
}

/// What the treasury wallet holds, spendable.
async fn held(h: &Harness) -> u64 {
    let treasury = WalletId::parse(TREASURY_WALLET).expect("id");
    h.worker_wallets
        .balance(&treasury)
        .await
        .expect("balance")
        .unspent
}

/// A trade's fee swept into the treasury wallet (seeded from `TREASURY_SECRET`), shown by
/// `GET /admin/treasury` from PostgreSQL alone; then the treasury topped up at the mint and the
/// worker stopped, so each withdrawal job below runs only when the test runs it.
async fn funded_treasury(h: &mut Harness) -> u64 {
    let provider = h.provider().await;
    let id = completed(h, provider).await;
    platform_payout(h, id, "SWEPT").await;
    let pf: i64 = sqlx::query_scalar(
        "select amount_sats from payouts where offer_id = $1 and party = 'platform'",
    )
    .bind(id)
    .fetch_one(&h.pool)
    .await
    .expect("fee");
    // The sweep stores the balance just after it marks the payout swept.
    let mut view = treasury_view(h).await;
    for _ in 0..40 {
        if view["balanceSats"] == pf {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        view = treasury_view(h).await;
    }
    assert_eq!(view["feesCollectedSats"], pf, "{view}");
    assert_eq!(view["balanceSats"], pf, "{view}");
    assert!(view["lastSweepAt"].is_string(), "{view}");
    let treasury = WalletId::parse(TREASURY_WALLET).expect("id");
    h.stop_worker().await;
    fund_wallet(&h.worker_wallets, &h.stack.mint, &treasury, 5_000)
        .await
        .expect("top up");
    let sats = held(h).await;
    assert_eq!(sats, u64::try_from(pf).expect("fee") + 5_000);
    // As a worker stores it after each sweep, withdrawal and reconciliation.
    openpleb_worker::jobs::withdraw_treasury::store_balance(&h.trade_ctx())
        .await
        .expect("store balance");
    sats
}

/// Bad requests are refused before anything is recorded: neither or both destinations, a bad
/// key, a bad invoice, more than the treasury holds, an unknown withdrawal. A withdrawal the
/// wallet cannot pay after all ends FAILED with nothing paid, and frees the way for the next.
#[sqlx::test(migrations = false)]
async fn bad_withdrawals_are_refused_with_stable_codes(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start_configured(opts, conn, |_| {}).await;
    let (_, key) = payout_key();
    let cases = [
        (json!({}), "invalid_withdrawal"),
        (
            json!({"token": {"pubkey": key, "amountSats": 1}, "invoice": "lnbc1"}),
            "invalid_withdrawal",
        ),
        (
            json!({"token": {"pubkey": "zz".repeat(32), "amountSats": 1}}),
            "invalid_pubkey",
        ),
        (json!({"invoice": "lnbc1nonsense"}), "invalid_invoice"),
        // Refused by the schema, with the same codes.
        (
            json!({"token": {"pubkey": "ab", "amountSats": 1}}),
            "invalid_pubkey",
        ),
        (
            json!({"token": {"pubkey": key, "amountSats": 0}}),
            "invalid_amount",
        ),
        (json!({"invoice": ""}), "invalid_invoice"),
        // The treasury holds nothing yet.
        (
            json!({"token": {"pubkey": key, "amountSats": 1}}),
            "insufficient_treasury_balance",
        ),
    ];
    for (request, code) in cases {
        let (status, v) = withdraw(&h, request.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{request}: {v}");
        assert_eq!(v["error"]["code"], code, "{request}: {v}");
    }
    let resp = h
        .admin
        .get(format!(
            "/api/v1/admin/treasury/withdrawals/{}",
            Uuid::new_v4()
        ))
        .header("Authorization", ADMIN)
        .send()
        .await;
    expect_error(resp, StatusCode::NOT_FOUND, "withdrawal_not_found").await;
    let count: i64 = sqlx::query_scalar("select count(*) from treasury_withdrawals")
        .fetch_one(&h.pool)
        .await
        .expect("count");
    assert_eq!(count, 0);

    // The balance as last read says more than the wallet holds (here: no wallet at all): the
    // worker fails it, nothing paid, and the next withdrawal may go.
    sqlx::query("update treasury set balance_sats = 10000")
        .execute(&h.pool)
        .await
        .expect("balance");
    let (status, v) = withdraw(&h, json!({"token": {"pubkey": key, "amountSats": 5_000}})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    let mut w = withdrawal(&h, &id).await;
    for _ in 0..80 {
        if w["state"] != "REQUESTED" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        w = withdrawal(&h, &id).await;
    }
    assert_eq!(w["state"], "FAILED", "{w}");
    assert!(w["failure"].is_string() && w["token"].is_null(), "{w}");
    // Two at once: one is recorded, the other refused.
    let request = json!({"token": {"pubkey": key, "amountSats": 1}});
    let (a, b) = tokio::join!(withdraw(&h, request.clone()), withdraw(&h, request));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::ACCEPTED, StatusCode::CONFLICT],
        "{a:?} {b:?}"
    );
    h.stop().await;
}

/// A token withdrawal cut after its send's operation was recorded (nothing sent), then after
/// the token was made (the sats gone, nothing stored), then run to the end and once more: one
/// token, locked to the admin's key, and the treasury lower by its amount exactly once. A second
/// withdrawal is refused while the first is in flight.
#[sqlx::test(migrations = false)]
async fn a_token_withdrawal_cut_at_each_step_is_paid_exactly_once(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let mut h = Harness::start_configured(opts, conn, |_| {}).await;
    let before = funded_treasury(&mut h).await;
    let (admin_sk, _) = payout_key();
    // Given compressed: it locks to the same x-only key.
    let compressed = admin_sk.public_key().to_hex();
    let (status, v) = withdraw(
        &h,
        json!({"token": {"pubkey": compressed, "amountSats": 1_000}}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["state"], "REQUESTED");
    assert_eq!(v["requestedBy"], "admin");
    let id = v["id"].as_str().expect("id").to_owned();
    let (_, other) = payout_key();
    let (status, v) = withdraw(&h, json!({"token": {"pubkey": other, "amountSats": 1}})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "withdrawal_in_progress");
    let action: (String, String) = sqlx::query_as(
        "select admin_name, target from admin_actions where action = 'treasury_withdraw'",
    )
    .fetch_one(&h.pool)
    .await
    .expect("recorded");
    assert_eq!(action, ("admin".to_owned(), id.clone()));

    let uuid: Uuid = id.parse().expect("uuid");
    let mut ctx = h.trade_ctx();
    ctx.cuts = Cuts::armable();
    ctx.cuts.arm(withdraw_treasury::CUT_OPERATION_RECORDED);
    assert!(withdraw_treasury::run(uuid, &ctx).await.is_err());
    ctx.cuts.clear();
    let w = withdrawal(&h, &id).await;
    assert_eq!(w["state"], "REQUESTED", "{w}");
    assert_eq!(held(&h).await, before, "nothing sent yet");

    ctx.cuts.arm(withdraw_treasury::CUT_TOKEN_MADE);
    assert!(withdraw_treasury::run(uuid, &ctx).await.is_err());
    ctx.cuts.clear();
    assert_eq!(withdrawal(&h, &id).await["state"], "REQUESTED");
    assert_eq!(held(&h).await, before - 1_000, "the token was made");

    withdraw_treasury::run(uuid, &ctx).await.expect("run");
    withdraw_treasury::run(uuid, &ctx).await.expect("run again");
    assert_eq!(held(&h).await, before - 1_000, "paid exactly once");
    let w = withdrawal(&h, &id).await;
    assert_eq!(w["state"], "SENT", "{w}");
    let token = w["token"].as_str().expect("token").to_owned();
    let locks = Token::from_str(&token)
        .expect("token")
        .p2pk_pubkeys()
        .expect("locks");
    assert!(
        !locks.is_empty()
            && locks
                .iter()
                .all(|k| k.x_only_public_key() == admin_sk.public_key().x_only_public_key()),
        "locked to the admin's key"
    );
    let fee = w["feeSats"].as_u64().expect("fee");
    assert_eq!(
        h.trader_wallets
            .receive(&WalletId::session(Uuid::new_v4()), &token, vec![admin_sk])
            .await
            .expect("the admin redeems it"),
        1_000 - fee
    );
    let view = treasury_view(&h).await;
    assert_eq!(view["balanceSats"], before - 1_000, "{view}");
    assert!(view["inFlight"].is_null(), "{view}");
    assert_eq!(view["recentWithdrawals"][0]["id"], id.as_str(), "{view}");
    let scrape = openpleb_common::metrics::render();
    assert!(
        scrape.contains("openpleb_treasury_withdrawals_total{outcome=\"sent\"}"),
        "{scrape}"
    );
    h.stop().await;
}

/// An invoice withdrawal (an invoice of the dev mint's, paid by melting) cut after its melt
/// quote was recorded (nothing melted), then after the melt (paid, nothing recorded), then run
/// to the end and once more: the invoice paid once (its quote at the mint issues the amount
/// once), the treasury lower by the amount and the fee once.
#[sqlx::test(migrations = false)]
async fn an_invoice_withdrawal_cut_at_each_step_is_paid_exactly_once(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let mut h = Harness::start_configured(opts, conn, |_| {}).await;
    let before = funded_treasury(&mut h).await;
    let payee = WalletId::session(Uuid::new_v4());
    let invoice = h
        .trader_wallets
        .create_mint_quote(&payee, 700)
        .await
        .expect("invoice");
    let (status, v) = withdraw(&h, json!({"invoice": invoice.request})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["amountSats"], 700);
    let id = v["id"].as_str().expect("id").to_owned();
    let uuid: Uuid = id.parse().expect("uuid");
    let mut ctx = h.trade_ctx();
    ctx.cuts = Cuts::armable();

    ctx.cuts.arm(withdraw_treasury::CUT_QUOTE_RECORDED);
    assert!(withdraw_treasury::run(uuid, &ctx).await.is_err());
    ctx.cuts.clear();
    let w = withdrawal(&h, &id).await;
    assert_eq!(w["state"], "REQUESTED", "{w}");
    assert!(w["quoteId"].is_string(), "{w}");
    assert_eq!(held(&h).await, before, "nothing melted yet");

    ctx.cuts.arm(withdraw_treasury::CUT_MELTED);
    assert!(withdraw_treasury::run(uuid, &ctx).await.is_err());
    ctx.cuts.clear();
    assert_eq!(withdrawal(&h, &id).await["state"], "REQUESTED");
    let after_melt = held(&h).await;
    assert!(after_melt <= before - 700, "paid: {before} -> {after_melt}");

    withdraw_treasury::run(uuid, &ctx).await.expect("run");
    withdraw_treasury::run(uuid, &ctx).await.expect("run again");
    let w = withdrawal(&h, &id).await;
    assert_eq!(w["state"], "PAID", "{w}");
    let fee = w["feeSats"].as_u64().expect("fee");
    assert_eq!(held(&h).await, before - 700 - fee, "paid exactly once: {w}");
    assert_eq!(after_melt, before - 700 - fee);
    // The payee's invoice was paid once: its quote issues 700 sats.
    assert_eq!(
        h.trader_wallets
            .mint_quote(&payee, &invoice.quote_id)
            .await
            .expect("mint"),
        MintOutcome::Issued(700)
    );
    assert_eq!(
        h.trader_wallets
            .balance(&payee)
            .await
            .expect("payee")
            .unspent,
        700
    );
    // A new withdrawal may go now.
    let (_, key) = payout_key();
    let (status, v) = withdraw(&h, json!({"token": {"pubkey": key, "amountSats": 10}})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    h.stop().await;
}
