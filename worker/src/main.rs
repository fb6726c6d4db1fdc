//! `openpleb-worker`: runs the job workers and the cron until SIGTERM. Start as many as you
//! like, on as many machines as you like, against the same PostgreSQL.
//! `openpleb-worker public-keys` prints the public keys the api is to be given
//! (`QUOTE_LOCK_XPUB`, `TOKEN_SEAL_PUBKEY`, `TREASURY_PUBKEY`).
//!
//! It starts whether or not PostgreSQL and the mint answer, and its queues wait for them; it
//! exits only on a configuration error (code 2, one line; a mint whose `/v1/info` lacks a NUT
//! the wallets rely on among them, found at its first answer) or a migration that fails.

use std::sync::Arc;

use openpleb_common::bootstrap;
use openpleb_common::config::{exit_on_error, Config, WalletsConfig};
use openpleb_common::health::watch::Fatal;
use openpleb_worker::{run, WorkerContext};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Arc::new(exit_on_error(Config::from_env()));
    let wallet_settings = exit_on_error(WalletsConfig::from_env());
    exit_on_error(config.treasury.check_sweeper());
    if std::env::args().nth(1).as_deref() == Some("public-keys") {
        // What the api is given: public keys only, derived from the secrets only workers hold.
        let keys = exit_on_error(public_keys(&config, &wallet_settings));
        print!("{}", keys.env_lines());
        return Ok(());
    }
    openpleb_common::telemetry::init(config.ops.log_format);

    // Room for every queue's concurrency plus fetch, heartbeat and ack connections.
    let pool = bootstrap::database(&config.database)?;
    let wallets = bootstrap::wallets(&config, &wallet_settings, pool.clone()).await?;
    let own = wallets
        .worker_keys(&config)
        .map_err(|e| anyhow::anyhow!("the workers' keys: {e}"))?;
    exit_on_error(config.check_worker_keys(&own.public));
    let ctx = Arc::new(WorkerContext::from_config(pool, wallets, config));
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
    let name = format!(
        "{host}:{}:{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    tracing::info!(worker = %name, "openpleb-worker starting");
    let ran = run(ctx, &name, openpleb_common::telemetry::shutdown_signal()).await;
    if let Err(e) = &ran {
        if let Some(fatal) = e.downcast_ref::<Fatal>() {
            eprintln!("{fatal}");
            std::process::exit(fatal.exit_code);
        }
    }
    ran
}

/// The public keys the api needs, from this worker's secrets.
fn public_keys(
    config: &Config,
    wallets: &WalletsConfig,
) -> Result<openpleb_common::keyring::PlatformKeys, openpleb_common::config::ConfigError> {
    let master = wallets.master_secret_bytes();
    let invalid = |e: String| openpleb_common::config::ConfigError::Invalid {
        var: "WALLET_MASTER_SECRET",
        reason: e,
    };
    let treasury = openpleb_common::wallet::treasury::TreasuryKey::from_config(config)
        .map_err(|e| invalid(e.to_string()))?
        .lock;
    openpleb_common::keyring::WorkerKeys::derive(&master, treasury)
        .map(|k| k.public)
        .map_err(|e| invalid(e.to_string()))
}
