//! What a wallet manager is built from: volumes, the master secret, the mint, the cache's size
//! and the leases' timing.
//!
//! Both the manager and the cache of open wallets under it read these settings, so they live
//! in a module of their own below both.

use std::time::Duration;

use super::error::WalletError;
use super::layout::{
    derive_seed, treasury_wallet_seed, TreasurySeed, WalletId, WalletLayout, TREASURY_WALLET,
};
use super::service_auth::ServiceAuth;

/// Settings of a [`super::WalletManager`].
#[derive(Debug, Clone)]
pub struct WalletManagerConfig {
    /// Volumes and shards.
    pub layout: WalletLayout,
    /// Master secret the wallet seeds derive from.
    pub master_secret: Vec<u8>,
    /// The treasury wallet's seed (from `TREASURY_SECRET`); without it this process cannot
    /// open [`TREASURY_WALLET`].
    pub treasury_seed: Option<TreasurySeed>,
    /// The mint every wallet uses.
    pub mint_url: String,
    /// Most wallets open at once.
    pub max_open: usize,
    /// Close a wallet (and give its lease back) after this long without an operation.
    pub idle_close: Duration,
    /// Lease lifetime; renewed every third of it.
    pub lease_ttl: Duration,
    /// How long an open waits for another process to give the wallet up.
    pub lease_wait: Duration,
    /// This process' name in the lease table (unique per process).
    pub holder: String,
    /// BATs for mints that protect what the wallets call; `None` for an open mint.
    pub service_auth: Option<ServiceAuth>,
    /// The process' view of the mint and the database: operations that find the mint
    /// unreachable report it here, so its watcher looks again at once.
    pub health: crate::health::Health,
    /// How often the wallet cleanup sweep runs.
    pub cleanup_interval: Duration,
    /// Where wallets of trades that went through a dispute or an admin action are archived
    /// before deletion; `None`: not archived.
    pub archive_dir: Option<std::path::PathBuf>,
    /// How long an archived wallet file is kept.
    pub archive_keep: Duration,
}

impl WalletManagerConfig {
    /// The settings a worker uses, from its validated wallet settings and configuration (the
    /// mint, the treasury's secret).
    pub fn from_config(
        wallets: &crate::config::WalletsConfig,
        config: &crate::config::Config,
    ) -> Self {
        Self {
            layout: WalletLayout::new(wallets.volumes.clone(), wallets.shards),
            master_secret: wallets.master_secret_bytes(),
            treasury_seed: config
                .treasury
                .secret
                .as_ref()
                .map(|s| treasury_wallet_seed(&s.hex_bytes())),
            mint_url: config.mint.url.clone(),
            max_open: wallets.max_open,
            idle_close: wallets.idle_close,
            lease_ttl: wallets.lease_ttl,
            lease_wait: wallets.lease_wait,
            holder: Self::default_holder(),
            service_auth: None,
            health: crate::health::Health::new(),
            cleanup_interval: wallets.cleanup_interval,
            archive_dir: wallets.archive_dir.clone(),
            archive_keep: wallets.archive_keep,
        }
    }

    /// The seed of wallet `id`: the treasury's own, or derived from the master secret. The
    /// treasury wallet never falls back to the master secret: opened with another seed, its
    /// file would mix two derivations and could not be restored from the mint.
    pub fn seed_of(&self, id: &WalletId) -> Result<[u8; 64], WalletError> {
        if id.as_str() == TREASURY_WALLET {
            return self.treasury_seed.as_ref().map(|s| s.0).ok_or_else(|| {
                WalletError::Task(
                    "the treasury wallet needs TREASURY_SECRET, which this process lacks"
                        .to_owned(),
                )
            });
        }
        Ok(derive_seed(&self.master_secret, id))
    }

    /// A unique lease holder name for this process.
    pub fn default_holder() -> String {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
        format!(
            "{host}:{}:{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        )
    }
}
