//! Opening one wallet file under a lease just taken: the file created from the blank if asked,
//! its store fenced by the lease's generation, cdk's wallet built on it, and recovery run.
//!
//! The cache of open wallets ([`super::slots`]) decides when to open and holds the lease; this
//! is only how a file becomes a cdk [`Wallet`], so it depends on storage and recovery and on
//! nothing that holds wallets.

use std::sync::Arc;
use std::time::Duration;

use cdk::mint_url::MintUrl;
use cdk::nuts::CurrencyUnit;
use cdk::wallet::{Wallet, WalletBuilder};

use super::blank::Blank;
use super::error::WalletError;
use super::fence::Fence;
use super::layout::WalletId;
use super::recovery::recover_on_open;
use super::settings::WalletManagerConfig;
use super::store::{OpenConnections, SqlxSqliteConfig, WalletSqlxDatabase};

/// How an operation opens its wallet.
#[derive(Debug, Clone, Copy)]
pub(super) struct Open {
    /// Create the file if it does not exist.
    pub(super) create: bool,
    /// How long to wait for another process' lease.
    pub(super) lease_wait: Duration,
    /// Run saga recovery on open (the reconciliation runs it itself, to see what it finds).
    pub(super) recover: bool,
    /// Close the wallet again before giving up its lock if this operation opened it, or if the
    /// operation failed (the reconciliation: it opens without recovery, and should not keep a
    /// lease another process may be waiting for).
    pub(super) close_after: bool,
}

/// A wallet open in this process, with what closing it needs.
pub(super) struct OpenWallet {
    pub(super) wallet: Wallet,
    pub(super) connections: Arc<OpenConnections>,
    /// The lease generation the wallet was opened under; its store asks it before each write.
    pub(super) fence: Arc<Fence>,
}

impl OpenWallet {
    /// Drops the wallet and waits (up to 10 s) for its SQLite connection to close; the fence
    /// of the lease it was open under, for the caller to confirm or give back.
    pub(super) async fn shut(self, id: &WalletId) -> Arc<Fence> {
        drop(self.wallet);
        if !self.connections.wait_closed(Duration::from_secs(10)).await {
            tracing::warn!(wallet = %id, "wallet connection did not close in time");
        }
        self.fence
    }
}

/// Opens the wallet's file under a lease just taken, its store fenced by `fence`.
pub(super) async fn open_file(
    cfg: &WalletManagerConfig,
    blank: &Blank,
    mint_url: &MintUrl,
    id: &WalletId,
    open: Open,
    fence: Arc<Fence>,
) -> Result<OpenWallet, WalletError> {
    let seed = cfg.seed_of(id)?;
    let path = cfg.layout.locate(id);
    if !path.exists() {
        if !open.create {
            return Err(WalletError::NotFound(id.clone()));
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        // Under the lease just taken: nobody else creates this file meanwhile.
        blank.create_at(&path).await?;
    }
    let config = SqlxSqliteConfig::file(&path).fenced(fence.clone());
    let connections = config.open_connections();
    let db = Arc::new(WalletSqlxDatabase::new(config).await?);
    let mut builder = WalletBuilder::new()
        .mint_url(mint_url.clone())
        .unit(CurrencyUnit::Sat)
        .localstore(db)
        .seed(seed)
        // A client of its own: cdk's HTTP client (bitreq) sends every request of a client
        // over one connection, one after another, so a client shared by every wallet made
        // all of a process' mint calls wait in one line (settlement p50 1.1 s -> 2.0 s in
        // `scripts/bench --only trade`).
        .without_rate_limiting();
    if let Some(auth) = &cfg.service_auth {
        // Shared, so BATs live in one process-wide store rather than in session files.
        builder = builder.auth_wallet(auth.auth_wallet());
        auth.ensure_supply().await?;
    }
    let wallet = builder.build()?;
    if open.recover {
        recover_on_open(&wallet, id).await?;
    }
    Ok(OpenWallet {
        wallet,
        connections,
        fence,
    })
}
