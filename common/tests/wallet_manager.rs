//! The wallet manager against a real mint (cdk, fake Lightning, HTTP) and real PostgreSQL.

use std::str::FromStr;
use std::time::Duration;

use cdk::nuts::Token;
use openpleb_common::wallet::{
    Funds, MintOutcome, WalletError, WalletErrorKind, WalletId, WalletManager,
};
use openpleb_devkit::fixtures::fresh_key;
use openpleb_devkit::{wallet_manager, wallet_manager_with, DevMint};
use sqlx::PgPool;
use uuid::Uuid;

/// Pays a quote through the fake backend and mints it, waiting at most 20 s.
async fn fund(wallets: &WalletManager, id: &WalletId, sats: u64) -> u64 {
    let quote = wallets.create_mint_quote(id, sats).await.expect("quote");
    assert!(quote.request.starts_with("lnbc"), "a bolt11 invoice");
    for _ in 0..40 {
        match wallets.mint_quote(id, &quote.quote_id).await.expect("mint") {
            MintOutcome::Issued(n) => {
                // Asking again after issuance reports the same amount and mints nothing more.
                let again = wallets
                    .mint_quote(id, &quote.quote_id)
                    .await
                    .expect("again");
                assert_eq!(again, MintOutcome::Issued(n));
                return n;
            }
            MintOutcome::IssuedElsewhere => panic!("issued elsewhere"),
            MintOutcome::Unpaid => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    panic!("quote was never paid");
}

/// 1. fund a session wallet by a real mint quote;
/// 2. send part of it P2PK-locked to a fresh key;
/// 3. a second wallet cannot redeem it without the key, and can with it;
/// 4. balances add up to the sat; delete refuses a wallet that holds funds.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn p2pk_payout_redeems_only_with_the_key(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let wallets = wallet_manager(pool, &mint.url, dir.path(), 16);
    let maker = WalletId::session(Uuid::new_v4());
    let taker = WalletId::session(Uuid::new_v4());

    assert_eq!(fund(&wallets, &maker, 1_000).await, 1_000);
    assert!(wallets.path_of(&maker).exists());

    let (sk, key) = fresh_key();
    let sent = wallets.send(&maker, 300, Some(key)).await.expect("send");
    assert_eq!(sent.amount, 300);
    assert_eq!(sent.fee, 0, "the dev mint charges no input fee");

    let refused = wallets.receive(&taker, &sent.token, vec![]).await;
    assert!(
        refused.is_err(),
        "a locked token needs its key: {refused:?}"
    );
    let (wrong_sk, _) = fresh_key();
    let refused = wallets.receive(&taker, &sent.token, vec![wrong_sk]).await;
    assert!(refused.is_err(), "the wrong key is refused: {refused:?}");

    let got = wallets
        .receive(&taker, &sent.token, vec![sk])
        .await
        .expect("redeem");
    assert_eq!(got, 300);

    let maker_balance = wallets.balance(&maker).await.expect("balance");
    let taker_balance = wallets.balance(&taker).await.expect("balance");
    assert_eq!(maker_balance.unspent, 700);
    assert_eq!(taker_balance.unspent, 300);
    assert_eq!(maker_balance.unspent + taker_balance.unspent, 1_000);

    match wallets.delete(&taker, Funds::MustBeEmpty).await {
        Err(WalletError::NotEmpty { sats, .. }) => assert_eq!(sats, 300),
        other => panic!("delete must refuse a funded wallet: {other:?}"),
    }
    assert!(wallets.path_of(&taker).exists());
    wallets
        .delete(
            &taker,
            Funds::AccountedFor("test: swept by hand".to_owned()),
        )
        .await
        .expect("delete with accounted-for funds");
    assert!(!wallets.path_of(&taker).exists());

    // An empty wallet deletes without being told anything.
    let empty = WalletId::session(Uuid::new_v4());
    wallets
        .create_mint_quote(&empty, 10)
        .await
        .expect("create file");
    wallets
        .delete(&empty, Funds::MustBeEmpty)
        .await
        .expect("delete empty");
    assert!(!wallets.path_of(&empty).exists());

    wallets.close_all().await;
    mint.stop().await.expect("stop mint");
}

/// A wallet open in one process cannot be opened by another until the first closes it.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn one_process_at_a_time(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let long = Duration::from_secs(60);
    let first = wallet_manager_with(pool.clone(), &mint.url, dir.path(), 16, long, long);
    let second = wallet_manager_with(
        pool.clone(),
        &mint.url,
        dir.path(),
        16,
        Duration::from_millis(300),
        long,
    );
    let id = WalletId::session(Uuid::new_v4());

    first
        .create_mint_quote(&id, 50)
        .await
        .expect("open in first");
    match second.balance(&id).await {
        Err(WalletError::Busy(busy)) => assert_eq!(busy, id),
        other => panic!("second process must be refused: {other:?}"),
    }
    first.close(&id).await.expect("close");
    assert_eq!(
        second.balance(&id).await.expect("open in second").total(),
        0
    );
    second.close_all().await;

    // A wallet left idle is closed and handed over without an explicit close.
    let quick = wallet_manager_with(
        pool,
        &mint.url,
        dir.path(),
        16,
        long,
        Duration::from_millis(200),
    );
    quick.balance(&id).await.expect("open in quick");
    assert_eq!(
        first
            .balance(&id)
            .await
            .expect("first waits for the idle close")
            .total(),
        0
    );
    first.close_all().await;
    mint.stop().await.expect("stop mint");
}

/// The cache keeps at most `max_open` idle wallets open.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn idle_wallets_are_closed_beyond_the_bound(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let wallets = wallet_manager(pool, &mint.url, dir.path(), 2);
    for _ in 0..5 {
        let id = WalletId::session(Uuid::new_v4());
        wallets.create_mint_quote(&id, 10).await.expect("open");
    }
    // Closing happens in the background right after each operation.
    for _ in 0..50 {
        if wallets.open_count() <= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(wallets.open_count() <= 2, "open: {}", wallets.open_count());
    wallets.close_all().await;
    mint.stop().await.expect("stop mint");
}

/// Refusals say what a client can do about them: a token the wallet cannot take, one spent
/// already, a mint that is down.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn refusals_carry_a_kind_a_client_can_act_on(pool: PgPool) {
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let wallets = wallet_manager(pool, &mint.url, dir.path(), 16);
    let maker = WalletId::session(Uuid::new_v4());
    let taker = WalletId::session(Uuid::new_v4());
    let late = WalletId::session(Uuid::new_v4());
    fund(&wallets, &maker, 100).await;
    let kind = |r: Result<u64, WalletError>| r.expect_err("refused").kind();

    let garbage = wallets.receive(&taker, "cashuBnotatoken", vec![]).await;
    assert_eq!(kind(garbage), WalletErrorKind::TokenInvalid);

    let (_, key) = fresh_key();
    let locked = wallets.send(&maker, 10, Some(key)).await.expect("send");
    let unsigned = wallets.receive(&taker, &locked.token, vec![]).await;
    assert_eq!(kind(unsigned), WalletErrorKind::TokenInvalid);

    let plain = wallets.send(&maker, 20, None).await.expect("send");
    let mut elsewhere = Token::from_str(&plain.token).expect("token");
    if let Token::TokenV4(t) = &mut elsewhere {
        t.mint_url = "http://127.0.0.1:9".parse().expect("url");
    }
    let other_mint = wallets
        .receive(&taker, &elsewhere.to_string(), vec![])
        .await;
    assert_eq!(kind(other_mint), WalletErrorKind::TokenInvalid);

    wallets
        .receive(&taker, &plain.token, vec![])
        .await
        .expect("redeem");
    let twice = wallets.receive(&late, &plain.token, vec![]).await;
    assert_eq!(kind(twice), WalletErrorKind::TokenSpent);

    mint.stop().await.expect("stop mint");
    let down = wallets.create_mint_quote(&maker, 10).await;
    assert_eq!(
        down.expect_err("no mint").kind(),
        WalletErrorKind::MintUnavailable
    );
    wallets.close_all().await;
}
