//! Session wallets against a mint that blind-protects what they call (quotes, minting, swaps,
//! checkstate): the process' service account supplies BATs through cdk's auth wallet.

use std::time::Duration;

use cdk::nuts::{Method, ProtectedEndpoint, RoutePath};
use openpleb_common::wallet::service_auth::{ServiceAccount, ServiceAuth};
use openpleb_common::wallet::{MintOutcome, WalletId, WalletManager};
use openpleb_devkit::oidc::DEV_CLIENT_ID;
use openpleb_devkit::stack::{AuthStack, DEV_SERVICE_SECRET};
use openpleb_devkit::wallet_manager_config;
use sqlx::PgPool;
use uuid::Uuid;

fn protect_everything(
    mut auth: openpleb_devkit::MintAuthOptions,
) -> openpleb_devkit::MintAuthOptions {
    auth.blind_protected = vec![
        ProtectedEndpoint::new(Method::Post, RoutePath::Checkstate),
        ProtectedEndpoint::new(Method::Post, RoutePath::MintQuote("bolt11".to_owned())),
        ProtectedEndpoint::new(Method::Post, RoutePath::Mint("bolt11".to_owned())),
        ProtectedEndpoint::new(Method::Post, RoutePath::Swap),
        ProtectedEndpoint::new(Method::Post, RoutePath::Restore),
    ];
    auth
}

/// 1. without service BATs the protected mint refuses the wallet;
/// 2. with them, a wallet is funded, pays a P2PK-locked token and another wallet redeems it;
/// 3. the service spent BATs doing so.
#[sqlx::test(migrator = "openpleb_common::db::MIGRATOR")]
async fn wallets_use_service_bats_at_a_protected_mint(pool: PgPool) {
    let stack = AuthStack::start_with("unused-oidc-token-0123", protect_everything)
        .await
        .expect("stack");
    let dir = tempfile::tempdir().expect("dir");
    let long = Duration::from_secs(30);

    let plain = WalletManager::new(
        wallet_manager_config(&stack.mint.url, dir.path(), 8, long, long),
        pool.clone(),
    )
    .expect("manager");
    let refused = plain
        .create_mint_quote(&WalletId::session(Uuid::new_v4()), 100)
        .await;
    assert!(
        refused.is_err(),
        "a protected quote needs a BAT: {refused:?}"
    );
    plain.close_all().await;

    let service = ServiceAuth::new(
        &stack.mint.url,
        ServiceAccount {
            token_url: format!("{}/token", stack.oidc.issuer),
            client_id: DEV_CLIENT_ID.to_owned(),
            client_secret: DEV_SERVICE_SECRET.to_owned(),
        },
    )
    .await
    .expect("service auth");
    let mut cfg = wallet_manager_config(&stack.mint.url, dir.path(), 8, long, long);
    cfg.service_auth = Some(service.clone());
    let wallets = WalletManager::new(cfg, pool).expect("manager");

    let maker = WalletId::session(Uuid::new_v4());
    let quote = wallets
        .create_mint_quote(&maker, 1_000)
        .await
        .expect("quote");
    let before = service.balance().await.expect("balance");
    let mut minted = 0;
    for _ in 0..40 {
        if let MintOutcome::Issued(n) = wallets
            .mint_quote(&maker, &quote.quote_id)
            .await
            .expect("mint")
        {
            minted = n;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(minted, 1_000);
    let (sk, key) = openpleb_devkit::fixtures::fresh_key();
    let sent = wallets.send(&maker, 400, Some(key)).await.expect("send");
    let taker = WalletId::session(Uuid::new_v4());
    assert_eq!(
        wallets
            .receive(&taker, &sent.token, vec![sk])
            .await
            .expect("redeem"),
        400
    );
    assert_eq!(wallets.balance(&maker).await.expect("balance").unspent, 600);
    let after = service.balance().await.expect("balance");
    assert!(after < before, "BATs were spent: {before} -> {after}");
    wallets.close_all().await;
}
