//! Wallet leases are fenced: a process whose lease was taken, or ran out
//! under it, stops before its next write to the wallet, and no sat is lost on the way. Real
//! PostgreSQL (sqlx::test), the in-process cdk mint with fake Lightning.

use std::time::Duration;

use openpleb_common::wallet::{MintOutcome, RecordOperation, WalletError, WalletId, WalletManager};
use openpleb_devkit::{wallet_manager_config, DevMint};
use sqlx::PgPool;
use uuid::Uuid;

/// A manager with its own holder name (a process of its own) and the given lease lifetime;
/// `maintenance` false is a process whose renewal has stalled.
fn process(
    pool: &PgPool,
    mint: &DevMint,
    dir: &std::path::Path,
    lease_ttl: Duration,
    maintenance: bool,
) -> WalletManager {
    let mut cfg = wallet_manager_config(
        &mint.url,
        dir,
        16,
        Duration::from_millis(300),
        Duration::from_secs(60),
    );
    cfg.lease_ttl = lease_ttl;
    let m = WalletManager::new(cfg, pool.clone()).expect("manager");
    if maintenance {
        m.spawn_maintenance();
    }
    m
}

/// Pays a quote through the fake backend and mints it.
async fn fund(wallets: &WalletManager, id: &WalletId, sats: u64) {
    let quote = wallets.create_mint_quote(id, sats).await.expect("quote");
    for _ in 0..40 {
        match wallets.mint_quote(id, &quote.quote_id).await.expect("mint") {
            MintOutcome::Issued(n) => {
                assert_eq!(n, sats);
                return;
            }
            MintOutcome::IssuedElsewhere => panic!("issued elsewhere"),
            MintOutcome::Unpaid => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    panic!("quote was never paid");
}

/// Every sat the wallet holds is real: sent out whole and redeemed by a fresh wallet.
async fn assert_all_redeemable(wallets: &WalletManager, id: &WalletId, sats: u64) {
    let balance = wallets.balance(id).await.expect("balance");
    assert_eq!(balance.unspent, sats, "{balance:?}");
    assert_eq!(balance.sent, 0, "nothing left the wallet: {balance:?}");
    let token = wallets.send(id, sats, None).await.expect("send all");
    assert_eq!(token.amount, sats);
    let elsewhere = WalletId::session(Uuid::new_v4());
    let got = wallets
        .receive(&elsewhere, &token.token, vec![])
        .await
        .expect("the sats are redeemable");
    assert_eq!(got, sats);
}

/// The operation stopped at a write its lease no longer allowed, and says so.
fn assert_fenced(result: Result<impl std::fmt::Debug, WalletError>) {
    match result {
        Err(e @ WalletError::LeaseLost { .. }) => {
            let shown = e.to_string();
            assert!(shown.contains("lease generation"), "{shown}");
        }
        Err(e) => panic!("refused, but not by the lease: {e}"),
        Ok(v) => panic!("the old holder wrote after its lease was taken: {v:?}"),
    }
}

/// A record step that runs `during` between reserving the send's proofs and confirming it.
fn record_with<F>(during: F) -> RecordOperation
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    Box::new(move |_op| {
        Box::pin(async move {
            during.await;
            Ok(())
        })
    })
}

/// A holder stalls past its lease; another process takes the wallet over. The old holder's
/// next operation is refused instead of writing beside the new holder, and the sats are whole.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn an_expired_lease_taken_over_refuses_the_old_holders_next_write(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let old = process(&pool, &mint, dir.path(), Duration::from_secs(30), true);
    let new = process(&pool, &mint, dir.path(), Duration::from_secs(30), true);
    let id = WalletId::session(Uuid::new_v4());
    fund(&old, &id, 1_000).await;

    // The old holder stalls (as in a long pause) and its lease runs out.
    sqlx::query(
        "update wallet_leases set lease_until = now() - interval '1 second' where wallet_id = $1",
    )
    .bind(id.as_str())
    .execute(&pool)
    .await
    .expect("expire");
    assert_eq!(new.balance(&id).await.expect("taken over").unspent, 1_000);

    // Waking up, the old holder still has the file open. Its next operation finds its lease
    // generation stale before writing anything, drops the stale wallet and, as the wallet is
    // now another process' to use, is refused.
    match old.send(&id, 300, None).await {
        Err(WalletError::Busy(busy)) => assert_eq!(busy, id),
        other => panic!("the old holder must not write: {other:?}"),
    }

    new.close(&id).await.expect("close");
    assert_all_redeemable(&old, &id, 1_000).await;
    old.close_all().await;
    new.close_all().await;
    mint.stop().await.expect("stop mint");
}

/// The lease is taken while an operation runs (between reserving a send's proofs and
/// confirming it); renewal notices, and the operation's next write is refused.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn a_lease_taken_mid_operation_stops_its_next_write(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let wallets = process(&pool, &mint, dir.path(), Duration::from_millis(1_500), true);
    let id = WalletId::session(Uuid::new_v4());
    fund(&wallets, &id, 1_000).await;

    let (steal_pool, steal_id) = (pool.clone(), id.as_str().to_owned());
    let steal = record_with(async move {
        sqlx::query(
            "update wallet_leases set holder = 'another process', lease_until = now() + interval '1 hour'
              where wallet_id = $1",
        )
        .bind(steal_id)
        .execute(&steal_pool)
        .await
        .expect("steal");
        // Renewal runs every third of the lease.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    });
    assert_fenced(wallets.send_recorded(&id, 300, None, steal).await);

    // The other process gives the wallet up; the next operation takes it again, recovers the
    // cut send and finds every sat.
    sqlx::query("delete from wallet_leases where holder = 'another process'")
        .execute(&pool)
        .await
        .expect("give back");
    assert_all_redeemable(&wallets, &id, 1_000).await;
    wallets.close_all().await;
    mint.stop().await.expect("stop mint");
}

/// A process whose renewal stalled runs past its lease in the middle of a send while another
/// process takes the wallet (and recovers the half-done send). The stalled process must not
/// go on to swap proofs the new holder already counts as its own.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn a_stalled_holder_stops_writing_when_its_lease_runs_out(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let stalled = process(&pool, &mint, dir.path(), Duration::from_secs(1), false);
    let new = process(&pool, &mint, dir.path(), Duration::from_secs(30), true);
    let id = WalletId::session(Uuid::new_v4());
    fund(&stalled, &id, 1_000).await;

    let (new2, id2) = (new.clone(), id.clone());
    let takeover = record_with(async move {
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        let seen = new2.balance(&id2).await.expect("taken over");
        assert_eq!(seen.total(), 1_000, "{seen:?}");
    });
    assert_fenced(stalled.send_recorded(&id, 300, None, takeover).await);

    assert_all_redeemable(&new, &id, 1_000).await;
    stalled.close_all().await;
    new.close_all().await;
    mint.stop().await.expect("stop mint");
}

/// Deleting happens under the lease: a process whose lease was taken does not remove the
/// file the new holder has open.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn delete_needs_a_current_lease(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let wallets = process(&pool, &mint, dir.path(), Duration::from_secs(30), true);
    let id = WalletId::session(Uuid::new_v4());
    wallets
        .create_mint_quote(&id, 10)
        .await
        .expect("create file");
    sqlx::query(
        "update wallet_leases set holder = 'another process', lease_until = now() + interval '1 hour'
          where wallet_id = $1",
    )
    .bind(id.as_str())
    .execute(&pool)
    .await
    .expect("steal");
    let refused = wallets
        .delete(&id, openpleb_common::wallet::Funds::MustBeEmpty)
        .await;
    assert!(
        matches!(
            refused,
            Err(WalletError::Busy(_) | WalletError::LeaseLost { .. })
        ),
        "{refused:?}"
    );
    assert!(wallets.path_of(&id).exists(), "the new holder's file stays");
    wallets.close_all().await;
    mint.stop().await.expect("stop mint");
}
