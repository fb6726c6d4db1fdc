//! `openpleb-worker`: runs the job workers and the cron until SIGTERM. Start as many as you
//! like, on as many machines as you like, against the same PostgreSQL.
//!
//! It starts whether or not PostgreSQL and the mint answer, and its queues wait for them; it
//! exits only on a configuration error (code 2, one line; a mint whose `/v1/info` lacks a NUT
//! the wallets rely on among them, found at its first answer) or a migration that fails.

use std::sync::Arc;

use openpleb_common::bootstrap;
use openpleb_common::config::{exit_on_error, Config};
use openpleb_common::health::watch::Fatal;
use openpleb_worker::{run, WorkerContext};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Arc::new(exit_on_error(Config::from_env()));
    exit_on_error(config.treasury.check_sweeper());
    openpleb_common::telemetry::init(config.ops.log_format);

    // Room for every queue's concurrency plus fetch, heartbeat and ack connections.
    let pool = bootstrap::database(&config.database)?;
    let wallets = bootstrap::wallets(&config, pool.clone()).await?;
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
