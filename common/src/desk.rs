//! The mint requests a process makes without a wallet and without a wallet secret: what the
//! api needs of the mint for a trade.
//!
//! A deposit or bond invoice is a mint quote locked (NUT-20) to a public key derived from the
//! workers' extended public key at a random path ([`crate::keyring::lock`]); the api records
//! the path with the quote and the worker that mints derives the private key. A funding token
//! is checked as far as can be done without spending it or a blind auth token (its mint,
//! unit and keysets, its value against the deposit plus the mint's input fee) and sealed to
//! the workers' key ([`crate::keyring::seal`]). Whether its proofs are unspent is the
//! worker's receive to find out: every mint OpenPleb runs on blind-protects `POST
//! /v1/checkstate` (NUT-22, so BATs can be verified there), so a NUT-07 check here would cost
//! a service BAT per token and would still race the receive. Nothing here can sign for a
//! quote, open a sealed token or spend a proof.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdk::mint_url::MintUrl;
use cdk::nuts::nut23::MintQuoteBolt11Request;
use cdk::nuts::{CurrencyUnit, KeySetInfo, PublicKey, Token};
use cdk::Amount;
use cdk_common::mint_quote::MintQuoteRequest;
use tokio::sync::Mutex;

use crate::keyring::{lock, seal, KeyError, LockPath, PlatformKeys};
use crate::metrics::wallet_op;
use crate::wallet::service_auth::ServiceAuth;
use crate::wallet::WalletError;

/// Mint connections kept for requests without a wallet, taken in turn: cdk's HTTP client
/// sends one request at a time over its one connection, so a single client would make
/// concurrent `POST /offers` wait for each other.
const MINT_CLIENTS: usize = 8;

/// How long the mint's keyset list is reused: a token naming a keyset the list does not have
/// refreshes it at once, so a new keyset is never refused for long.
const KEYSETS_TTL: Duration = Duration::from_secs(60);

/// A quote made for a wallet without opening it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedQuote {
    /// The mint's quote id.
    pub quote_id: String,
    /// The bolt11 invoice to pay.
    pub request: String,
    /// Unix time after which the mint stops accepting payment.
    pub expiry: u64,
    /// Where under the workers' branch its NUT-20 key is.
    pub lock_path: LockPath,
}

/// What a funding token is, checked without spending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedToken {
    /// Its face value.
    pub value: u64,
    /// The mint's fee for receiving it.
    pub input_fee: u64,
    /// Its proofs' Ys.
    pub ys: Vec<PublicKey>,
}

/// Why a funding token is refused before it is recorded (each a 4xx for the maker).
#[derive(Debug, thiserror::Error)]
pub enum TokenRefusal {
    /// Not a Cashu token.
    #[error("not a Cashu token")]
    Malformed,
    /// From another mint.
    #[error("tokens must come from {0}")]
    WrongMint(String),
    /// Not in sats, or naming a keyset the mint does not have.
    #[error("the token's unit or keyset is not this mint's sat keyset")]
    WrongKeyset,
    /// The mint could not be asked.
    #[error(transparent)]
    Mint(#[from] WalletError),
}

struct Inner {
    url: MintUrl,
    keys: PlatformKeys,
    clients: Vec<Arc<dyn cdk::wallet::MintConnector + Send + Sync>>,
    next: AtomicUsize,
    service_auth: Option<ServiceAuth>,
    health: crate::health::Health,
    keysets: Mutex<Option<(Instant, Vec<KeySetInfo>)>>,
}

/// Cheap to clone; clones share connections and caches.
#[derive(Clone)]
pub struct MintDesk {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MintDesk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintDesk")
            .field("mint", &self.inner.url.to_string())
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

impl MintDesk {
    /// A desk for `mint_url` with the workers' public `keys`, BATs from `service_auth` where
    /// the mint protects what it calls, reporting an unreachable mint into `health`.
    pub fn new(
        mint_url: &str,
        keys: PlatformKeys,
        service_auth: Option<ServiceAuth>,
        health: crate::health::Health,
    ) -> Result<Self, WalletError> {
        let url = MintUrl::from_str(mint_url)
            .map_err(|e: cdk::mint_url::Error| WalletError::Task(e.to_string()))?;
        let auth = service_auth.as_ref().map(ServiceAuth::auth_wallet);
        let clients = (0..MINT_CLIENTS)
            .map(|_| {
                Arc::new(cdk::wallet::HttpClient::new(url.clone(), auth.clone()))
                    as Arc<dyn cdk::wallet::MintConnector + Send + Sync>
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                url,
                keys,
                clients,
                next: AtomicUsize::new(0),
                service_auth,
                health,
                keysets: Mutex::new(None),
            }),
        })
    }

    /// The workers' public keys this desk locks and seals to.
    pub fn keys(&self) -> &PlatformKeys {
        &self.inner.keys
    }

    /// The process' view of the mint and the database.
    pub fn health(&self) -> &crate::health::Health {
        &self.inner.health
    }

    fn client(&self) -> Arc<dyn cdk::wallet::MintConnector + Send + Sync> {
        let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
        self.inner.clients[n % self.inner.clients.len()].clone()
    }

    /// An operation that found the mint unreachable has its watcher look again now.
    fn noticed(&self, e: &WalletError) {
        if e.kind() == crate::wallet::WalletErrorKind::MintUnavailable {
            self.inner.health.suspect(crate::health::Dependency::Mint);
        }
    }

    async fn with_bats(&self) -> Result<(), WalletError> {
        if let Some(auth) = &self.inner.service_auth {
            auth.ensure_supply()
                .await
                .map_err(WalletError::from)
                .inspect_err(|e| self.noticed(e))?;
        }
        Ok(())
    }

    /// A bolt11 mint quote for `sats`, locked to the workers' key at a fresh random path: one
    /// request to the mint.
    pub async fn create_locked_quote(&self, sats: u64) -> Result<LockedQuote, WalletError> {
        let path = LockPath::random();
        let pubkey = lock::public_at(&self.inner.keys.quote_locks, path)
            .map_err(|e| WalletError::Task(format!("quote lock: {e}")))?;
        self.with_bats().await?;
        let request = MintQuoteRequest::Bolt11(MintQuoteBolt11Request {
            amount: Amount::from(sats),
            unit: CurrencyUnit::Sat,
            description: None,
            pubkey: Some(pubkey),
        });
        let client = self.client();
        let response = wallet_op("create_locked_quote", async move {
            client
                .post_mint_quote(request)
                .await
                .map_err(WalletError::from)
        })
        .await
        .inspect_err(|e| self.noticed(e))?;
        Ok(LockedQuote {
            quote_id: response.quote().to_string(),
            request: response.request().to_string(),
            expiry: response.expiry().unwrap_or(0),
            lock_path: path,
        })
    }

    /// The mint's keysets, from a cache at most [`KEYSETS_TTL`] old unless `fresh`.
    async fn keysets(&self, fresh: bool) -> Result<Vec<KeySetInfo>, WalletError> {
        let mut cached = self.inner.keysets.lock().await;
        if let Some((at, sets)) = cached.as_ref() {
            if !fresh && at.elapsed() < KEYSETS_TTL {
                return Ok(sets.clone());
            }
        }
        let client = self.client();
        let sets = wallet_op("get_keysets", async move {
            client.get_mint_keysets().await.map_err(WalletError::from)
        })
        .await
        .inspect_err(|e| self.noticed(e))?
        .keysets;
        *cached = Some((Instant::now(), sets.clone()));
        Ok(sets)
    }

    /// Checks `token` as far as can be done without spending it: this mint's, in sats, of
    /// keysets the mint has. Its value and the mint's fee for receiving it are returned for
    /// the caller to hold against what it must cover.
    pub async fn check_token(&self, token: &Token) -> Result<CheckedToken, TokenRefusal> {
        let mint = self.inner.url.to_string();
        let same_mint = token
            .mint_url()
            .map(|u| u.to_string().trim_end_matches('/') == mint.trim_end_matches('/'))
            .unwrap_or(false);
        if !same_mint {
            return Err(TokenRefusal::WrongMint(
                mint.trim_end_matches('/').to_owned(),
            ));
        }
        if token.unit().is_some_and(|u| u != CurrencyUnit::Sat) {
            return Err(TokenRefusal::WrongKeyset);
        }
        let mut sets = self.keysets(false).await?;
        let proofs = match token.proofs(&sets) {
            Ok(p) => p,
            Err(_) => {
                sets = self.keysets(true).await?;
                token.proofs(&sets).map_err(|_| TokenRefusal::WrongKeyset)?
            }
        };
        if proofs.is_empty() {
            return Err(TokenRefusal::Malformed);
        }
        let mut fee_ppk = 0u64;
        for p in &proofs {
            let set = sets
                .iter()
                .find(|s| s.id == p.keyset_id && s.unit == CurrencyUnit::Sat)
                .ok_or(TokenRefusal::WrongKeyset)?;
            fee_ppk = fee_ppk.saturating_add(set.input_fee_ppk);
        }
        let value = proofs
            .iter()
            .try_fold(0u64, |sum, p| sum.checked_add(u64::from(p.amount)))
            .ok_or(TokenRefusal::Malformed)?;
        let ys = proofs
            .iter()
            .map(|p| p.y())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TokenRefusal::Malformed)?;
        Ok(CheckedToken {
            value,
            input_fee: fee_ppk.div_ceil(1000),
            ys,
        })
    }

    /// `token` sealed to the workers' key, bound to `context` (the funding intent's id).
    pub fn seal(&self, context: &[u8], token: &str) -> Result<Vec<u8>, KeyError> {
        seal::seal(&self.inner.keys.token_seal, context, token.as_bytes())
    }
}
