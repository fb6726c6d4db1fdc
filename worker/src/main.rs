//! `openpleb-worker`: runs the job workers and the cron until SIGTERM. Start as many as you
//! like, on as many machines as you like, against the same PostgreSQL.

use std::sync::Arc;

use anyhow::Context;
use openpleb_common::config::{exit_on_error, Config};
use openpleb_common::wallet::service_auth::ServiceAuth;
use openpleb_common::wallet::{WalletManager, WalletManagerConfig};
use openpleb_worker::{run, WorkerContext, WorkerSettings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = exit_on_error(Config::from_env());
    openpleb_common::telemetry::init();

    // Room for every queue's concurrency plus fetch, heartbeat and ack connections.
    let pool =
        openpleb_common::db::connect(config.database_url.expose(), config.database_pool_size)
            .await
            .context("connect to PostgreSQL")?;
    openpleb_common::db::migrate(&pool)
        .await
        .context("migrate")?;

    let mut wallet_cfg = WalletManagerConfig::from_config(&config);
    wallet_cfg.service_auth = ServiceAuth::from_config(&config)
        .await
        .context("service OIDC account")?;
    let wallets = WalletManager::new(wallet_cfg, pool.clone()).context("wallet manager")?;
    let _maintenance = wallets.spawn_maintenance();
    let ctx = Arc::new(WorkerContext {
        pool,
        wallets,
        settings: WorkerSettings::from_config(&config),
    });
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    let name = format!(
        "{host}:{}:{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    tracing::info!(worker = %name, "openpleb-worker starting");
    run(ctx, &name, openpleb_common::telemetry::shutdown_signal()).await
}
