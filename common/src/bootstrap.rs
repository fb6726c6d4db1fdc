//! What both binaries do at start: connect to PostgreSQL and migrate it, then build the
//! process' wallet manager (with the service account's BATs at a protected mint) and start its
//! maintenance.
//!
//! Two steps rather than one because the api checks the mint's blind auth in between: a mint
//! that cannot prove BAT spends stops the api before any wallet talks to it.

use anyhow::Context;
use sqlx::PgPool;

use crate::config::{Config, DatabaseConfig};
use crate::wallet::service_auth::ServiceAuth;
use crate::wallet::{WalletManager, WalletManagerConfig};

/// A pool of `pool_size` connections to `url`, migrated to the current schema (concurrent
/// starts are safe: sqlx takes an advisory lock).
pub async fn database(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let pool = crate::db::connect(config.url.expose(), config.pool_size)
        .await
        .context("connect to PostgreSQL")?;
    crate::db::migrate(&pool).await.context("migrate")?;
    Ok(pool)
}

/// The wallet manager of this process, logged in with the service account when one is
/// configured, its maintenance (idle close, lease renewal) running until it is dropped.
pub async fn wallets(config: &Config, pool: PgPool) -> anyhow::Result<WalletManager> {
    let mut wallet_cfg = WalletManagerConfig::from_config(config);
    wallet_cfg.service_auth = ServiceAuth::from_config(&config.mint)
        .await
        .context("service OIDC account")?;
    let wallets = WalletManager::new(wallet_cfg, pool).context("wallet manager")?;
    // The task holds the manager weakly and ends with it; its handle is not needed.
    drop(wallets.spawn_maintenance());
    Ok(wallets)
}
