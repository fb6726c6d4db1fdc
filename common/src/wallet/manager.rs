//! The per-session wallet manager: opens, caches, operates on and deletes wallet files.
//!
//! - One SQLite file per wallet ([`WalletLayout`]), seed derived from the master secret.
//! - At most one process has a file open: opening takes a lease in PostgreSQL
//!   ([`crate::db::leases`]); a background task renews the leases of open wallets.
//! - At most `max_open` wallets stay open (each costs a connection thread and a few file
//!   descriptors); beyond that, idle ones are closed least-recently-used first. A wallet idle
//!   for `idle_close` is closed and its lease given back, so a job for the same session on
//!   another worker does not wait long for it.
//! - Operations on one wallet are serialised, and each runs in its own task that owns the
//!   wallet's lock, so a caller that goes away (a dropped HTTP request) cannot cut a cdk saga
//!   in half or let a second operation start beside it.
//! - Every open runs `recover_incomplete_sagas` first, and [`WalletManager::reconcile`] runs it
//!   again on demand, then settles proofs no operation owns against the mint (NUT-07).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use cdk::amount::SplitTarget;
use cdk::mint_url::MintUrl;
use cdk::nuts::{
    CurrencyUnit, MintQuoteState, PaymentMethod, SecretKey, SpendingConditions, State,
};
use cdk::wallet::types::OperationData;
use cdk::wallet::{ReceiveOptions, SendOptions, Wallet, WalletBuilder};
use cdk::Amount;
use lru::LruCache;
use sqlx::PgPool;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::layout::{derive_seed, WalletId, WalletLayout};
use super::store::{OpenConnections, SqlxSqliteConfig, WalletSqlxDatabase};
use crate::db::leases;
use crate::domain::keys::XOnlyKey;

/// What can go wrong with a wallet operation.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Another process holds the wallet's lease.
    #[error("wallet {0} is open in another process")]
    Busy(WalletId),
    /// Delete was refused because the wallet still holds (or awaits) sats.
    #[error("wallet {id} still holds {sats} sats")]
    NotEmpty {
        /// The wallet.
        id: WalletId,
        /// Unspent, pending and reserved sats together.
        sats: u64,
    },
    /// The wallet's file does not exist.
    #[error("wallet {0} does not exist")]
    NotFound(WalletId),
    /// The mint or the wallet refused the operation.
    #[error(transparent)]
    Cdk(#[from] cdk::Error),
    /// The wallet's SQLite store failed.
    #[error("wallet store: {0}")]
    Store(#[from] cdk_common::database::Error),
    /// PostgreSQL (leases) failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Files could not be created or removed.
    #[error("wallet file: {0}")]
    Io(#[from] std::io::Error),
    /// Could not get blind auth tokens for a protected mint.
    #[error(transparent)]
    ServiceAuth(#[from] super::service_auth::ServiceAuthError),
    /// The operation's task panicked or was cancelled at shutdown.
    #[error("wallet task failed: {0}")]
    Task(String),
    /// The record step of a send found its row changed by another run: that run owns the
    /// send, so this one reserved nothing and moved nothing.
    #[error("send superseded by another run")]
    Superseded,
}

/// Settings of a [`WalletManager`].
#[derive(Debug, Clone)]
pub struct WalletManagerConfig {
    /// Volumes and shards.
    pub layout: WalletLayout,
    /// Master secret the wallet seeds derive from.
    pub master_secret: Vec<u8>,
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
    pub service_auth: Option<super::service_auth::ServiceAuth>,
}

impl WalletManagerConfig {
    /// The settings the binaries use, from the validated configuration.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            layout: WalletLayout::new(config.wallets.volumes.clone(), config.wallets.shards),
            master_secret: config.wallets.master_secret_bytes(),
            mint_url: config.mint.url.clone(),
            max_open: config.wallets.max_open,
            idle_close: config.wallets.idle_close,
            lease_ttl: config.wallets.lease_ttl,
            lease_wait: config.wallets.lease_wait,
            holder: Self::default_holder(),
            service_auth: None,
        }
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

/// A quote created for a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedQuote {
    /// The mint's quote id.
    pub quote_id: String,
    /// The bolt11 invoice to pay.
    pub request: String,
    /// Unix time after which the mint stops accepting payment.
    pub expiry: u64,
}

/// The result of trying to mint a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MintOutcome {
    /// Not paid yet.
    Unpaid,
    /// Minted now, or earlier (a repeat after a crash): the sats the quote issued.
    Issued(u64),
}

/// A token sent out of a wallet. `amount + fee` is what left the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentToken {
    /// The encoded token (a bearer secret unless locked; never log it).
    pub token: String,
    /// Sats the token is worth.
    pub amount: u64,
    /// What was to be sent and is not in the token: the mint's fee, plus the sat or two a
    /// fee fit could not place (those stay in the wallet; see [`prepare_within`]).
    pub fee: u64,
}

/// Balances of one wallet, in sats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balances {
    /// Spendable.
    pub unspent: u64,
    /// In a swap or melt the mint has not answered yet.
    pub pending: u64,
    /// Reserved by an unfinished operation.
    pub reserved: u64,
    /// In tokens this wallet sent that their recipients have not claimed yet (as far as the
    /// wallet knows; reconciliation asks the mint). No longer the wallet's own.
    pub sent: u64,
}

impl Balances {
    /// Everything the wallet holds or may still get back (not what it sent).
    pub fn total(&self) -> u64 {
        self.unspent + self.pending + self.reserved
    }
}

/// What `delete` may assume about the wallet's remaining funds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Funds {
    /// Refuse unless the wallet is empty.
    MustBeEmpty,
    /// The caller has recorded where the remaining funds went (e.g. a payout row); delete anyway.
    AccountedFor(String),
}

/// What reconciling one wallet with the mint found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reconciled {
    /// Balances before.
    pub before: Balances,
    /// Balances after.
    pub after: Balances,
    /// Interrupted operations that cdk's recovery took forward or found complete.
    pub recovered: usize,
    /// Interrupted operations rolled back (their proofs made spendable again).
    pub compensated: usize,
    /// Operations recovery could not settle now (the mint unreachable, say); tried next time.
    pub unsettled: usize,
    /// Sent tokens not yet claimed by their recipients (their send operation stays open).
    pub open_sends: usize,
    /// Sats of proofs no operation owned that the mint reports spent: dropped from the wallet.
    pub orphans_spent: u64,
    /// Sats of reserved proofs no operation owned that the mint reports unspent: made
    /// spendable again.
    pub orphans_returned: u64,
    /// Sats of an incoming token whose receive was cut before it reached the mint (pending
    /// proofs with no operation): dropped, the token is still its sender's.
    pub orphans_abandoned: u64,
    /// Sats of proofs no operation owns that could not be settled: pending at the mint, or
    /// reserved but locked to someone else's key. Need a person if they persist.
    pub orphans_left: u64,
}

impl Reconciled {
    /// Whether anything was changed or needs a person's attention.
    pub fn noteworthy(&self) -> bool {
        self.compensated + self.unsettled > 0
            || self.orphans_spent + self.orphans_returned + self.orphans_abandoned > 0
            || self.orphans_left > 0
            || self.before != self.after
    }
}

/// How an operation opens its wallet.
#[derive(Debug, Clone, Copy)]
struct Open {
    /// Create the file if it does not exist.
    create: bool,
    /// How long to wait for another process' lease.
    lease_wait: Duration,
    /// Run saga recovery on open (the reconciliation runs it itself, to see what it finds).
    recover: bool,
    /// Close the wallet again before giving up its lock if this operation opened it, or if the
    /// operation failed (the reconciliation: it opens without recovery, and should not keep a
    /// lease another process may be waiting for).
    close_after: bool,
}

struct OpenWallet {
    wallet: Wallet,
    connections: Arc<OpenConnections>,
}

/// One cache entry; the mutex serialises opening, operations and closing of one wallet.
#[derive(Default)]
struct Slot {
    state: Arc<Mutex<Option<OpenWallet>>>,
    /// Set when renewal found the lease gone; the next operation must take it again.
    lease_lost: AtomicBool,
    /// When the last operation ended, in milliseconds since the manager started.
    last_used_ms: AtomicU64,
}

struct Inner {
    cfg: WalletManagerConfig,
    started: Instant,
    mint_url: MintUrl,
    pool: PgPool,
    /// Slots of every wallet touched recently; the LRU order decides what closes first.
    slots: StdMutex<LruCache<WalletId, Arc<Slot>>>,
}

/// Cheap to clone; all clones share one cache.
#[derive(Clone)]
pub struct WalletManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WalletManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletManager")
            .field("holder", &self.inner.cfg.holder)
            .field("open", &self.open_count())
            .finish()
    }
}

impl WalletManager {
    /// A manager; call [`WalletManager::spawn_maintenance`] to renew leases and close idle
    /// wallets.
    pub fn new(cfg: WalletManagerConfig, pool: PgPool) -> Result<Self, WalletError> {
        let mint_url: MintUrl = cfg
            .mint_url
            .parse()
            .map_err(|e: cdk::mint_url::Error| WalletError::Task(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                started: Instant::now(),
                mint_url,
                pool,
                slots: StdMutex::new(LruCache::unbounded()),
            }),
        })
    }

    /// Until the manager is dropped: closes wallets idle for `idle_close` and renews the leases
    /// of open wallets every third of their lifetime.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let renew_every = self.inner.cfg.lease_ttl / 3;
        let period = (self.inner.cfg.idle_close / 2)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_renewal = Instant::now();
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let manager = WalletManager { inner };
                manager.close_idle().await;
                if last_renewal.elapsed() >= renew_every {
                    last_renewal = Instant::now();
                    if let Err(e) = manager.renew_leases().await {
                        tracing::warn!(error = %e, "wallet lease renewal failed");
                    }
                }
            }
        })
    }

    /// Number of wallets open in this process.
    pub fn open_count(&self) -> usize {
        self.slots_snapshot()
            .iter()
            .filter(|(_, slot)| slot.state.try_lock().map(|s| s.is_some()).unwrap_or(true))
            .count()
    }

    /// Whether a wallet file exists.
    pub fn exists(&self, id: &WalletId) -> bool {
        self.inner.cfg.layout.locate(id).exists()
    }

    /// The file of a wallet.
    pub fn path_of(&self, id: &WalletId) -> PathBuf {
        self.inner.cfg.layout.locate(id)
    }

    /// Creates a bolt11 mint quote for `sats` in the wallet.
    pub async fn create_mint_quote(
        &self,
        id: &WalletId,
        sats: u64,
    ) -> Result<CreatedQuote, WalletError> {
        self.run(id, true, move |w| async move {
            let q = w
                .mint_quote(PaymentMethod::BOLT11, Some(Amount::from(sats)), None, None)
                .await?;
            Ok(CreatedQuote {
                quote_id: q.id,
                request: q.request,
                expiry: q.expiry,
            })
        })
        .await
    }

    /// Asks the mint about a quote and mints it if paid. Safe to repeat: a quote minted before
    /// reports [`MintOutcome::Issued`] with what it issued.
    pub async fn mint_quote(
        &self,
        id: &WalletId,
        quote_id: &str,
    ) -> Result<MintOutcome, WalletError> {
        let quote_id = quote_id.to_owned();
        self.run(id, false, move |w| async move {
            let q = w.check_mint_quote_status(&quote_id).await?;
            match q.state {
                MintQuoteState::Unpaid => Ok(MintOutcome::Unpaid),
                MintQuoteState::Issued => Ok(MintOutcome::Issued(q.amount_issued.into())),
                MintQuoteState::Paid => {
                    let proofs = w.mint(&quote_id, SplitTarget::default(), None).await?;
                    let minted = proofs.iter().map(|p| u64::from(p.amount)).sum();
                    Ok(MintOutcome::Issued(minted))
                }
            }
        })
        .await
    }

    /// Receives a token into the wallet, signing P2PK-locked inputs with `keys`; returns sats
    /// received after mint fees.
    pub async fn receive(
        &self,
        id: &WalletId,
        token: &str,
        keys: Vec<SecretKey>,
    ) -> Result<u64, WalletError> {
        let token = token.to_owned();
        self.run(id, true, move |w| async move {
            let opts = ReceiveOptions {
                p2pk_signing_keys: keys,
                ..Default::default()
            };
            Ok(w.receive(&token, opts).await?.into())
        })
        .await
    }

    /// Sends `sats` out of the wallet as a token, P2PK-locked to `lock` when given. Mint fees
    /// come out of `sats` (see [`prepare_within`]): the token is worth `sats` minus the fee.
    pub async fn send(
        &self,
        id: &WalletId,
        sats: u64,
        lock: Option<XOnlyKey>,
    ) -> Result<SentToken, WalletError> {
        self.run(id, false, move |w| async move {
            let (prepared, amount) = prepare_within(&w, sats, lock).await?;
            let token = prepared.confirm(None).await?;
            Ok(SentToken {
                token: token.to_string(),
                amount,
                fee: sats - amount,
            })
        })
        .await
    }

    /// Sends a payout whose row is already recorded: `record` persists the send's operation id
    /// after the proofs are reserved and before anything leaves the wallet, so a retry can find
    /// the token again with [`WalletManager::sent_token`] instead of paying twice.
    pub async fn send_recorded(
        &self,
        id: &WalletId,
        sats: u64,
        lock: Option<XOnlyKey>,
        record: RecordOperation,
    ) -> Result<SentToken, WalletError> {
        self.run(id, false, move |w| async move {
            let (prepared, amount) = prepare_within(&w, sats, lock).await?;
            let op = prepared.operation_id().to_string();
            if let Err(e) = record(op.clone()).await {
                prepared.cancel().await?;
                return Err(e);
            }
            let token = prepared.confirm(None).await?.to_string();
            // Belt and braces: the saga holds the token too, until recovery deletes it.
            w.localstore
                .kv_write(KV_NAMESPACE, KV_SENT, &op, token.as_bytes())
                .await?;
            Ok(SentToken {
                token,
                amount,
                fee: sats - amount,
            })
        })
        .await
    }

    /// The token of an earlier send by its operation id, if that send got as far as creating
    /// it (from the send saga, or from what was stashed before recovery removed the saga).
    pub async fn sent_token(
        &self,
        id: &WalletId,
        operation_id: &str,
    ) -> Result<Option<String>, WalletError> {
        let op = operation_id.to_owned();
        self.run(id, false, move |w| async move {
            if let Ok(uuid) = uuid::Uuid::parse_str(&op) {
                if let Some(saga) = w.localstore.get_saga(&uuid).await? {
                    if let OperationData::Send(d) = saga.data {
                        if let Some(t) = d.token {
                            return Ok(Some(t));
                        }
                    }
                }
            }
            let stashed = w.localstore.kv_read(KV_NAMESPACE, KV_SENT, &op).await?;
            Ok(stashed.and_then(|b| String::from_utf8(b).ok()))
        })
        .await
    }

    /// Reconciles the wallet with the mint: finishes or rolls back interrupted operations
    /// (cdk's saga recovery, after stashing the tokens of unfinished sends), then asks the mint
    /// (NUT-07) about reserved, pending and sent proofs that no live operation owns: spent ones
    /// are dropped, unspent reserved ones become spendable, unspent pending ones (a receive cut
    /// before it reached the mint) are dropped, unclaimed sent ones stay.
    ///
    /// Does not wait for another process' lease ([`WalletError::Busy`] at once): a wallet in use
    /// elsewhere is reconciled on that process' next open anyway. A wallet this call opened is
    /// closed again before its lock is given up, so its lease goes straight back and nothing
    /// uses it in between without recovery.
    pub async fn reconcile(&self, id: &WalletId) -> Result<Reconciled, WalletError> {
        self.run_with(
            id,
            Open {
                create: false,
                lease_wait: Duration::ZERO,
                recover: false,
                close_after: true,
            },
            |w| async move {
                let before = balances(&w).await?;
                stash_sent_tokens(&w).await?;
                let report = w.recover_incomplete_sagas().await?;
                let orphans = settle_orphan_proofs(&w).await?;
                let open_sends = w
                    .localstore
                    .get_incomplete_sagas()
                    .await?
                    .iter()
                    .filter(|s| matches!(s.data, OperationData::Send(_)))
                    .count();
                Ok(Reconciled {
                    before,
                    after: balances(&w).await?,
                    recovered: report.recovered,
                    compensated: report.compensated,
                    unsettled: report.skipped + report.failed,
                    open_sends,
                    orphans_spent: orphans.spent,
                    orphans_returned: orphans.returned,
                    orphans_abandoned: orphans.abandoned,
                    orphans_left: orphans.left,
                })
            },
        )
        .await
    }

    /// The mint's input fee for spending every unspent proof the wallet holds: the most any
    /// send out of it can cost, and what makes a balance at or below it dust.
    pub async fn fee_to_spend_all(&self, id: &WalletId) -> Result<u64, WalletError> {
        self.run(id, false, |w| async move {
            let unspent = w.get_unspent_proofs().await?;
            Ok(w.get_proofs_fee(&unspent).await?.total.into())
        })
        .await
    }

    /// The wallet's balances.
    pub async fn balance(&self, id: &WalletId) -> Result<Balances, WalletError> {
        self.run(id, false, |w| async move { balances(&w).await })
            .await
    }

    /// Closes the wallet if open and gives its lease back.
    pub async fn close(&self, id: &WalletId) -> Result<(), WalletError> {
        let slot = self.slot(id);
        let mut state = slot.state.clone().lock_owned().await;
        self.close_locked(id, &mut state).await
    }

    /// Closes every open wallet (at shutdown).
    pub async fn close_all(&self) {
        for (id, _) in self.slots_snapshot() {
            if let Err(e) = self.close(&id).await {
                tracing::warn!(wallet = %id, error = %e, "closing wallet failed");
            }
        }
    }

    /// Deletes a wallet's file. Refuses while it holds funds unless `funds` says where they went.
    pub async fn delete(&self, id: &WalletId, funds: Funds) -> Result<(), WalletError> {
        let path = self.inner.cfg.layout.locate(id);
        if !path.exists() {
            return Ok(());
        }
        let slot = self.slot(id);
        let mut state = slot.state.clone().lock_owned().await;
        self.ensure_open(id, &slot, &mut state, self.open(false))
            .await?;
        let wallet = state
            .as_ref()
            .map(|o| o.wallet.clone())
            .ok_or_else(|| WalletError::Task("wallet not open".to_owned()))?;
        let held = balances(&wallet).await?.total();
        drop(wallet);
        match (&funds, held) {
            (_, 0) => {}
            (Funds::AccountedFor(reason), sats) => {
                tracing::info!(wallet = %id, sats, reason = %reason, "deleting wallet with accounted-for funds");
            }
            (Funds::MustBeEmpty, sats) => {
                return Err(WalletError::NotEmpty {
                    id: id.clone(),
                    sats,
                })
            }
        }
        self.close_locked(id, &mut state).await?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.inner
            .slots
            .lock()
            .map_err(|_| WalletError::Task("slot cache poisoned".to_owned()))?
            .pop(id);
        Ok(())
    }

    /// Runs `op` on the open wallet in its own task, holding the wallet's lock throughout.
    async fn run<T, F, Fut>(&self, id: &WalletId, create: bool, op: F) -> Result<T, WalletError>
    where
        T: Send + 'static,
        F: FnOnce(Wallet) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, WalletError>> + Send + 'static,
    {
        self.run_with(id, self.open(create), op).await
    }

    /// The usual way to open: wait for the lease as configured, recover on open.
    fn open(&self, create: bool) -> Open {
        Open {
            create,
            lease_wait: self.inner.cfg.lease_wait,
            recover: true,
            close_after: false,
        }
    }

    /// [`WalletManager::run`], opening the wallet as `open` says.
    async fn run_with<T, F, Fut>(&self, id: &WalletId, open: Open, op: F) -> Result<T, WalletError>
    where
        T: Send + 'static,
        F: FnOnce(Wallet) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, WalletError>> + Send + 'static,
    {
        let slot = self.slot(id);
        let manager = self.clone();
        let id = id.clone();
        let task = tokio::spawn(async move {
            let mut state = slot.state.clone().lock_owned().await;
            let was_open = state.is_some();
            let result = async {
                manager.ensure_open(&id, &slot, &mut state, open).await?;
                if let Some(auth) = &manager.inner.cfg.service_auth {
                    auth.ensure_supply().await?;
                }
                let wallet = state
                    .as_ref()
                    .map(|o| o.wallet.clone())
                    .ok_or_else(|| WalletError::Task("wallet not open".to_owned()))?;
                op(wallet).await
            }
            .await;
            if open.close_after && (!was_open || result.is_err()) {
                manager.close_locked(&id, &mut state).await?;
            }
            slot.last_used_ms.store(manager.now_ms(), Ordering::SeqCst);
            drop(state);
            manager.evict_idle();
            result
        });
        task.await.map_err(|e| WalletError::Task(e.to_string()))?
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Closes wallets nobody used for `idle_close`.
    async fn close_idle(&self) {
        let idle_ms = u64::try_from(self.inner.cfg.idle_close.as_millis()).unwrap_or(u64::MAX);
        let now = self.now_ms();
        for (id, slot) in self.slots_snapshot() {
            if now.saturating_sub(slot.last_used_ms.load(Ordering::SeqCst)) < idle_ms {
                continue;
            }
            let Ok(mut state) = slot.state.clone().try_lock_owned() else {
                continue;
            };
            if state.is_none() {
                continue;
            }
            if let Err(e) = self.close_locked(&id, &mut state).await {
                tracing::warn!(wallet = %id, error = %e, "closing idle wallet failed");
            }
        }
    }

    fn slot(&self, id: &WalletId) -> Arc<Slot> {
        let mut slots = match self.inner.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots
            .get_or_insert(id.clone(), || Arc::new(Slot::default()))
            .clone()
    }

    fn slots_snapshot(&self) -> Vec<(WalletId, Arc<Slot>)> {
        match self.inner.slots.lock() {
            Ok(s) => s.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Opens the wallet under `state` if it is closed or its lease lapsed.
    async fn ensure_open(
        &self,
        id: &WalletId,
        slot: &Slot,
        state: &mut OwnedMutexGuard<Option<OpenWallet>>,
        open: Open,
    ) -> Result<(), WalletError> {
        if state.is_some() && !slot.lease_lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.take_lease(id, open.lease_wait).await?;
        slot.lease_lost.store(false, Ordering::SeqCst);
        if state.is_some() {
            return Ok(());
        }
        let path = self.inner.cfg.layout.locate(id);
        if !path.exists() {
            if !open.create {
                leases::release(&self.inner.pool, id.as_str(), &self.inner.cfg.holder).await?;
                return Err(WalletError::NotFound(id.clone()));
            }
            if let Some(dir) = path.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
        }
        let config = SqlxSqliteConfig::file(&path);
        let connections = config.open_connections();
        let db = Arc::new(WalletSqlxDatabase::new(config).await?);
        let mut builder = WalletBuilder::new()
            .mint_url(self.inner.mint_url.clone())
            .unit(CurrencyUnit::Sat)
            .localstore(db)
            .seed(derive_seed(&self.inner.cfg.master_secret, id))
            .without_rate_limiting();
        if let Some(auth) = &self.inner.cfg.service_auth {
            // Shared, so BATs live in one process-wide store rather than in session files.
            builder = builder.auth_wallet(auth.auth_wallet());
            auth.ensure_supply().await?;
        }
        let wallet = builder.build()?;
        if open.recover {
            stash_sent_tokens(&wallet).await?;
            let report = wallet.recover_incomplete_sagas().await?;
            if report.recovered + report.compensated + report.failed > 0 {
                tracing::info!(wallet = %id, recovered = report.recovered, compensated = report.compensated,
                    failed = report.failed, "recovered interrupted wallet operations");
            }
        }
        **state = Some(OpenWallet {
            wallet,
            connections,
        });
        Ok(())
    }

    async fn take_lease(&self, id: &WalletId, wait: Duration) -> Result<(), WalletError> {
        let cfg = &self.inner.cfg;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if leases::acquire(&self.inner.pool, id.as_str(), &cfg.holder, cfg.lease_ttl).await? {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(WalletError::Busy(id.clone()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn close_locked(
        &self,
        id: &WalletId,
        state: &mut OwnedMutexGuard<Option<OpenWallet>>,
    ) -> Result<(), WalletError> {
        if let Some(open) = state.take() {
            let OpenWallet {
                wallet,
                connections,
            } = open;
            drop(wallet);
            if !connections.wait_closed(Duration::from_secs(10)).await {
                tracing::warn!(wallet = %id, "wallet connection did not close in time");
            }
            leases::release(&self.inner.pool, id.as_str(), &self.inner.cfg.holder).await?;
        }
        Ok(())
    }

    /// Closes least-recently-used idle wallets while more than `max_open` are open.
    fn evict_idle(&self) {
        let max_open = self.inner.cfg.max_open;
        let victims: Vec<(WalletId, OwnedMutexGuard<Option<OpenWallet>>)> = {
            let Ok(mut slots) = self.inner.slots.lock() else {
                return;
            };
            let mut open = 0usize;
            let mut idle_open = Vec::new();
            let mut idle_closed = Vec::new();
            // Most recent first, so the tail of `idle_open` is the least recently used.
            for (id, slot) in slots.iter() {
                match slot.state.clone().try_lock_owned() {
                    Ok(guard) if guard.is_some() => {
                        open += 1;
                        if Arc::strong_count(slot) == 1 {
                            idle_open.push((id.clone(), guard));
                        }
                    }
                    Ok(_) if Arc::strong_count(slot) == 1 => idle_closed.push(id.clone()),
                    Ok(_) => {}
                    Err(_) => open += 1,
                }
            }
            for id in idle_closed {
                slots.pop(&id);
            }
            let excess = open.saturating_sub(max_open);
            idle_open.into_iter().rev().take(excess).collect()
        };
        for (id, mut guard) in victims {
            let manager = self.clone();
            tokio::spawn(async move {
                if let Err(e) = manager.close_locked(&id, &mut guard).await {
                    tracing::warn!(wallet = %id, error = %e, "closing idle wallet failed");
                }
            });
        }
    }

    async fn renew_leases(&self) -> Result<(), WalletError> {
        let open: HashMap<String, Arc<Slot>> = self
            .slots_snapshot()
            .into_iter()
            .filter(|(_, s)| s.state.try_lock().map(|g| g.is_some()).unwrap_or(true))
            .map(|(id, s)| (id.as_str().to_owned(), s))
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = open.keys().cloned().collect();
        let kept = leases::renew(
            &self.inner.pool,
            &self.inner.cfg.holder,
            &ids,
            self.inner.cfg.lease_ttl,
        )
        .await?;
        for (id, slot) in &open {
            if !kept.contains(id) {
                tracing::warn!(wallet = %id, "wallet lease lost; will re-take it before the next operation");
                slot.lease_lost.store(true, Ordering::SeqCst);
            }
        }
        Ok(())
    }
}

/// Persists a send's operation id before the send is confirmed.
pub type RecordOperation =
    Box<dyn FnOnce(String) -> futures::future::BoxFuture<'static, Result<(), WalletError>> + Send>;

/// KV namespace for what this backend keeps in a wallet file.
const KV_NAMESPACE: &str = "openpleb";
/// Tokens of confirmed sends, by operation id.
const KV_SENT: &str = "sent";

/// Copies the tokens of unfinished send sagas into the wallet's KV store: cdk's recovery deletes
/// a confirmed send saga (and with it the only copy of its token) once it believes the token was
/// claimed, but a payout whose token never reached PostgreSQL still needs it.
async fn stash_sent_tokens(w: &Wallet) -> Result<(), WalletError> {
    for saga in w.localstore.get_incomplete_sagas().await? {
        if let OperationData::Send(d) = &saga.data {
            if let Some(token) = &d.token {
                w.localstore
                    .kv_write(
                        KV_NAMESPACE,
                        KV_SENT,
                        &saga.id.to_string(),
                        token.as_bytes(),
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

/// Attempts [`prepare_within`] makes before giving up.
const FEE_FIT_ATTEMPTS: usize = 8;

/// Prepares a send whose token plus the mint's input fees come to at most `total` sats, as
/// DESIGN.md wants: fees are paid out of the moved amount, never out of sats the wallet holds
/// for someone else. With a fee-free mint this is one `prepare_send(total)`. Otherwise the
/// token shrinks by the fee its inputs cost; when the wallet holds no more than `total`, the
/// first guess is `total` less the fee of spending everything, and if fewer inputs turn out to
/// do, the slack is tried once. A sat or two may stay behind when no exact fit exists; the
/// session's cleanup returns it. Returns the prepared send and the token's amount.
async fn prepare_within(
    w: &Wallet,
    total: u64,
    lock: Option<XOnlyKey>,
) -> Result<(cdk::wallet::PreparedSend<'_>, u64), WalletError> {
    let opts = SendOptions {
        conditions: lock.map(|k| SpendingConditions::new_p2pk(k.to_lock_key(), None)),
        ..Default::default()
    };
    let short = || WalletError::Cdk(cdk::Error::InsufficientFunds);
    let mut amount = total;
    // An amount known to fit, kept to fall back on while trying a larger one.
    let mut fits: Option<u64> = None;
    for _ in 0..FEE_FIT_ATTEMPTS {
        if amount == 0 {
            break;
        }
        match w.prepare_send(Amount::from(amount), opts.clone()).await {
            Ok(prepared) => {
                let fee: u64 = prepared.fee().into();
                let slack = (amount + fee < total).then(|| total - fee);
                match (amount + fee <= total, slack) {
                    // Exact, or the larger amount was tried already.
                    (true, None) => return Ok((prepared, amount)),
                    (true, Some(_)) if fits.is_some() => return Ok((prepared, amount)),
                    (true, Some(bigger)) => {
                        fits = Some(amount);
                        prepared.cancel().await?;
                        amount = bigger;
                    }
                    (false, _) => {
                        prepared.cancel().await?;
                        amount = match fits {
                            Some(f) => f,
                            None => total.saturating_sub(fee).min(amount - 1),
                        };
                    }
                }
            }
            Err(cdk::Error::InsufficientFunds) => {
                if let Some(f) = fits {
                    amount = f;
                    continue;
                }
                // A wallet short of `total` itself is a real shortage, not a fee.
                if u64::from(w.total_balance().await?) < total {
                    return Err(short());
                }
                // Spending every proof costs the most any send can: below that it must fit.
                let unspent = w.get_unspent_proofs().await?;
                let cap: u64 = w.get_proofs_fee(&unspent).await?.total.into();
                let floor = total.saturating_sub(cap);
                if cap == 0 || floor >= amount {
                    return Err(short());
                }
                amount = floor;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(short())
}

/// Proofs asked about per NUT-07 request.
const CHECK_STATE_CHUNK: usize = 200;

/// What [`settle_orphan_proofs`] did, in sats.
#[derive(Debug, Default)]
struct Orphans {
    spent: u64,
    returned: u64,
    abandoned: u64,
    left: u64,
}

/// Settles reserved, pending and sent proofs that no live operation owns (their saga is gone or
/// never existed) against the mint:
/// - spent: dropped (a claimed token, a finished swap);
/// - reserved and unspent: spendable again (only unspent proofs of this wallet get reserved);
/// - pending and unspent: dropped, as cdk's own compensation of a receive does. Outside a melt
///   only a receive marks proofs pending, and with no saga it never asked the mint, so the
///   token is still its sender's. A wallet with melt quotes is left alone (a melt marks this
///   wallet's own proofs pending);
/// - sent and unspent: left; the recipient may still claim the token.
async fn settle_orphan_proofs(w: &Wallet) -> Result<Orphans, WalletError> {
    let held = w
        .localstore
        .get_proofs(
            Some(w.mint_url.clone()),
            Some(w.unit.clone()),
            Some(vec![State::Reserved, State::Pending, State::PendingSpent]),
            None,
        )
        .await?;
    let mut live_ops: HashMap<uuid::Uuid, bool> = HashMap::new();
    let mut orphans = Vec::new();
    for p in held {
        let owned = match p.used_by_operation {
            None => false,
            Some(op) => match live_ops.get(&op) {
                Some(live) => *live,
                None => {
                    let live = w.localstore.get_saga(&op).await?.is_some();
                    live_ops.insert(op, live);
                    live
                }
            },
        };
        if !owned {
            orphans.push(p);
        }
    }
    let mut done = Orphans::default();
    if orphans.is_empty() {
        return Ok(done);
    }
    let melts = !w.localstore.get_melt_quotes().await?.is_empty();
    for chunk in orphans.chunks(CHECK_STATE_CHUNK) {
        let proofs = chunk.iter().map(|p| p.proof.clone()).collect();
        // Removes the spent ones from the store itself.
        let states: HashMap<_, _> = w
            .check_proofs_spent(proofs)
            .await?
            .into_iter()
            .map(|s| (s.y, s.state))
            .collect();
        let (mut back, mut gone) = (Vec::new(), Vec::new());
        for p in chunk {
            let sats = u64::from(p.proof.amount);
            match (states.get(&p.y), p.state) {
                (Some(State::Spent), _) => done.spent += sats,
                // Outputs of a send cut after its swap, locked to the recipient: not this
                // wallet's to spend, so they are left for a person (and reported).
                (Some(State::Unspent), State::Reserved) if p.spending_condition.is_some() => {
                    done.left += sats;
                }
                (Some(State::Unspent), State::Reserved) => {
                    done.returned += sats;
                    let mut p = p.clone();
                    p.state = State::Unspent;
                    p.used_by_operation = None;
                    back.push(p);
                }
                (Some(State::Unspent), State::Pending) if !melts => {
                    done.abandoned += sats;
                    gone.push(p.y);
                }
                (_, State::PendingSpent) => {}
                _ => done.left += sats,
            }
        }
        w.localstore.update_proofs(back, gone).await?;
    }
    Ok(done)
}

async fn balances(w: &Wallet) -> Result<Balances, WalletError> {
    Ok(Balances {
        unspent: w.total_balance().await?.into(),
        pending: w.total_pending_balance().await?.into(),
        reserved: w.total_reserved_balance().await?.into(),
        sent: w
            .get_pending_spent_proofs()
            .await?
            .iter()
            .map(|p| u64::from(p.amount))
            .sum(),
    })
}
