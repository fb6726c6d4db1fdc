//! Which wallets are open in this process, and the way every operation reaches one.
//!
//! - At most one process has a file open: opening takes a lease in PostgreSQL
//!   ([`crate::db::leases`]); the maintenance task renews the leases of open wallets.
//! - At most `max_open` wallets stay open (each costs a connection thread and a few file
//!   descriptors); beyond that, idle ones are closed least-recently-used first. A wallet idle
//!   for `idle_close` is closed and its lease given back, so a job for the same session on
//!   another worker does not wait long for it.
//! - Operations on one wallet are serialised by its slot's lock, and each runs in its own task
//!   that holds the lock, so a caller that goes away (a dropped HTTP request) cannot cut a cdk
//!   saga in half or let a second operation start beside it. Opening happens under the same
//!   lock, so concurrent callers open a wallet once.
//! - Every open runs `recover_incomplete_sagas` first (unless the operation is the
//!   reconciliation, which runs it itself).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdk::nuts::CurrencyUnit;
use cdk::wallet::{Wallet, WalletBuilder};
use futures::future::BoxFuture;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::error::WalletError;
use super::layout::{derive_seed, WalletId};
use super::manager::WalletManager;
use super::reconcile::recover_on_open;
use super::store::{OpenConnections, SqlxSqliteConfig, WalletSqlxDatabase};
use crate::db::leases;

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

pub(super) struct OpenWallet {
    wallet: Wallet,
    connections: Arc<OpenConnections>,
}

/// One cache entry; the mutex serialises opening, operations and closing of one wallet.
#[derive(Default)]
pub(super) struct Slot {
    state: Arc<Mutex<Option<OpenWallet>>>,
    /// Set when renewal found the lease gone; the next operation must take it again.
    lease_lost: AtomicBool,
    /// When the last operation ended, in milliseconds since the manager started.
    last_used_ms: AtomicU64,
}

/// A wallet's slot with its lock held: what an operation's task owns while it runs.
pub(super) struct Held {
    manager: WalletManager,
    id: WalletId,
    slot: Arc<Slot>,
    state: OwnedMutexGuard<Option<OpenWallet>>,
}

impl Held {
    pub(super) fn is_open(&self) -> bool {
        self.state.is_some()
    }

    /// The wallet, opened as `open` says if it is closed or its lease lapsed.
    pub(super) async fn wallet(&mut self, open: Open) -> Result<Wallet, WalletError> {
        self.manager
            .ensure_open(&self.id, &self.slot, &mut self.state, open)
            .await?;
        self.state
            .as_ref()
            .map(|o| o.wallet.clone())
            .ok_or_else(|| WalletError::Task("wallet not open".to_owned()))
    }

    /// Closes the wallet if open and gives its lease back.
    pub(super) async fn close(&mut self) -> Result<(), WalletError> {
        self.manager.close_locked(&self.id, &mut self.state).await
    }

    /// Closes the wallet and removes its files. The slot stays in the cache, closed, so a
    /// task already waiting for its lock finds the wallet gone rather than opening it under
    /// a second slot; the cache drops it once idle.
    pub(super) async fn remove(&mut self) -> Result<(), WalletError> {
        self.close().await?;
        let path = self.manager.inner.cfg.layout.locate(&self.id);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

impl WalletManager {
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

    /// The usual way to open: wait for the lease as configured, recover on open.
    pub(super) fn open(&self, create: bool) -> Open {
        Open {
            create,
            lease_wait: self.inner.cfg.lease_wait,
            recover: true,
            close_after: false,
        }
    }

    /// Runs `op` on the open wallet in its own task, holding the wallet's lock throughout.
    pub(super) async fn run<T, F, Fut>(
        &self,
        id: &WalletId,
        create: bool,
        op: F,
    ) -> Result<T, WalletError>
    where
        T: Send + 'static,
        F: FnOnce(Wallet) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, WalletError>> + Send + 'static,
    {
        self.run_with(id, self.open(create), op).await
    }

    /// [`WalletManager::run`], opening the wallet as `open` says.
    pub(super) async fn run_with<T, F, Fut>(
        &self,
        id: &WalletId,
        open: Open,
        op: F,
    ) -> Result<T, WalletError>
    where
        T: Send + 'static,
        F: FnOnce(Wallet) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, WalletError>> + Send + 'static,
    {
        self.in_task(id, move |held| {
            Box::pin(async move {
                let was_open = held.is_open();
                let result = async {
                    let wallet = held.wallet(open).await?;
                    if let Some(auth) = &held.manager.inner.cfg.service_auth {
                        auth.ensure_supply().await?;
                    }
                    op(wallet).await
                }
                .await;
                if open.close_after && (!was_open || result.is_err()) {
                    held.close().await?;
                }
                result
            })
        })
        .await
    }

    /// Runs `op` in its own task holding the wallet's lock: the one way every operation,
    /// closing and deleting included, reaches a wallet.
    pub(super) async fn in_task<T, F>(&self, id: &WalletId, op: F) -> Result<T, WalletError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Held) -> BoxFuture<'a, Result<T, WalletError>> + Send + 'static,
    {
        let slot = self.slot(id);
        let manager = self.clone();
        let id = id.clone();
        // The operation's own task keeps the caller's span, so its log lines carry the
        // request's or job's correlation id.
        let span = tracing::Span::current();
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let state = slot.state.clone().lock_owned().await;
                let mut held = Held {
                    manager: manager.clone(),
                    id,
                    slot: slot.clone(),
                    state,
                };
                let result = op(&mut held).await;
                slot.last_used_ms.store(manager.now_ms(), Ordering::SeqCst);
                drop(held);
                manager.evict_idle();
                result
            },
            span,
        ));
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

    pub(super) fn slots_snapshot(&self) -> Vec<(WalletId, Arc<Slot>)> {
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
            recover_on_open(&wallet, id).await?;
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

    /// Closes least-recently-used idle wallets while more than `max_open` are open, and drops
    /// closed slots nobody holds.
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
