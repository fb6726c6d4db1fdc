//! Development and test support: a real cdk mint in process, and helpers that give tests a
//! PostgreSQL database and a wallet manager wired the way production wires them.
//!
//! Nothing here is a mock: the mint is cdk's own, served over HTTP on loopback, and the
//! database is a real PostgreSQL cluster (`DATABASE_URL`).

pub mod mint;

pub use mint::{DevMint, DevMintOptions};

use std::path::Path;
use std::time::Duration;

use openpleb_common::wallet::{WalletLayout, WalletManager, WalletManagerConfig};
use sqlx::PgPool;

/// A wallet manager over `dir` (one volume, 16 shards) talking to `mint_url`.
pub fn wallet_manager(pool: PgPool, mint_url: &str, dir: &Path, max_open: usize) -> WalletManager {
    wallet_manager_with(pool, mint_url, dir, max_open, Duration::from_secs(5))
}

/// Like [`wallet_manager`] with a chosen wait for another process' lease.
pub fn wallet_manager_with(
    pool: PgPool,
    mint_url: &str,
    dir: &Path,
    max_open: usize,
    lease_wait: Duration,
) -> WalletManager {
    let cfg = WalletManagerConfig {
        layout: WalletLayout::new(vec![dir.to_path_buf()], 16),
        master_secret: b"openpleb test master secret, not for production".to_vec(),
        mint_url: mint_url.to_owned(),
        max_open,
        lease_ttl: Duration::from_secs(30),
        lease_wait,
        holder: WalletManagerConfig::default_holder(),
    };
    match WalletManager::new(cfg, pool) {
        Ok(m) => m,
        Err(e) => panic!("wallet manager: {e}"),
    }
}
