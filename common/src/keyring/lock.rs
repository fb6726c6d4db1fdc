//! NUT-20 quote locks the api can make and only workers can sign for: non-hardened BIP-32
//! children of one hardened branch.
//!
//! The workers hold the branch's extended private key (`m/0'` of a master derived from
//! `WALLET_MASTER_SECRET`); the api holds its extended public key (`QUOTE_LOCK_XPUB`) and
//! derives each quote's public key at a random path `a/b` (two non-hardened indices, 62
//! random bits), recorded with the quote. The worker that mints derives the private key at
//! the same path.
//!
//! The caveat of non-hardened derivation: the extended public key and any one child's
//! private key together give the branch's private key, hence every quote key. A quote key is
//! kept in the session wallet's file that minted it, so whoever holds both the api's
//! configuration and a wallet volume can sign for quotes not yet minted (race a worker to the
//! sats of a paid invoice). It gives nothing else: the branch is hardened, so the master, the
//! sealing key and the wallets' seeds (all derived apart from it) stay out of reach.

use std::fmt;
use std::str::FromStr;

use cdk::nuts::{PublicKey, SecretKey};
use cdk_common::bitcoin::bip32::{ChildNumber, Xpriv, Xpub};
use cdk_common::bitcoin::secp256k1::Secp256k1;
use cdk_common::bitcoin::NetworkKind;

use super::KeyError;

/// Where under the branch a quote's key is: two non-hardened indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPath {
    a: u32,
    b: u32,
}

/// Largest non-hardened index + 1.
const HARDENED: u32 = 1 << 31;

impl LockPath {
    /// A fresh random path.
    pub fn random() -> Self {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let word =
            |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        Self {
            a: word(0) % HARDENED,
            b: word(4) % HARDENED,
        }
    }

    fn children(self) -> Result<[ChildNumber; 2], KeyError> {
        let child =
            |i| ChildNumber::from_normal_idx(i).map_err(|e| KeyError::Derive(e.to_string()));
        Ok([child(self.a)?, child(self.b)?])
    }
}

impl fmt::Display for LockPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.a, self.b)
    }
}

impl FromStr for LockPath {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || KeyError::Derive(format!("not a lock path: {s}"));
        let (a, b) = s.split_once('/').ok_or_else(bad)?;
        let index = |t: &str| {
            t.parse::<u32>()
                .ok()
                .filter(|i| *i < HARDENED)
                .ok_or_else(bad)
        };
        Ok(Self {
            a: index(a)?,
            b: index(b)?,
        })
    }
}

/// The workers' branch from a 64-byte seed: `m/0'`.
pub(super) fn branch(seed: &[u8]) -> Result<Xpriv, KeyError> {
    let secp = Secp256k1::new();
    let master =
        Xpriv::new_master(NetworkKind::Main, seed).map_err(|e| KeyError::Derive(e.to_string()))?;
    let hardened =
        ChildNumber::from_hardened_idx(0).map_err(|e| KeyError::Derive(e.to_string()))?;
    master
        .derive_priv(&secp, &[hardened])
        .map_err(|e| KeyError::Derive(e.to_string()))
}

/// The branch's extended public key, as the api is given it.
pub(super) fn public_branch(branch: &Xpriv) -> Xpub {
    Xpub::from_priv(&Secp256k1::new(), branch)
}

/// The public key of the quote lock at `path` (what the api sends the mint).
pub fn public_at(branch: &Xpub, path: LockPath) -> Result<PublicKey, KeyError> {
    let child = branch
        .derive_pub(&Secp256k1::verification_only(), &path.children()?)
        .map_err(|e| KeyError::Derive(e.to_string()))?;
    Ok(PublicKey::from(child.public_key))
}

/// The secret key of the quote lock at `path` (what the minting worker signs with).
pub(super) fn private_at(branch: &Xpriv, path: LockPath) -> Result<SecretKey, KeyError> {
    let child = branch
        .derive_priv(&Secp256k1::new(), &path.children()?)
        .map_err(|e| KeyError::Derive(e.to_string()))?;
    Ok(SecretKey::from(child.private_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_and_the_worker_derive_the_same_lock() {
        let branch = branch(&[9; 64]).expect("branch");
        let xpub = public_branch(&branch);
        for _ in 0..20 {
            let path = LockPath::random();
            let public = public_at(&xpub, path).expect("public");
            let secret = private_at(&branch, path).expect("private");
            assert_eq!(secret.public_key(), public);
        }
    }

    #[test]
    fn paths_round_trip_and_refuse_hardened_indices() {
        let p = LockPath::random();
        assert_eq!(p.to_string().parse::<LockPath>(), Ok(p));
        assert!("2147483648/1".parse::<LockPath>().is_err());
        assert!("1".parse::<LockPath>().is_err());
        assert!("a/1".parse::<LockPath>().is_err());
        assert_eq!(
            "0/2147483647".parse::<LockPath>().map(|p| p.to_string()),
            Ok("0/2147483647".to_owned())
        );
    }

    #[test]
    fn different_paths_give_different_keys() {
        let xpub = public_branch(&branch(&[9; 64]).expect("branch"));
        let a = public_at(&xpub, "1/2".parse().expect("path")).expect("a");
        let b = public_at(&xpub, "2/1".parse().expect("path")).expect("b");
        assert_ne!(a, b);
    }
}
