//! `openpleb-devmint`: the embedded development mint and OIDC issuer for `scripts/dev`.
//!
//! A real cdk mint with the fake Lightning backend (every invoice is "paid" after a second) and
//! NUT-21/22 auth (BATs minted after a login at the dev issuer; `POST /v1/checkstate`
//! blind-protected), on fixed ports so tokens stay valid across restarts. Never point production
//! at it.
//!
//! Settings: `DEVMINT_LISTEN` (`127.0.0.1:3338`), `DEVMINT_DB` (`.dev/mint.db`),
//! `DEVMINT_PAYMENT_DELAY_SECS` (1), `DEVOIDC_LISTEN` (`127.0.0.1:3339`), `DEVOIDC_BACKEND_URL`
//! (`http://127.0.0.1:3001/api/v1`, the backend's admin API), `OIDC_API_TOKEN` (required),
//! `DEVOIDC_SERVICE_SECRET` (`openpleb-dev-service-secret`), `DEVMINT_PAY_LISTEN` (unset: off;
//! else `host:port` of a switch where `POST /pay` with `{"bolt11"}` pays the invoice at once, for
//! runs that set a long payment delay and pay invoices themselves, see `scripts/chaos`),
//! `DEVMINT_WITHOUT_NUTS` (unset; else comma-separated NUT numbers its `/v1/info` leaves out,
//! e.g. `20`, to see the backend refuse such a mint at start).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use openpleb_devkit::oidc::{DevOidc, DevOidcOptions, DEV_CLIENT_ID};
use openpleb_devkit::stack::DEV_SERVICE_SECRET;
use openpleb_devkit::{DevMint, DevMintOptions, MintAuthOptions};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    openpleb_common::telemetry::init(openpleb_common::config::LogFormat::Text);
    let listen: SocketAddr = var("DEVMINT_LISTEN", "127.0.0.1:3338")
        .parse()
        .context("DEVMINT_LISTEN")?;
    let oidc_listen: SocketAddr = var("DEVOIDC_LISTEN", "127.0.0.1:3339")
        .parse()
        .context("DEVOIDC_LISTEN")?;
    let delay: u64 = var("DEVMINT_PAYMENT_DELAY_SECS", "1")
        .parse()
        .context("DEVMINT_PAYMENT_DELAY_SECS")?;
    let without_nuts = var("DEVMINT_WITHOUT_NUTS", "")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::parse)
        .collect::<Result<Vec<u8>, _>>()
        .context("DEVMINT_WITHOUT_NUTS")?;
    let oidc = DevOidc::start(DevOidcOptions {
        listen: oidc_listen,
        backend_admin_url: var("DEVOIDC_BACKEND_URL", "http://127.0.0.1:3001/api/v1"),
        backend_token: std::env::var("OIDC_API_TOKEN").context("OIDC_API_TOKEN is required")?,
        service_secret: var("DEVOIDC_SERVICE_SECRET", DEV_SERVICE_SECRET),
    })
    .await?;
    let mint = DevMint::start_with(DevMintOptions {
        listen,
        db_path: Some(PathBuf::from(var("DEVMINT_DB", ".dev/mint.db"))),
        payment_delay_secs: delay,
        auth: Some(MintAuthOptions::openpleb(
            oidc.discovery_url.clone(),
            DEV_CLIENT_ID,
        )),
        without_nuts,
        ..DevMintOptions::default()
    })
    .await?;
    println!("dev mint listening on {}", mint.url);
    if let Ok(pay_listen) = std::env::var("DEVMINT_PAY_LISTEN") {
        let addr = pay_listen.parse().context("DEVMINT_PAY_LISTEN")?;
        let addr = openpleb_devkit::payer::serve(addr, mint.mint.clone()).await?;
        println!("dev mint payment switch listening on {addr}");
    }
    println!("dev OIDC issuer listening on {}", oidc.issuer);
    openpleb_common::telemetry::shutdown_signal().await;
    mint.stop().await
}
