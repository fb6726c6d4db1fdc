//! `openpleb-devmint`: the embedded development mint for `scripts/dev`.
//!
//! A real cdk mint with the fake Lightning backend (every invoice is "paid" after a second),
//! on a fixed port so tokens stay valid across restarts. Never point production at it.
//!
//! Settings: `DEVMINT_LISTEN` (default `127.0.0.1:3338`), `DEVMINT_DB` (default
//! `.dev/mint.db`), `DEVMINT_PAYMENT_DELAY_SECS` (default 1).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use openpleb_devkit::{DevMint, DevMintOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    openpleb_common::telemetry::init();
    let listen: SocketAddr = std::env::var("DEVMINT_LISTEN")
        .unwrap_or_else(|_| "127.0.0.1:3338".to_owned())
        .parse()
        .context("DEVMINT_LISTEN")?;
    let db =
        PathBuf::from(std::env::var("DEVMINT_DB").unwrap_or_else(|_| ".dev/mint.db".to_owned()));
    let delay: u64 = std::env::var("DEVMINT_PAYMENT_DELAY_SECS")
        .unwrap_or_else(|_| "1".to_owned())
        .parse()
        .context("DEVMINT_PAYMENT_DELAY_SECS")?;
    let mint = DevMint::start_with(DevMintOptions {
        listen,
        db_path: Some(db),
        payment_delay_secs: delay,
        ..DevMintOptions::default()
    })
    .await?;
    println!("dev mint listening on {}", mint.url);
    openpleb_common::telemetry::shutdown_signal().await;
    mint.stop().await
}
