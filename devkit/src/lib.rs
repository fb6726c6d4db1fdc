//! Development and test support: a real cdk mint in process, and helpers that give tests a
//! PostgreSQL database and a wallet manager wired the way production wires them.
//!
//! Nothing here is a mock: the mint is cdk's own, served over HTTP on loopback, and the
//! database is a real PostgreSQL cluster (`DATABASE_URL`).

pub mod chaos;
pub mod client;
pub mod fixtures;
pub mod mint;
pub mod mint_requests;
pub mod oidc;
pub mod payer;
pub mod push;
pub mod reputation;
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
        master_secret: b"openpleb test master secret, not for production".to_vec(),
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
    }
}

/// A configuration for in-process tests: every required value set, the given database and mint.
pub fn test_config(
    database_url: &str,
    mint_url: &str,
    wallets_dir: &Path,
) -> openpleb_common::config::Config {
    let vars: std::collections::HashMap<&str, String> = std::collections::HashMap::from([
        ("DATABASE_URL", database_url.to_owned()),
        ("MINT_URL", mint_url.to_owned()),
        ("WALLETS_DIR", wallets_dir.to_string_lossy().into_owned()),
        ("WALLET_MASTER_SECRET", "42".repeat(32)),
        ("REPUTATION_SECRET", "17".repeat(32)),
        ("TREASURY_SECRET", TEST_TREASURY_SECRET.to_owned()),
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
