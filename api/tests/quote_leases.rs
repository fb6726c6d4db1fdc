//! No request waits for a wallet lease held by another process (a worker minting or releasing
//! can hold one for seconds). `POST /offers` and
//! claim make their invoices without a session wallet (a quote locked to a key of the
//! workers' quote-lock branch at a path kept in PostgreSQL); only the worker that mints opens
//! the wallet, and it mints with the derived key.

mod common;

use std::time::{Duration, Instant};

use common::Harness;
use openpleb_common::wallet::WalletId;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

async fn newest_session(h: &Harness) -> Uuid {
    sqlx::query_scalar("select id from sessions order by created_at desc limit 1")
        .fetch_one(&h.pool)
        .await
        .expect("session")
}

/// Another process holds `wallet`'s lease for an hour.
async fn hold_elsewhere(h: &Harness, wallet: &WalletId) {
    sqlx::query(
        "insert into wallet_leases (wallet_id, holder, lease_until)
         values ($1, 'another process', now() + interval '1 hour')",
    )
    .bind(wallet.as_str())
    .execute(&h.pool)
    .await
    .expect("hold");
}

async fn give_back(h: &Harness) {
    sqlx::query("delete from wallet_leases where holder = 'another process'")
        .execute(&h.pool)
        .await
        .expect("give back");
}

#[sqlx::test(migrations = false)]
async fn creating_and_claiming_never_wait_for_a_wallet_lease(
    opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let h = Harness::start(opts, conn).await;
    let provider = h.provider().await;
    let maker = h.session().await;
    let maker_wallet = WalletId::session(newest_session(&h).await);
    hold_elsewhere(&h, &maker_wallet).await;

    let started = Instant::now();
    let (id, _, _) = h.offer(&maker, provider, 1_000).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "POST /offers took {took:?}");
    let path = h.lock_path(id).await;
    assert!(
        path.is_some_and(|p| p.split('/').count() == 2),
        "the quote's lock path is kept"
    );

    // The worker mints once the lease is free, signing with the derived key.
    give_back(&h).await;
    h.wait_status(id, &maker, "INVOICE_PAID").await;

    let taker = h.session().await;
    let taker_wallet = WalletId::session(newest_session(&h).await);
    hold_elsewhere(&h, &taker_wallet).await;
    let started = Instant::now();
    h.claim(id, &taker).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "claim took {took:?}");
    give_back(&h).await;
    h.wait_status(id, &taker, "TAKER_BOND_PAID").await;
    h.stop().await;
}
