//! `openpleb-api`: serves the public and admin listeners; `openpleb-api openapi` prints the
//! OpenAPI document as YAML.

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
    let config = Arc::new(exit_on_error(Config::from_env()));
    openpleb_common::telemetry::init(config.ops.log_format);

    let pool = bootstrap::database(&config.database).await?;
    let mint = MintClient::new(&config.mint.url).context("MINT_URL")?;
    // Without a blind-protected checkstate at the mint, a BAT "spend" proves nothing.
    if let Err(e) = mint.check_blind_auth().await {
        eprintln!("{e}");
        std::process::exit(openpleb_common::config::CONFIG_EXIT_CODE);
    }
    let wallets = bootstrap::wallets(&config, pool.clone()).await?;
    let state = AppState::with_wallets(config.clone(), pool, mint, wallets.clone());

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
        admin_app(state),
        openpleb_common::telemetry::shutdown_signal(),
        grace,
    );
    tokio::try_join!(public, admin)?;
    wallets.close_all().await;
    Ok(())
}
