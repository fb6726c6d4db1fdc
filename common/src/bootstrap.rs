//! What the binaries do at start: a pool for PostgreSQL, the service account's BATs at a
//! protected mint, and a worker's wallet manager with its maintenance running or the api's
//! mint desk (no wallet, no wallet secret).
//!
//! Neither step waits for a dependency: PostgreSQL and the mint may be down when a process
//! starts. The watchers (`crate::health::watch`, started by the api's state and the worker's
//! run) migrate the database once it answers and check the mint once it answers, and the
//! process reports itself not ready until then.

use anyhow::Context;
use sqlx::PgPool;

use crate::config::{Config, DatabaseConfig, WalletsConfig};
use crate::desk::MintDesk;
use crate::wallet::service_auth::ServiceAuth;
use crate::wallet::{WalletManager, WalletManagerConfig};

/// A pool of `pool_size` connections to `url` that connects on first use: nothing here needs
/// the database to be up.
pub fn database(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    crate::db::connect_lazy(config.url.expose(), config.pool_size).context("DATABASE_URL")
}

/// The wallet manager of this process, with the service account when one is configured (its
/// login and the mint's protected endpoints wait for the first wallet operation), its
/// maintenance (idle close, lease renewal) running until it is dropped. Its
/// [`WalletManager::health`] is the process' view of its dependencies.
pub async fn wallets(
    config: &Config,
    wallets: &WalletsConfig,
    pool: PgPool,
) -> anyhow::Result<WalletManager> {
    let mut wallet_cfg = WalletManagerConfig::from_config(wallets, config);
    wallet_cfg.service_auth = ServiceAuth::from_config(&config.mint)
        .await
        .context("service OIDC account")?;
    let wallets = WalletManager::new(wallet_cfg, pool).context("wallet manager")?;
    // The task holds the manager weakly and ends with it; its handle is not needed.
    drop(wallets.spawn_maintenance());
    Ok(wallets)
}

/// The api's mint desk: the workers' public keys from the configuration (checked when it was
/// loaded), the service account when one is configured.
pub async fn desk(config: &Config) -> anyhow::Result<MintDesk> {
    let keys = config.platform_keys()?;
    let auth = ServiceAuth::from_config(&config.mint)
        .await
        .context("service OIDC account")?;
    MintDesk::new(&config.mint.url, keys, auth, crate::health::Health::new()).context("MINT_URL")
}
