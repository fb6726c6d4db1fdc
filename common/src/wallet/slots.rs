//! Which wallets are open in this process, and the way every operation reaches one.
//!
//! - At most one process has a file open: opening takes a lease in PostgreSQL
//!   ([`crate::db::leases`]), and the open wallet's store is fenced by that lease's generation
//!   ([`super::fence`]). Every operation confirms the generation before it starts (and reopens
//!   under a new lease if it went stale); a renewal task of its own extends the leases of open
//!   wallets and revokes the fences of those it lost, so an operation running when its lease
//!   is taken stops at its next write.
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

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use cdk::mint_url::MintUrl;
use cdk::wallet::Wallet;
use futures::future::BoxFuture;
use lru::LruCache;
use sqlx::PgPool;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::blank::Blank;
use super::error::WalletError;
use super::fence::Fence;
use super::layout::WalletId;
use super::opening::{open_file, Open, OpenWallet};
use super::settings::WalletManagerConfig;
use crate::db::leases;

/// The wallets open in this process and the one way to reach them. Every clone of a manager
/// shares one; the manager's operations are built on top of it and it knows nothing of them.
pub(super) struct Slots {
    pub(super) cfg: WalletManagerConfig,
    started: Instant,
    pub(super) mint_url: MintUrl,
    pool: PgPool,
    /// New wallet files are copies of this migrated blank.
    blank: Blank,
    /// Slots of every wallet touched recently; the LRU order decides what closes first.
    cache: StdMutex<LruCache<WalletId, Arc<Slot>>>,
}

/// One cache entry; the mutex serialises opening, operations and closing of one wallet.
#[derive(Default)]
pub(super) struct Slot {
    state: Arc<Mutex<Option<OpenWallet>>>,
    /// The open wallet's fence, where the renewal task can reach it while an operation holds
    /// `state`.
    fence: StdMutex<Option<Arc<Fence>>>,
    /// When the last operation ended, in milliseconds since the manager started.
    last_used_ms: AtomicU64,
}

impl Slot {
    fn set_fence(&self, fence: Option<Arc<Fence>>) {
        match self.fence.lock() {
            Ok(mut f) => *f = fence,
            Err(poisoned) => *poisoned.into_inner() = fence,
        }
    }

    fn live_fence(&self) -> Option<Arc<Fence>> {
        let f = match self.fence.lock() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        f.filter(|f| f.holds())
    }
}

/// A wallet's slot with its lock held: what an operation's task owns while it runs.
pub(super) struct Held {
    slots: Arc<Slots>,
    id: WalletId,
    slot: Arc<Slot>,
    state: OwnedMutexGuard<Option<OpenWallet>>,
}

impl Slots {
    /// Notes a failed operation: one that found the mint unreachable has the process' mint
    /// watcher look again now, so what needs the mint is refused at once rather than after a
    /// timeout each.
    pub(super) fn noticed(&self, e: &WalletError) {
        if e.kind() == super::error::WalletErrorKind::MintUnavailable {
            self.cfg.health.suspect(crate::health::Dependency::Mint);
        }
    }
}

impl Held {
    pub(super) fn is_open(&self) -> bool {
        self.state.is_some()
    }

    /// The wallet, opened as `open` says if it is closed or its lease lapsed.
    pub(super) async fn wallet(&mut self, open: Open) -> Result<Wallet, WalletError> {
        self.slots
            .ensure_open(&self.id, &self.slot, &mut self.state, open)
            .await?;
        self.state
            .as_ref()
            .map(|o| o.wallet.clone())
            .ok_or_else(|| WalletError::Task("wallet not open".to_owned()))
    }

    /// Closes the wallet if open and gives its lease back.
    pub(super) async fn close(&mut self) -> Result<(), WalletError> {
        self.slots.close_locked(&self.id, &mut self.state).await
    }

    /// The fence of the open wallet, if open.
    pub(super) fn fence(&self) -> Option<Arc<Fence>> {
        self.state.as_ref().map(|o| o.fence.clone())
    }

    /// Closes the wallet and removes its files, under its lease: the lease is confirmed after
    /// the connections closed and given back only once the files are gone, so no other process
    /// can open the file while it is being removed. The slot stays in the cache, closed, so a
    /// task already waiting for its lock finds the wallet gone rather than opening it under
    /// a second slot; the cache drops it once idle.
    pub(super) async fn remove(&mut self) -> Result<(), WalletError> {
        let Some(open) = self.state.take() else {
            return Err(WalletError::Task("wallet not open".to_owned()));
        };
        let fence = open.shut(&self.id).await;
        if !self.slots.confirm(&self.id, &fence).await? {
            return Err(WalletError::LeaseLost {
                id: self.id.clone(),
                generation: fence.generation(),
            });
        }
        let path = self.slots.cfg.layout.locate(&self.id);
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        fence.revoke();
        self.slot.set_fence(None);
        let cfg = &self.slots.cfg;
        leases::release(
            &self.slots.pool,
            self.id.as_str(),
            &cfg.holder,
            fence.generation(),
        )
        .await?;
        Ok(())
    }
}

impl Slots {
    /// No wallet open yet.
    pub(super) fn new(cfg: WalletManagerConfig, mint_url: MintUrl, pool: PgPool) -> Self {
        Self {
            cfg,
            started: Instant::now(),
            mint_url,
            pool,
            blank: Blank::default(),
            cache: StdMutex::new(LruCache::unbounded()),
        }
    }

    /// Until the manager is dropped: closes wallets idle for `idle_close`; and, in a task of
    /// its own so that closing never delays it, renews the leases of open wallets every third
    /// of their lifetime (see [`Slots::renew_leases`]). Returns the idle task's handle.
    pub(super) fn spawn_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        let renew_every = (self.cfg.lease_ttl / 3).max(Duration::from_millis(50));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(renew_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(slots) = weak.upgrade() else { return };
                slots.renew_leases().await;
            }
        });
        let weak = Arc::downgrade(self);
        let period =
            (self.cfg.idle_close / 2).clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(slots) = weak.upgrade() else { return };
                slots.close_idle().await;
            }
        })
    }

    /// Number of wallets open in this process.
    pub(super) fn open_count(&self) -> usize {
        self.slots_snapshot()
            .iter()
            .filter(|(_, slot)| slot.state.try_lock().map(|s| s.is_some()).unwrap_or(true))
            .count()
    }

    /// The usual way to open: wait for the lease as configured, recover on open.
    pub(super) fn open(&self, create: bool) -> Open {
        Open {
            create,
            lease_wait: self.cfg.lease_wait,
            recover: true,
            close_after: false,
        }
    }

    /// Runs `op` on the open wallet in its own task, holding the wallet's lock throughout.
    pub(super) async fn run<T, F, Fut>(
        self: &Arc<Self>,
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

    /// [`Slots::run`], opening the wallet as `open` says.
    pub(super) async fn run_with<T, F, Fut>(
        self: &Arc<Self>,
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
                    if let Some(auth) = &held.slots.cfg.service_auth {
                        auth.ensure_supply().await?;
                    }
                    op(wallet).await
                }
                .await;
                // A failure after the lease was lost is the fence's refusal (or its aftermath):
                // say so, whatever cdk made of the refused statement.
                let result = match (result, held.fence()) {
                    (Err(e), Some(fence)) if !fence.holds() => {
                        tracing::warn!(wallet = %held.id, generation = fence.generation(), error = %e, "wallet operation stopped: lease lost");
                        Err(WalletError::LeaseLost {
                            id: held.id.clone(),
                            generation: fence.generation(),
                        })
                    }
                    (result, _) => result,
                };
                if let Err(e) = &result {
                    held.slots.noticed(e);
                }
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
    pub(super) async fn in_task<T, F>(
        self: &Arc<Self>,
        id: &WalletId,
        op: F,
    ) -> Result<T, WalletError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Held) -> BoxFuture<'a, Result<T, WalletError>> + Send + 'static,
    {
        let slot = self.slot(id);
        let slots = self.clone();
        let id = id.clone();
        // The operation's own task keeps the caller's span, so its log lines carry the
        // request's or job's correlation id.
        let span = tracing::Span::current();
        let task = tokio::spawn(tracing::Instrument::instrument(
            async move {
                let state = slot.state.clone().lock_owned().await;
                let mut held = Held {
                    slots: slots.clone(),
                    id,
                    slot: slot.clone(),
                    state,
                };
                let result = op(&mut held).await;
                slot.last_used_ms.store(slots.now_ms(), Ordering::SeqCst);
                drop(held);
                slots.evict_idle();
                result
            },
            span,
        ));
        task.await.map_err(|e| WalletError::Task(e.to_string()))?
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Closes wallets nobody used for `idle_close`.
    async fn close_idle(&self) {
        let idle_ms = u64::try_from(self.cfg.idle_close.as_millis()).unwrap_or(u64::MAX);
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
        let mut slots = match self.cache.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        slots
            .get_or_insert(id.clone(), || Arc::new(Slot::default()))
            .clone()
    }

    pub(super) fn slots_snapshot(&self) -> Vec<(WalletId, Arc<Slot>)> {
        match self.cache.lock() {
            Ok(s) => s.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Opens the wallet under `state` if it is closed, or if the generation it was opened under
    /// is no longer its lease's (then the stale wallet is dropped unwritten and reopened from
    /// its file under a new lease: the file may have changed under another holder).
    async fn ensure_open(
        &self,
        id: &WalletId,
        slot: &Slot,
        state: &mut OwnedMutexGuard<Option<OpenWallet>>,
        open: Open,
    ) -> Result<(), WalletError> {
        if let Some(current) = state.as_ref() {
            let fence = current.fence.clone();
            if self.confirm(id, &fence).await? {
                return Ok(());
            }
            tracing::warn!(wallet = %id, generation = fence.generation(), "wallet lease lost; reopening under a new lease");
            if let Some(stale) = state.take() {
                drop(stale.wallet);
                if !stale.connections.wait_closed(Duration::from_secs(10)).await {
                    tracing::warn!(wallet = %id, "wallet connection did not close in time");
                }
            }
            slot.set_fence(None);
        }
        let (generation, sent) = self.take_lease(id, open.lease_wait).await?;
        let fence = Arc::new(Fence::new(generation, self.cfg.lease_ttl, sent));
        match open_file(
            &self.cfg,
            &self.blank,
            &self.mint_url,
            id,
            open,
            fence.clone(),
        )
        .await
        {
            Ok(opened) => {
                slot.set_fence(Some(fence));
                **state = Some(opened);
                Ok(())
            }
            Err(e) => {
                fence.revoke();
                let cfg = &self.cfg;
                leases::release(&self.pool, id.as_str(), &cfg.holder, generation).await?;
                Err(e)
            }
        }
    }

    /// Whether `fence`'s generation is still the wallet's lease (extending it): one statement.
    /// A stale generation revokes the fence.
    pub(super) async fn confirm(&self, id: &WalletId, fence: &Fence) -> Result<bool, WalletError> {
        let cfg = &self.cfg;
        let sent = Instant::now();
        let current = leases::confirm(
            &self.pool,
            id.as_str(),
            &cfg.holder,
            fence.generation(),
            cfg.lease_ttl,
        )
        .await?;
        if current {
            fence.extended(sent);
        } else {
            fence.revoke();
        }
        Ok(current)
    }

    /// Takes the wallet's lease, waiting up to `wait` for another holder: the new generation,
    /// and when the statement that took it was sent.
    async fn take_lease(
        &self,
        id: &WalletId,
        wait: Duration,
    ) -> Result<(i64, Instant), WalletError> {
        let cfg = &self.cfg;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let sent = Instant::now();
            let taken =
                leases::acquire(&self.pool, id.as_str(), &cfg.holder, cfg.lease_ttl).await?;
            if let Some(generation) = taken {
                return Ok((generation, sent));
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
            let fence = open.shut(id).await;
            // Closed: nothing writes any more, and renewal leaves it alone.
            fence.revoke();
            let cfg = &self.cfg;
            leases::release(&self.pool, id.as_str(), &cfg.holder, fence.generation()).await?;
        }
        Ok(())
    }

    /// Closes least-recently-used idle wallets while more than `max_open` are open, and drops
    /// closed slots nobody holds.
    fn evict_idle(self: &Arc<Self>) {
        let max_open = self.cfg.max_open;
        let victims: Vec<(WalletId, OwnedMutexGuard<Option<OpenWallet>>)> = {
            let Ok(mut slots) = self.cache.lock() else {
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
            let slots = self.clone();
            tokio::spawn(async move {
                if let Err(e) = slots.close_locked(&id, &mut guard).await {
                    tracing::warn!(wallet = %id, error = %e, "closing idle wallet failed");
                }
            });
        }
    }

    /// Extends the lease of every open wallet in one statement, and revokes the fence of each
    /// lease PostgreSQL no longer has at its generation: an operation running on it stops at
    /// its next write, and the next operation reopens the wallet under a new lease. When the
    /// statement fails, nothing is extended: the fences run out by themselves before the leases
    /// can lapse, and each operation confirms its lease before it starts, so the next one
    /// takes it again or stops.
    pub(super) async fn renew_leases(&self) {
        let live: Vec<(WalletId, Arc<Fence>)> = self
            .slots_snapshot()
            .into_iter()
            .filter_map(|(id, slot)| slot.live_fence().map(|f| (id, f)))
            .collect();
        if live.is_empty() {
            return;
        }
        let held: Vec<(String, i64)> = live
            .iter()
            .map(|(id, f)| (id.as_str().to_owned(), f.generation()))
            .collect();
        let cfg = &self.cfg;
        let sent = Instant::now();
        let kept = match leases::renew(&self.pool, &cfg.holder, &held, cfg.lease_ttl).await {
            Ok(kept) => kept,
            Err(e) => {
                tracing::warn!(error = %e, wallets = live.len(), "wallet lease renewal failed; open wallets stop writing when their leases run out");
                return;
            }
        };
        for (id, fence) in &live {
            if kept.iter().any(|k| k == id.as_str()) {
                fence.extended(sent);
            } else {
                tracing::warn!(wallet = %id, generation = fence.generation(), "wallet lease lost; writes fenced, the next operation reopens under a new lease");
                fence.revoke();
            }
        }
    }
}
