//! The treasury's new seed strands nothing: the legacy treasury wallet (seeded from the master
//! secret), funded at the dev mint, is moved into the treasury wallet (seeded from
//! `TREASURY_SECRET`) once, cut after its send and after its receive; a fee token locked to the
//! legacy key before the upgrade is still swept in; a worker without `TREASURY_SECRET` does not
//! start.

mod common;

use std::str::FromStr;

use openpleb_common::db::treasury;
use openpleb_common::domain::keys::XOnlyKey;
use openpleb_common::failpoint::Cuts;
use openpleb_common::wallet::treasury::{
    LegacyTreasuryKey, LEGACY_TREASURY_WALLET, TREASURY_WALLET,
};
use openpleb_common::wallet::WalletId;
use openpleb_devkit::fixtures;
use openpleb_devkit::scenario::check::refuses_to_start;
use openpleb_worker::jobs::{release_payouts, sweep_legacy_treasury as legacy};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

#[sqlx::test(migrations = false)]
async fn the_legacy_treasury_moves_into_the_new_wallet_once(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let w = common::world(conn).await;
    let old = WalletId::parse(LEGACY_TREASURY_WALLET).expect("id");
    let new = WalletId::parse(TREASURY_WALLET).expect("id");
    fixtures::fund_wallet(&w.wallets, &w.mint, &old, 3_000)
        .await
        .expect("fund the legacy treasury");
    w.wallets.close(&old).await.expect("close");
    let mut ctx = (*w.ctx).clone();
    ctx.cuts = Cuts::armable();

    // Cut after the send: the sats left the legacy wallet, the token is not stored.
    ctx.cuts.arm(legacy::CUT_LEGACY_SENT);
    assert!(legacy::run(&ctx).await.is_err());
    ctx.cuts.clear();
    let row = treasury::get(&w.pool).await.expect("row");
    assert_eq!(row.legacy_state, "SENDING");
    assert!(row.legacy_operation_id.is_some() && row.legacy_token.is_none());
    assert_eq!(w.balance(&old).await.unspent, 0);
    assert!(!w.wallets.exists(&new), "nothing received yet");

    // Cut after the receive: the new wallet holds it, the move is not DONE.
    ctx.cuts.arm(legacy::CUT_LEGACY_RECEIVED);
    assert!(legacy::run(&ctx).await.is_err());
    ctx.cuts.clear();
    let row = treasury::get(&w.pool).await.expect("row");
    assert_eq!(row.legacy_state, "SENDING");
    let token = row.legacy_token.expect("stored token");
    assert!(
        !cdk::nuts::Token::from_str(&token)
            .expect("token")
            .p2pk_pubkeys()
            .expect("locks")
            .is_empty(),
        "the stored token is locked to the treasury key"
    );
    assert_eq!(w.balance(&new).await.unspent, 3_000);

    // The rest: DONE, nothing received twice; later runs do nothing.
    assert_eq!(legacy::run(&ctx).await.expect("run"), 3_000);
    assert_eq!(legacy::run(&ctx).await.expect("again"), 0);
    let row = treasury::get(&w.pool).await.expect("row");
    assert_eq!(
        (row.legacy_state.as_str(), row.legacy_sats),
        ("DONE", 3_000)
    );
    assert!(row.legacy_done_at.is_some());
    assert_eq!(w.balance(&new).await.unspent, 3_000);
    assert_eq!(w.balance(&old).await.unspent, 0);
    assert_eq!(row.balance_sats, 3_000, "the admin view's balance");
}

#[sqlx::test(migrations = false)]
async fn an_empty_or_missing_legacy_treasury_is_done_at_once(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let w = common::world(conn).await;
    assert_eq!(legacy::run(&w.ctx).await.expect("run"), 0);
    let row = treasury::get(&w.pool).await.expect("row");
    assert_eq!((row.legacy_state.as_str(), row.legacy_sats), ("DONE", 0));
}

/// A platform fee token locked to the legacy key (derived from the master secret) before the
/// upgrade is redeemed with that key into the new treasury wallet.
#[sqlx::test(migrations = false)]
async fn a_fee_locked_to_the_legacy_key_is_still_swept(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let w = common::world(conn).await;
    let legacy_key = LegacyTreasuryKey::from_master(
        &openpleb_devkit::test_wallets_config(std::path::Path::new(".")).master_secret_bytes(),
    )
    .expect("key");
    let (offer, session) = w.owing(&"ab".repeat(32), 1_000, &[]).await;
    let lock: XOnlyKey = legacy_key.lock().parse().expect("lock");
    let token = w
        .wallets
        .send(&session, 400, Some(lock))
        .await
        .expect("fee token")
        .token;
    sqlx::query(
        "insert into payouts (id, offer_id, party, purpose, source_wallet, amount_sats,
                              lock_pubkey, state, token, released_at)
         values ($1, $2, 'platform', 'settlement', $3, 400, $4, 'RELEASED', $5, now())",
    )
    .bind(Uuid::new_v4())
    .bind(offer)
    .bind(session.as_str())
    .bind(legacy_key.lock())
    .bind(&token)
    .execute(&w.pool)
    .await
    .expect("payout");
    release_payouts::sweep(&w.ctx, offer).await.expect("sweep");
    let state: String =
        sqlx::query_scalar("select state from payouts where offer_id = $1 and party = 'platform'")
            .bind(offer)
            .fetch_one(&w.pool)
            .await
            .expect("state");
    assert_eq!(state, "SWEPT");
    let new = WalletId::parse(TREASURY_WALLET).expect("id");
    assert_eq!(w.balance(&new).await.unspent, 400);
    let row = treasury::get(&w.pool).await.expect("row");
    assert_eq!((row.fees_collected_sats, row.balance_sats), (400, 400));
    assert!(row.last_sweep_at.is_some());
}

/// A worker needs `TREASURY_SECRET`: without it, one line naming it and exit code 2.
#[test]
fn a_worker_without_the_treasury_secret_does_not_start() {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_openpleb-worker"));
    cmd.env_clear()
        .env("DATABASE_URL", "postgres://127.0.0.1:1/none")
        .env("MINT_URL", "http://127.0.0.1:1")
        .env("WALLET_MASTER_SECRET", "42".repeat(32))
        .env("REPUTATION_SECRET", "17".repeat(32))
        .env("DATA_SECRETS", format!("1:{}", "da".repeat(32)))
        .env("ADMIN_TOKEN", "test-admin-token-0123456789")
        .env("OIDC_API_TOKEN", "test-oidc-token-0123456789")
        .env("PRICE_FIXED", "60000");
    let stderr = refuses_to_start(cmd).expect("refused");
    assert_eq!(
        stderr,
        "configuration error: TREASURY_SECRET is required but not set"
    );
}
