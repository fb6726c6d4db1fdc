//! The platform's fee: the token stored in `payouts.token` until the
//! treasury sweep is P2PK-locked to the treasury key, whose secret PostgreSQL never holds; a
//! platform token found spent by someone other than the treasury is an incident (marked,
//! counted, alerted), never booked as swept; a sweep repeated after its own receive is.

mod common;

use std::str::FromStr;
use std::sync::Arc;

use cdk::nuts::{SecretKey, Token};
use common::Harness;
use openpleb_common::wallet::WalletId;
use openpleb_worker::WorkerContext;
use serde_json::Value;
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
    let treasury = h
        .worker_wallets
        .treasury_key(&h.trade_ctx().config)
        .expect("treasury key");
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
    let sweeper =
        WorkerContext::from_config(h.pool.clone(), h.worker_wallets.clone(), Arc::new(config));
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
    let treasury = WalletId::parse("platform_treasury").expect("id");
    h.worker_wallets
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
