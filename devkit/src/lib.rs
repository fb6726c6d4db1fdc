//! Development and test support: a real cdk mint in process, and helpers that give tests a
//! PostgreSQL database and a wallet manager wired the way production wires them.
//!
//! Nothing here is a mock: the mint is cdk's own, served over HTTP on loopback, and the
//! database is a real PostgreSQL cluster (`DATABASE_URL`).

pub mod capture;
pub mod chaos;
pub mod client;
pub mod fixtures;
pub mod images;
pub mod mint;
pub mod mint_requests;
pub mod oidc;
pub mod payer;
pub mod push;
pub mod reputation;
pub mod scenario;
pub mod stack;
pub mod trader;

pub use mint::{DevMint, DevMintOptions, MintAuthOptions};
pub use trader::Trader;

use std::path::Path;
use std::time::Duration;

use openpleb_common::wallet::{WalletLayout, WalletManager, WalletManagerConfig};
use sqlx::PgPool;

/// The `TREASURY_SECRET` of [`test_config`] (and the treasury seed of
/// [`wallet_manager_config`]): a fixed test key, never for production.
pub const TEST_TREASURY_SECRET: &str =
    "1111111111111111111111111111111111111111111111111111111111111111";

/// [`TEST_TREASURY_SECRET`]'s bytes.
pub fn test_treasury_secret_bytes() -> Vec<u8> {
    openpleb_common::config::Secret::new(TEST_TREASURY_SECRET).hex_bytes()
}

/// A wallet manager over `dir` (one volume, 16 shards) talking to `mint_url`.
/// Idle wallets close after 500 ms, so workers in one test hand wallets over quickly.
pub fn wallet_manager(pool: PgPool, mint_url: &str, dir: &Path, max_open: usize) -> WalletManager {
    wallet_manager_with(
        pool,
        mint_url,
        dir,
        max_open,
        Duration::from_secs(5),
        Duration::from_millis(500),
    )
}

/// Like [`wallet_manager`] with a chosen wait for another process' lease and idle close.
pub fn wallet_manager_with(
    pool: PgPool,
    mint_url: &str,
    dir: &Path,
    max_open: usize,
    lease_wait: Duration,
    idle_close: Duration,
) -> WalletManager {
    let cfg = wallet_manager_config(mint_url, dir, max_open, lease_wait, idle_close);
    match WalletManager::new(cfg, pool) {
        Ok(m) => {
            m.spawn_maintenance();
            m
        }
        Err(e) => panic!("wallet manager: {e}"),
    }
}

/// The configuration [`wallet_manager_with`] uses, for tests that adjust it further.
pub fn wallet_manager_config(
    mint_url: &str,
    dir: &Path,
    max_open: usize,
    lease_wait: Duration,
    idle_close: Duration,
) -> WalletManagerConfig {
    WalletManagerConfig {
        layout: WalletLayout::new(vec![dir.to_path_buf()], 16),
        // The workers' master secret of every in-process test, so the keys a test's api is
        // given (test_public_keys) are this manager's.
        master_secret: openpleb_common::config::Secret::new(TEST_MASTER_SECRET).hex_bytes(),
        treasury_seed: Some(openpleb_common::wallet::layout::treasury_wallet_seed(
            &test_treasury_secret_bytes(),
        )),
        mint_url: mint_url.to_owned(),
        max_open,
        idle_close,
        lease_ttl: Duration::from_secs(30),
        lease_wait,
        holder: WalletManagerConfig::default_holder(),
        service_auth: None,
        health: openpleb_common::health::Health::new(),
        // Rare enough not to run in a test unless it asks (the production default).
        cleanup_interval: Duration::from_secs(3_600),
        archive_dir: None,
        archive_keep: Duration::from_secs(90 * 86_400),
    }
}

/// The master secret of [`test_wallets_config`] (hex).
pub const TEST_MASTER_SECRET: &str =
    "4242424242424242424242424242424242424242424242424242424242424242";

/// The public keys a worker with [`TEST_MASTER_SECRET`] and [`TEST_TREASURY_SECRET`] derives:
/// what the api of an in-process test is given.
pub fn test_public_keys() -> openpleb_common::keyring::PlatformKeys {
    use std::str::FromStr;
    let treasury = match cdk::nuts::SecretKey::from_hex(TEST_TREASURY_SECRET).map(|k| {
        openpleb_common::domain::keys::XOnlyKey::from_str(
            &k.public_key().x_only_public_key().to_string(),
        )
    }) {
        Ok(Ok(k)) => k,
        _ => panic!("test treasury key"),
    };
    let master = openpleb_common::config::Secret::new(TEST_MASTER_SECRET).hex_bytes();
    match openpleb_common::keyring::WorkerKeys::derive(&master, treasury) {
        Ok(k) => k.public,
        Err(e) => panic!("test keys: {e}"),
    }
}

/// A worker's wallet settings for in-process tests: `wallets_dir`, [`TEST_MASTER_SECRET`].
pub fn test_wallets_config(wallets_dir: &Path) -> openpleb_common::config::WalletsConfig {
    let dir = wallets_dir.to_string_lossy().into_owned();
    let lookup = |k: &str| match k {
        "WALLETS_DIR" => Some(dir.clone()),
        "WALLET_MASTER_SECRET" => Some(TEST_MASTER_SECRET.to_owned()),
        _ => None,
    };
    match openpleb_common::config::WalletsConfig::from_lookup(lookup) {
        Ok(c) => c,
        Err(e) => panic!("test wallets config: {e}"),
    }
}

/// A worker's wallet manager for in-process tests, as the worker binary builds it (without a
/// service account) over [`test_wallets_config`].
pub fn test_worker_wallets(
    pool: PgPool,
    config: &openpleb_common::config::Config,
    wallets: &openpleb_common::config::WalletsConfig,
) -> WalletManager {
    match WalletManager::new(WalletManagerConfig::from_config(wallets, config), pool) {
        Ok(m) => {
            m.spawn_maintenance();
            m
        }
        Err(e) => panic!("wallet manager: {e}"),
    }
}

/// A configuration for in-process tests: every required value set, the given database and
/// mint, the workers' public keys of [`test_public_keys`] (the api's part); the wallets' own
/// settings are [`test_wallets_config`] (the workers' part).
pub fn test_config(database_url: &str, mint_url: &str) -> openpleb_common::config::Config {
    let keys = test_public_keys();
    let vars: std::collections::HashMap<&str, String> = std::collections::HashMap::from([
        ("DATABASE_URL", database_url.to_owned()),
        ("MINT_URL", mint_url.to_owned()),
        ("QUOTE_LOCK_XPUB", keys.quote_locks.to_string()),
        ("TOKEN_SEAL_PUBKEY", keys.token_seal.to_hex()),
        ("TREASURY_PUBKEY", keys.treasury.to_string()),
        ("TREASURY_SECRET", TEST_TREASURY_SECRET.to_owned()),
        ("REPUTATION_SECRET", "17".repeat(32)),
        ("DATA_SECRETS", format!("1:{}", "da".repeat(32))),
        ("ADMIN_TOKEN", "test-admin-token-0123456789".to_owned()),
        ("OIDC_API_TOKEN", "test-oidc-token-0123456789".to_owned()),
        // 60,000.00 per BTC: 1.00 of fiat is 1,667 sats.
        ("PRICE_FIXED", "60000".to_owned()),
        // Test trades are small; the reputation tests that check the earning floor set it.
        ("REPUTATION_MIN_EARN_SATS", "0".to_owned()),
        // A fixed test VAPID key; the devkit's push service listens on loopback.
        (
            "VAPID_PRIVATE_KEY",
            "T62q-1WhpQx5-FtEgehbYACwgBJAjRkeS2SFOW5M0j4".to_owned(),
        ),
        ("NOTIFY_ALLOW_PRIVATE", "true".to_owned()),
    ]);
    match openpleb_common::config::Config::from_lookup(|k| vars.get(k).cloned()) {
        Ok(c) => c,
        Err(e) => panic!("test config: {e}"),
    }
}

/// Gives `cmd` (a test's `openpleb-worker`) the environment of the binaries' tests: nothing
/// inherited but `PATH`, the database, the mint and the wallets' volume given, the test
/// secrets and settings of [`test_config`] and [`test_wallets_config`].
pub fn worker_env<'c>(
    cmd: &'c mut std::process::Command,
    db_url: &str,
    mint_url: &str,
    wallets: &Path,
) -> &'c mut std::process::Command {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("MINT_URL", mint_url)
        .env("WALLETS_DIR", wallets)
        .env("WALLET_MASTER_SECRET", TEST_MASTER_SECRET)
        .env("TREASURY_SECRET", TEST_TREASURY_SECRET)
        .env("REPUTATION_SECRET", "17".repeat(32))
        .env("DATA_SECRETS", format!("1:{}", "da".repeat(32)))
        .env("ADMIN_TOKEN", "test-admin-token-0123456789")
        .env("OIDC_API_TOKEN", "test-oidc-token-0123456789")
        .env("PRICE_FIXED", "60000")
}
