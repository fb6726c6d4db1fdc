//! The world the worker's wallet tests run in: a real PostgreSQL, the in-process dev mint and a
//! wallet manager, with helpers to fund session wallets, record payouts and crash a wallet.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use cdk::wallet::Wallet;
use openpleb_common::db::payouts::{self, NewPayout};
use openpleb_common::domain::money::Party;
use openpleb_common::domain::payout::PayoutPurpose;
use openpleb_common::wallet::store::OpenConnections;
use openpleb_common::wallet::{Balances, Reconciled, WalletId, WalletManager, WalletManagerConfig};
use openpleb_devkit::{fixtures, wallet_manager_config, DevMint, DevMintOptions};
use openpleb_worker::WorkerContext;
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use uuid::Uuid;

pub struct World {
    pub pool: PgPool,
    pub mint: DevMint,
    pub cfg: WalletManagerConfig,
    pub wallets: WalletManager,
    pub ctx: Arc<WorkerContext>,
    pub _dir: tempfile::TempDir,
}

pub async fn world(conn: PgConnectOptions) -> World {
    world_with_fee(conn, 0).await
}

/// A world whose mint charges `input_fee_ppk` per input proof.
pub async fn world_with_fee(conn: PgConnectOptions, input_fee_ppk: u64) -> World {
    let pool = fixtures::test_pool(conn).await.expect("pool");
    let mint = DevMint::start_with(DevMintOptions {
        payment_delay_secs: 3600,
        input_fee_ppk,
        ..DevMintOptions::default()
    })
    .await
    .expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let cfg = wallet_manager_config(
        &mint.url,
        dir.path(),
        64,
        Duration::from_secs(5),
        Duration::from_secs(60),
    );
    let wallets = WalletManager::new(cfg.clone(), pool.clone()).expect("wallets");
    let mut config = openpleb_devkit::test_config("postgres://unused", &mint.url);
    // Every run may look at every wallet again.
    config.worker.reconcile_interval = Duration::from_millis(1);
    let ctx = Arc::new(WorkerContext::from_config(
        pool.clone(),
        wallets.clone(),
        Arc::new(config),
    ));
    World {
        pool,
        mint,
        cfg,
        wallets,
        ctx,
        _dir: dir,
    }
}

impl World {
    /// A session whose wallet holds `sats`, closed in the manager (lease given back).
    pub async fn funded_session(&self, sats: u64) -> WalletId {
        let mut conn = self.pool.acquire().await.expect("conn");
        let session = fixtures::insert_session(&mut conn).await.expect("session");
        let id = WalletId::session(session);
        self.fund_and_close(&id, sats).await;
        id
    }

    /// Funds wallet `id` with `sats` and closes it in the manager (lease given back).
    pub async fn fund_and_close(&self, id: &WalletId, sats: u64) {
        let funded = fixtures::fund_wallet(&self.wallets, &self.mint, id, sats).await;
        funded.expect("fund");
        self.wallets.close(id).await.expect("close");
    }

    /// Lets `task` (an operation on the raw wallet `open`) run for `cut`, then kills both as a
    /// crash would and reconciles wallet `id`: the report, after checking nothing is in flight.
    pub async fn cut_and_reconcile<T>(
        &self,
        id: &WalletId,
        (task, open): (tokio::task::JoinHandle<T>, (Wallet, Arc<OpenConnections>)),
        cut: Duration,
        step: u64,
    ) -> Reconciled {
        tokio::time::sleep(cut).await;
        task.abort();
        let _ = task.await;
        crash(open.0, open.1).await;
        let r = self.wallets.reconcile(id).await.expect("reconcile");
        self.wallets.close(id).await.expect("close");
        let in_flight = r.after.reserved + r.after.pending;
        assert_eq!(in_flight, 0, "step {step}: nothing in flight");
        r
    }

    /// A session with an offer paying out to `key`, its wallet funded with `fund` sats, and
    /// refund payouts of `owed` (reference, sats) recorded from that wallet.
    pub async fn owing(&self, key: &str, fund: u64, owed: &[(&str, u64)]) -> (Uuid, WalletId) {
        let mut tx = self.pool.begin().await.expect("tx");
        let session = fixtures::insert_session(&mut tx).await.expect("session");
        let offer = fixtures::insert_offer(&mut tx, session, 1_000, key)
            .await
            .expect("offer");
        tx.commit().await.expect("commit");
        let wallet = WalletId::session(session);
        fixtures::fund_wallet(&self.wallets, &self.mint, &wallet, fund)
            .await
            .expect("fund");
        let mut tx = self.pool.begin().await.expect("tx");
        for (reference, sats) in owed {
            refund(&mut tx, offer.id, &wallet, (*sats, key), reference).await;
        }
        tx.commit().await.expect("commit");
        (offer.id, wallet)
    }

    /// The session's file opened directly, as the process that crashed had it open.
    pub async fn raw(&self, id: &WalletId) -> (Wallet, Arc<OpenConnections>) {
        fixtures::raw_wallet(&self.cfg, id).await.expect("raw")
    }

    pub async fn balance(&self, id: &WalletId) -> Balances {
        self.wallets.balance(id).await.expect("balance")
    }
}

/// Records a refund to the maker of `offer` from `wallet`: `sats` locked to `key`.
pub async fn refund(
    conn: &mut sqlx::PgConnection,
    offer_id: Uuid,
    wallet: &WalletId,
    (sats, key): (u64, &str),
    reference: &str,
) {
    let payout = NewPayout {
        offer_id,
        party: Party::Maker,
        purpose: PayoutPurpose::Refund,
        source_wallet: wallet,
        sats,
        lock_pubkey: Some(key),
        reference,
    };
    payouts::record(conn, &payout).await.expect("payout");
}

/// Balances of a wallet that holds `sats` and nothing in flight.
pub fn unspent(sats: u64) -> Balances {
    Balances {
        unspent: sats,
        ..Balances::default()
    }
}

/// One run of the release job for `offer_id`, as a worker would run it.
pub async fn release(
    ctx: &Arc<WorkerContext>,
    offer_id: Uuid,
) -> Result<(), apalis::prelude::BoxDynError> {
    openpleb_worker::jobs::release_payouts::handle(
        openpleb_common::jobs::ReleasePayouts { offer_id },
        apalis::prelude::Data::new(ctx.clone()),
    )
    .await
}

/// The "crash": the wallet object is gone and its file closed, whatever was in flight.
pub async fn crash(w: Wallet, connections: Arc<OpenConnections>) {
    drop(w);
    assert!(
        connections.wait_closed(Duration::from_secs(10)).await,
        "the crashed wallet's file closed"
    );
}
