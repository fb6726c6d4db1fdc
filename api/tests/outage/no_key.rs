//! The api holds no key that spends: the binary refuses a wallet secret or volume, plays whole
//! trades (funded by invoice and by token, payouts redeemed) with the workers' public keys
//! alone, and nothing it is given restores a wallet from the mint, while the same procedure fed
//! a worker's configuration does.

use std::collections::HashMap;
use std::time::Duration;

use cdk::nuts::{CurrencyUnit, SecretKey};
use cdk::wallet::{SendOptions, WalletBuilder};
use cdk::Amount;
use openpleb_common::config::Secret;
use openpleb_common::wallet::layout::derive_seed;
use openpleb_common::wallet::store::{SqlxSqliteConfig, WalletSqlxDatabase};
use openpleb_common::wallet::WalletId;
use openpleb_devkit::client::{
    call, new_party, payout_key, redeem, upload_receipt, Endpoints, Party,
};
use openpleb_devkit::oidc::DEV_CLIENT_ID;
use openpleb_devkit::{
    fixtures, test_config, DevMint, DevMintOptions, MintAuthOptions, TEST_MASTER_SECRET,
    TEST_TREASURY_SECRET,
};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::support::*;

/// The api binary given `extra` besides its usual environment: its exit code and stderr, or
/// `None` while it still runs after a few seconds (it started).
async fn api_with(extra: (&'static str, String)) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = api_command("postgres://127.0.0.1:1/none", "http://127.0.0.1:1")
            .env(extra.0, extra.1)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run openpleb-api");
        for _ in 0..30 {
            if let Ok(Some(status)) = child.try_wait() {
                let out = child.wait_with_output().expect("output");
                return (
                    status.code(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        (None, String::new())
    })
    .await
    .expect("join")
}

/// Given a wallet secret or a wallet volume, the api exits with code 2 and one line naming
/// the variable; given neither, it starts (the control).
#[tokio::test]
async fn the_api_refuses_a_wallet_secret_or_volume() {
    for var in openpleb_common::config::WORKER_ONLY {
        let (code, stderr) = api_with((var, "ab".repeat(32))).await;
        assert_eq!(code, Some(2), "{var}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(
            !stderr.contains(&"ab".repeat(32)),
            "the value is not echoed"
        );
    }
    let (code, stderr) = api_with(("API_HOST", "127.0.0.1".to_owned())).await;
    assert_eq!(code, None, "without them the api runs: {stderr}");
}

/// Every sat a set of configuration values can restore from the mint for `wallets`: each
/// value (hex-decoded where it is hex) tried as the master secret of each wallet's seed and
/// as a seed itself, each restore in a fresh in-memory cdk wallet (NUT-09, then NUT-07).
async fn restorable(mint: &str, values: &[String], wallets: &[WalletId]) -> u64 {
    let mut total = 0;
    for value in values {
        let raw = value.trim();
        let bytes = if !raw.is_empty()
            && raw.len() % 2 == 0
            && raw.bytes().all(|b| b.is_ascii_hexdigit())
        {
            Secret::new(raw.to_ascii_lowercase()).hex_bytes()
        } else {
            raw.as_bytes().to_vec()
        };
        let mut seeds: Vec<[u8; 64]> = wallets.iter().map(|id| derive_seed(&bytes, id)).collect();
        if bytes.len() >= 64 {
            let mut s = [0u8; 64];
            s.copy_from_slice(&bytes[..64]);
            seeds.push(s);
        }
        for seed in seeds {
            let db = std::sync::Arc::new(
                WalletSqlxDatabase::new(SqlxSqliteConfig::memory())
                    .await
                    .expect("store"),
            );
            let wallet = WalletBuilder::new()
                .mint_url(mint.parse().expect("mint url"))
                .unit(CurrencyUnit::Sat)
                .localstore(db)
                .seed(seed)
                .without_rate_limiting()
                .build()
                .expect("wallet");
            let restored = wallet.restore().await.expect("restore");
            total += u64::from(restored.unspent);
        }
    }
    total
}

/// A session wallet and the treasury's hold sats; the api's configuration, every value of it,
/// restores none of them. The same procedure fed the workers' configuration restores them
/// (the control: the procedure can find what is there).
#[sqlx::test(migrations = false)]
async fn nothing_the_api_holds_restores_a_wallet(opts: PgPoolOptions, conn: PgConnectOptions) {
    let pool = opts.connect_with(conn).await.expect("pool");
    openpleb_common::db::migrate(&pool).await.expect("migrate");
    let mint = DevMint::start().await.expect("mint");
    let dir = tempfile::tempdir().expect("dir");
    let config = test_config("postgres://unused", &mint.url);
    let settings = openpleb_devkit::test_wallets_config(dir.path());
    let wallets = openpleb_devkit::test_worker_wallets(pool.clone(), &config, &settings);
    let session = WalletId::session(uuid::Uuid::new_v4());
    fixtures::fund_wallet(&wallets, &mint, &session, 2_100)
        .await
        .expect("fund");
    wallets.close_all().await;

    // What an api is given (the shared settings and its public keys), as values.
    let mut api: HashMap<&str, String> = HashMap::from([
        (
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/openpleb".to_owned(),
        ),
        ("MINT_URL", mint.url.clone()),
        ("REPUTATION_SECRET", "17".repeat(32)),
        ("DATA_SECRETS", format!("1:{}", "da".repeat(32))),
        ("ADMIN_TOKEN", "test-admin-token-0123456789".to_owned()),
        ("OIDC_API_TOKEN", "test-oidc-token-0123456789".to_owned()),
        ("PRICE_FIXED", "60000".to_owned()),
    ]);
    api.extend(api_keys());
    let api_config = openpleb_common::config::Config::for_api(|k| api.get(k).cloned())
        .expect("the api's config");
    let keys = api_config.platform_keys().expect("keys");
    let mut api_values: Vec<String> = api.values().cloned().collect();
    api_values.push(keys.quote_locks.to_string());
    let targets = [
        session.clone(),
        WalletId::parse("platform_treasury").expect("id"),
    ];
    assert_eq!(
        restorable(&mint.url, &api_values, &targets).await,
        0,
        "the api's configuration restores nothing"
    );
    // The control: the workers' configuration restores the session's sats.
    let mut worker_values = api_values.clone();
    worker_values.push(TEST_MASTER_SECRET.to_owned());
    worker_values.push(TEST_TREASURY_SECRET.to_owned());
    assert_eq!(
        restorable(&mint.url, &worker_values, &targets).await,
        2_100,
        "the same procedure with the workers' secrets finds the escrow"
    );
    mint.stop().await.expect("stop mint");
}

/// The trade's moves after funding, through the binary api: claim with the bond paid, receipt,
/// completion; then both payouts redeemed with their keys. Returns (maker's, taker's) sats.
async fn complete(
    env: &Endpoints,
    mint: &DevMint,
    maker: &Party,
    taker: &Party,
    id: &str,
    maker_sk: &SecretKey,
) -> (u64, u64) {
    let (taker_sk, taker_key) = payout_key();
    let claimed = call(
        "POST",
        &format!("{}/offers/{id}/claim", env.api),
        Some(&taker.bat),
        Some(&json!({ "takerPayoutPubkey": taker_key })),
    )
    .await
    .expect("claim");
    let bond = &claimed["bond"];
    mint.pay_invoice(
        bond["invoice"].as_str().expect("bond invoice"),
        bond["amountSats"].as_u64().expect("bond"),
    )
    .await
    .expect("pay the bond");
    wait_status(env, &taker.bat, id, "TAKER_BOND_PAID").await;
    upload_receipt(env, taker, id).await.expect("receipt");
    call(
        "POST",
        &format!("{}/offers/{id}/complete", env.api),
        Some(&maker.bat),
        None,
    )
    .await
    .expect("complete");
    let released = |who: &Party| {
        let url = format!("{}/offers/{id}/payouts", env.api);
        let bat = who.bat.clone();
        async move {
            for _ in 0..240 {
                if let Ok(v) = call("GET", &url, Some(&bat), None).await {
                    let list = v.as_array().cloned().unwrap_or_default();
                    if !list.is_empty() && list.iter().all(|p| p["state"] == "RELEASED") {
                        return list
                            .iter()
                            .filter_map(|p| p["token"].as_str().map(str::to_owned))
                            .collect::<Vec<_>>();
                    }
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            panic!("payouts of {id} never released");
        }
    };
    let maker_tokens = released(maker).await;
    let taker_tokens = released(taker).await;
    (
        redeem(&env.mint, &maker_tokens, maker_sk)
            .await
            .expect("maker redeems"),
        redeem(&env.mint, &taker_tokens, &taker_sk)
            .await
            .expect("taker redeems"),
    )
}

/// The api binary, started with the workers' public keys and no wallet secret or volume, and a
/// worker: one trade funded by invoice and one by token, each completed and both payouts
/// redeemed with their keys for exactly what the trade owes.
#[sqlx::test(migrations = false)]
async fn an_api_without_wallet_secrets_plays_whole_trades(
    _opts: PgPoolOptions,
    conn: PgConnectOptions,
) {
    let db_url = database_url(&conn);
    let dir = tempfile::tempdir().expect("dir");
    let admin_port = free_port();
    let oidc = issuer(admin_port).await;
    let mint = DevMint::start_with(DevMintOptions {
        payment_delay_secs: 3600,
        auth: Some(MintAuthOptions::openpleb(
            oidc.discovery_url.clone(),
            DEV_CLIENT_ID,
        )),
        ..DevMintOptions::default()
    })
    .await
    .expect("mint");
    let mut api = ApiProcess::start(&db_url, &mint.url, dir.path(), admin_port);
    let worker = Worker::start(test_config(&db_url, &mint.url), &dir.path().join("wallets")).await;
    api.wait_listening().await;
    wait_until(Duration::from_secs(60), "ready", || async {
        api.ready("").await.status == 200
    })
    .await;
    let env = api.endpoints(&mint.url, &oidc.issuer);
    let provider = provider(&env).await;
    let maker = new_party(&env, "maker", false).await.expect("maker");
    let taker = new_party(&env, "taker", false).await.expect("taker");
    let owed = |offer: &Value| {
        let n = |k: &str| offer[k].as_u64().expect(k);
        (
            n("makerBondSats"),
            n("amountSats") + n("takerRewardSats") + n("takerBondSats"),
        )
    };

    // 1. Funded by invoice.
    let maker_sk = SecretKey::generate();
    let (id, created) = funded_offer(&env, &mint, &maker, &provider, &maker_sk).await;
    let got = complete(&env, &mint, &maker, &taker, &id, &maker_sk).await;
    assert_eq!(got, owed(&created["offer"]), "invoice-funded trade");

    // 2. Funded by token: 202 with the intent, a worker receives it.
    let maker_sk = SecretKey::generate();
    let created = create_offer(&env, &maker, &provider, &maker_sk).await;
    let id = created["offer"]["id"].as_str().expect("id").to_owned();
    let d = created["deposit"]["amountSats"].as_u64().expect("deposit");
    let w = fixtures::memory_wallet(&mint.url).await.expect("wallet");
    fixtures::fund_memory_wallet(&w, &mint, d)
        .await
        .expect("cash");
    let token = w
        .prepare_send(Amount::from(d), SendOptions::default())
        .await
        .expect("send")
        .confirm(None)
        .await
        .expect("token")
        .to_string();
    let intent = call(
        "POST",
        &format!("{}/offers/{id}/fund", env.api),
        Some(&maker.bat),
        Some(&json!({ "token": token })),
    )
    .await
    .expect("fund");
    assert_eq!(intent["state"], "OPEN", "{intent}");
    wait_status(&env, &maker.bat, &id, "INVOICE_PAID").await;
    let got = complete(&env, &mint, &maker, &taker, &id, &maker_sk).await;
    assert_eq!(got, owed(&created["offer"]), "token-funded trade");

    api.assert_running();
    worker.assert_running();
    worker.stop().await;
    drop(api);
    mint.stop().await.expect("stop mint");
}
