//! `openpleb-api`: serves the public and admin listeners; `openpleb-api openapi` prints the
//! OpenAPI document as YAML.
//!
//! It starts whether or not PostgreSQL and the mint answer, and says which is down on `/ready`
//! until they do. It exits (code 2, one line) only on configuration errors, a mint that answers
//! without what the api relies on among them.

use std::sync::Arc;

use anyhow::Context;
use openpleb_api::{admin_app, openapi_admin_yaml, openapi_yaml, public_app, AppState};
use openpleb_common::bootstrap;
use openpleb_common::config::{exit_on_error, Config};
use openpleb_common::mint::MintClient;
use poem::listener::TcpListener;
use poem::Server;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        Some("openapi") => {
            print!("{}", openapi_yaml());
            return Ok(());
        }
        Some("openapi-admin") => {
            print!("{}", openapi_admin_yaml());
            return Ok(());
        }
        _ => {}
    }
    // The api holds no wallet secret and no wallet volume (it refuses them), only the
    // workers' public keys (the treasury's among them: settlements lock the fee to it).
    let config = Arc::new(exit_on_error(Config::for_api_from_env()));
    openpleb_common::telemetry::init(config.ops.log_format);

    let pool = bootstrap::database(&config.database)?;
    let mint = MintClient::new(&config.mint.url).context("MINT_URL")?;
    let desk = bootstrap::desk(&config).await?;
    // Watches the database and the mint from here on; a mint that answers without what the api
    // relies on (NUT-07, 09, 11, 12, 20, and a blind-protected checkstate, without which a BAT
    // "spend" proves nothing) ends the process at its first answer (`mint::needs`).
    let state = AppState::with_desk(config.clone(), pool, mint, desk);

    let public_addr = format!("{}:{}", config.api.host, config.api.port);
    let admin_addr = format!("{}:{}", config.api.admin_host, config.api.admin_port);
    tracing::info!(public = %public_addr, admin = %admin_addr, "openpleb-api listening");
    let grace = Some(std::time::Duration::from_secs(20));
    let public = Server::new(TcpListener::bind(public_addr)).run_with_graceful_shutdown(
        public_app(state.clone()),
        openpleb_common::telemetry::shutdown_signal(),
        grace,
    );
    let admin = Server::new(TcpListener::bind(admin_addr)).run_with_graceful_shutdown(
        admin_app(state.clone()),
        openpleb_common::telemetry::shutdown_signal(),
        grace,
    );
    tokio::select! {
        served = async { tokio::try_join!(public, admin) } => {
            served?;
        }
        fatal = state.fatal() => {
            eprintln!("{fatal}");
            std::process::exit(fatal.exit_code);
        }
    }
    Ok(())
}
