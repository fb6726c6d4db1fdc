//! Where a wallet's file lives and which seed it gets.
//!
//! Files are `<volume>/<shard>/<wallet id>.db`. A wallet's shard is a hash of its id; a shard's
//! volume is chosen by rendezvous (highest-random-weight) hashing, so adding a volume moves only
//! the shards that the new volume wins and every other file stays where it is.

use std::fmt;
use std::path::{Path, PathBuf};

use cdk_common::bitcoin::hashes::{hmac, sha256, sha512, Hash, HashEngine};
use uuid::Uuid;

/// Identifies one wallet file: `session_<uuid>` for session wallets, or a platform wallet name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WalletId(String);

/// A wallet id that is not `[a-z0-9_-]{1,80}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("wallet ids are 1-80 characters of a-z, 0-9, _ and -")]
pub struct InvalidWalletId;

impl WalletId {
    /// The wallet of a trading session (SQL: `session_wallet_id(uuid)`, migration 4, agrees).
    pub fn session(id: Uuid) -> Self {
        Self(format!("session_{}", id.simple()))
    }

    /// A platform wallet (e.g. `platform_treasury`) or a parsed id.
    pub fn parse(id: &str) -> Result<Self, InvalidWalletId> {
        let ok = !id.is_empty()
            && id.len() <= 80
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(InvalidWalletId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WalletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shard and volume layout of wallet files.
#[derive(Debug, Clone)]
pub struct WalletLayout {
    volumes: Vec<PathBuf>,
    shards: u32,
}

impl WalletLayout {
    /// A layout over one or more volumes with `shards` shard directories.
    pub fn new(volumes: Vec<PathBuf>, shards: u32) -> Self {
        Self {
            volumes,
            shards: shards.max(1),
        }
    }

    /// The volumes, in configuration order.
    pub fn volumes(&self) -> &[PathBuf] {
        &self.volumes
    }

    /// The shard directory name of a wallet.
    pub fn shard_of(&self, id: &WalletId) -> String {
        let digest = sha256::Hash::hash(id.as_str().as_bytes()).to_byte_array();
        let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % self.shards;
        let width = (self.shards - 1).max(1).to_string().len();
        format!("{n:0width$}")
    }

    /// The volume that owns a shard (rendezvous hashing).
    pub fn volume_of_shard(&self, shard: &str) -> &Path {
        self.volumes
            .iter()
            .max_by_key(|v| {
                let mut engine = sha256::Hash::engine();
                engine.input(shard.as_bytes());
                engine.input(b"\0");
                engine.input(v.to_string_lossy().as_bytes());
                let d = sha256::Hash::from_engine(engine).to_byte_array();
                u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
            })
            .map(PathBuf::as_path)
            .unwrap_or_else(|| Path::new("."))
    }

    /// Where a new wallet's file goes.
    pub fn preferred_path(&self, id: &WalletId) -> PathBuf {
        let shard = self.shard_of(id);
        self.volume_of_shard(&shard)
            .join(&shard)
            .join(format!("{id}.db"))
    }

    /// Where the wallet's file is: the preferred place, or an existing file on another volume
    /// (left there after volumes were added, so nothing moves under a live wallet).
    pub fn locate(&self, id: &WalletId) -> PathBuf {
        let preferred = self.preferred_path(id);
        if preferred.exists() {
            return preferred;
        }
        let shard = self.shard_of(id);
        self.volumes
            .iter()
            .map(|v| v.join(&shard).join(format!("{id}.db")))
            .find(|p| p.exists())
            .unwrap_or(preferred)
    }
}

/// The platform treasury's wallet: platform fees are swept into it and withdrawals leave it.
/// Its seed derives from `TREASURY_SECRET` ([`treasury_wallet_seed`]), not from the master
/// secret, so whoever holds only `WALLET_MASTER_SECRET` (every worker with session wallets)
/// cannot restore it from the mint. `_v2` because [`LEGACY_TREASURY_WALLET`] had the other seed.
pub const TREASURY_WALLET: &str = "platform_treasury_v2";

/// The treasury wallet before its seed moved to `TREASURY_SECRET` (seed derived from the master
/// secret like a session's). A one-time sweep moves its balance into [`TREASURY_WALLET`]; nothing
/// else is paid into it any more.
pub const LEGACY_TREASURY_WALLET: &str = "platform_treasury";

/// The treasury wallet's seed: HMAC-SHA512(`TREASURY_SECRET`, `openpleb/treasury-wallet/v1`).
/// The label keeps it apart from the P2PK key the same secret is.
pub fn treasury_wallet_seed(treasury_secret: &[u8]) -> TreasurySeed {
    let mut engine = hmac::HmacEngine::<sha512::Hash>::new(treasury_secret);
    engine.input(b"openpleb/treasury-wallet/v1");
    TreasurySeed(hmac::Hmac::<sha512::Hash>::from_engine(engine).to_byte_array())
}

/// The treasury wallet's seed; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TreasurySeed(pub(super) [u8; 64]);

impl fmt::Debug for TreasurySeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TreasurySeed([REDACTED])")
    }
}

/// Derives a wallet's 64-byte seed from the master secret: HMAC-SHA512(master, label ‖ id).
///
/// Deterministic, so a lost wallet file can be rebuilt from the mint (NUT-09/13).
pub fn derive_seed(master_secret: &[u8], id: &WalletId) -> [u8; 64] {
    let mut engine = hmac::HmacEngine::<sha512::Hash>::new(master_secret);
    engine.input(b"openpleb/wallet-seed/v1/");
    engine.input(id.as_str().as_bytes());
    hmac::Hmac::<sha512::Hash>::from_engine(engine).to_byte_array()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn session_ids_are_valid_wallet_ids() {
        let id = WalletId::session(Uuid::nil());
        assert_eq!(id.as_str(), "session_00000000000000000000000000000000");
        assert!(WalletId::parse(id.as_str()).is_ok());
        assert!(WalletId::parse("../etc").is_err());
        assert!(WalletId::parse("").is_err());
    }

    #[test]
    fn path_is_volume_shard_file() {
        let layout = WalletLayout::new(vec![PathBuf::from("/v1")], 256);
        let id = WalletId::session(Uuid::nil());
        let path = layout.preferred_path(&id);
        assert!(path.starts_with("/v1"));
        assert_eq!(
            path.file_name().and_then(|f| f.to_str()),
            Some("session_00000000000000000000000000000000.db")
        );
        assert_eq!(layout.shard_of(&id).len(), 3);
    }

    #[test]
    fn adding_a_volume_moves_only_the_shards_it_wins() {
        let two = WalletLayout::new(vec!["/a".into(), "/b".into()], 256);
        let three = WalletLayout::new(vec!["/a".into(), "/b".into(), "/c".into()], 256);
        let mut moved = 0;
        let mut counts: HashMap<PathBuf, u32> = HashMap::new();
        for s in 0..256u32 {
            let shard = format!("{s:03}");
            let before = two.volume_of_shard(&shard).to_path_buf();
            let after = three.volume_of_shard(&shard).to_path_buf();
            *counts.entry(after.clone()).or_default() += 1;
            if before != after {
                moved += 1;
                assert_eq!(
                    after,
                    PathBuf::from("/c"),
                    "a shard moved between old volumes"
                );
            }
        }
        // Roughly a third moves to the new volume, and every volume gets a fair share.
        assert!((50..120).contains(&moved), "moved {moved}");
        assert!(counts.values().all(|&n| n > 50), "{counts:?}");
    }

    #[test]
    fn the_treasury_seed_is_not_the_master_derivation() {
        let id = WalletId::parse(TREASURY_WALLET).expect("id");
        let seed = treasury_wallet_seed(&[3; 32]);
        assert_eq!(seed, treasury_wallet_seed(&[3; 32]));
        assert_ne!(seed, treasury_wallet_seed(&[4; 32]));
        assert_ne!(seed.0, derive_seed(&[3; 32], &id));
        assert_eq!(format!("{seed:?}"), "TreasurySeed([REDACTED])");
    }

    #[test]
    fn seeds_are_deterministic_and_distinct() {
        let a = WalletId::session(Uuid::from_u128(1));
        let b = WalletId::session(Uuid::from_u128(2));
        assert_eq!(derive_seed(b"master", &a), derive_seed(b"master", &a));
        assert_ne!(derive_seed(b"master", &a), derive_seed(b"master", &b));
        assert_ne!(derive_seed(b"master", &a), derive_seed(b"other", &a));
    }
}
