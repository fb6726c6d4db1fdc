//! The per-session wallet manager: what callers can do with a session's wallet.
//!
//! One SQLite file per wallet ([`super::WalletLayout`]), its seed derived from the master
//! secret. Every operation here, closing and deleting included, reaches its wallet the one way
//! `slots.rs` provides (its own task holding the wallet's lock and lease, saga recovery on
//! open); sends fit the mint's fee with [`super::fees::FeeFit`]; crash leftovers are settled by
//! [`WalletManager::reconcile`].
//!
//! The manager sits on top of the wallet modules: it uses the cache of open wallets, locked
//! sends and the fee fit, and none of them uses it. Further operations (`quote_lock`,
//! `receipts`, `treasury`, `reconcile`) add methods to it from modules of their own above it.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use cdk::amount::SplitTarget;
use cdk::mint_url::MintUrl;
use cdk::nuts::{MintQuoteState, PaymentMethod, SecretKey};
use cdk::wallet::types::OperationData;
use cdk::wallet::{ReceiveOptions, Wallet};
use cdk::Amount;
use futures::future::BoxFuture;
use sqlx::PgPool;

use super::error::WalletError;
use super::fees::prepare_within;
use super::kv::{KV_NAMESPACE, KV_SENT};
use super::layout::WalletId;
use super::locked;
use super::opening::Open;
use super::own_issue::own_issue;
use super::settings::WalletManagerConfig;
use super::slots::{Held, Slots};
use crate::domain::keys::XOnlyKey;
use crate::metrics::wallet_op;

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
    /// Minted by this wallet, now or earlier (a repeat after a crash): the sats it got.
    Issued(u64),
    /// The mint reports the quote ISSUED, but this wallet never minted it: somebody else did
    /// (a mint ignoring the NUT-20 lock, or a leaked key). Nothing arrived: not paid, for us.
    IssuedElsewhere,
}

/// The outcome of a quote the mint reports ISSUED, for wallet `w`: issued to it only by its
/// own records ([`super::own_issue`]), never on the mint's word alone.
pub(super) async fn issued_outcome(w: &Wallet, quote_id: &str) -> Result<MintOutcome, WalletError> {
    Ok(match own_issue(w, quote_id).await? {
        Some(sats) => MintOutcome::Issued(sats),
        None => MintOutcome::IssuedElsewhere,
    })
}

/// A token sent out of a wallet. `amount + fee` is what left the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentToken {
    /// The encoded token (a bearer secret unless locked; never log it).
    pub token: String,
    /// Sats the token is worth.
    pub amount: u64,
    /// What was to be sent and is not in the token: the mint's fee, plus the sat or two a
    /// fee fit could not place (those stay in the wallet; see [`super::fees::FeeFit`]).
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

/// Persists a send's operation id before the send is confirmed.
pub type RecordOperation =
    Box<dyn FnOnce(String) -> futures::future::BoxFuture<'static, Result<(), WalletError>> + Send>;

/// What every clone of a manager shares.
pub(super) struct Inner {
    /// The settings, the open wallets and the way to them.
    pub(super) slots: Arc<Slots>,
    /// Clients for requests that need no wallet (quotes made without opening one), taken in
    /// turn: cdk's HTTP client sends one request at a time over its one connection, so a
    /// single client would make concurrent `POST /offers` wait for each other.
    pub(super) clients: Vec<Arc<dyn cdk::wallet::MintConnector + Send + Sync>>,
    /// The next of `clients` to use.
    pub(super) next_client: std::sync::atomic::AtomicUsize,
}

/// Cheap to clone; all clones share one cache.
#[derive(Clone)]
pub struct WalletManager {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for WalletManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletManager")
            .field("holder", &self.cfg().holder)
            .field("open", &self.open_count())
            .finish()
    }
}

/// Mint connections a manager keeps for requests without a wallet.
const MINT_CLIENTS: usize = 8;

impl WalletManager {
    /// The mint every wallet of this manager uses.
    pub fn mint_url(&self) -> &str {
        &self.cfg().mint_url
    }

    /// The process' view of its dependencies this manager reports into.
    pub fn health(&self) -> &crate::health::Health {
        &self.cfg().health
    }

    /// Notes a failed operation: one that found the mint unreachable has its watcher look
    /// again now, so what needs the mint is refused at once rather than after a timeout each.
    pub(super) fn noticed(&self, e: &WalletError) {
        self.inner.slots.noticed(e);
    }

    /// The next client for a request that needs no wallet.
    pub(super) fn client(&self) -> Arc<dyn cdk::wallet::MintConnector + Send + Sync> {
        let n = self
            .inner
            .next_client
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.clients[n % self.inner.clients.len()].clone()
    }

    /// A manager; call [`WalletManager::spawn_maintenance`] to renew leases and close idle
    /// wallets.
    pub fn new(cfg: WalletManagerConfig, pool: PgPool) -> Result<Self, WalletError> {
        let mint_url: MintUrl = cfg
            .mint_url
            .parse()
            .map_err(|e: cdk::mint_url::Error| WalletError::Task(e.to_string()))?;
        let auth = cfg.service_auth.as_ref().map(|a| a.auth_wallet());
        let clients = (0..MINT_CLIENTS)
            .map(|_| {
                Arc::new(cdk::wallet::HttpClient::new(mint_url.clone(), auth.clone()))
                    as Arc<dyn cdk::wallet::MintConnector + Send + Sync>
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Slots::new(cfg, mint_url, pool)),
                clients,
                next_client: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }

    /// The settings the manager was built from.
    pub(super) fn cfg(&self) -> &WalletManagerConfig {
        &self.inner.slots.cfg
    }

    /// The settings the manager was built from (the master secret is not reachable from
    /// outside the wallet modules).
    pub fn cleanup_interval(&self) -> std::time::Duration {
        self.cfg().cleanup_interval
    }

    /// Where wallets are archived before deletion, and for how long, if they are.
    pub fn archive(&self) -> Option<(&std::path::Path, std::time::Duration)> {
        self.cfg()
            .archive_dir
            .as_deref()
            .map(|d| (d, self.cfg().archive_keep))
    }

    /// The service account's BATs this manager's wallets use, if any.
    pub fn service_auth(&self) -> Option<super::service_auth::ServiceAuth> {
        self.cfg().service_auth.clone()
    }

    /// Whether a wallet file exists.
    pub fn exists(&self, id: &WalletId) -> bool {
        self.cfg().layout.locate(id).exists()
    }

    /// The file of a wallet.
    pub fn path_of(&self, id: &WalletId) -> PathBuf {
        self.cfg().layout.locate(id)
    }

    /// Creates a bolt11 mint quote for `sats` in the wallet.
    pub async fn create_mint_quote(
        &self,
        id: &WalletId,
        sats: u64,
    ) -> Result<CreatedQuote, WalletError> {
        wallet_op(
            "create_mint_quote",
            self.run(id, true, move |w| async move {
                let q = w
                    .mint_quote(PaymentMethod::BOLT11, Some(Amount::from(sats)), None, None)
                    .await?;
                Ok(CreatedQuote {
                    quote_id: q.id,
                    request: q.request,
                    expiry: q.expiry,
                })
            }),
        )
        .await
    }

    /// Asks the mint about a quote and mints it if paid. Safe to repeat: a quote this wallet
    /// minted before reports [`MintOutcome::Issued`] with what it got; one the mint reports
    /// ISSUED that this wallet never minted, [`MintOutcome::IssuedElsewhere`].
    pub async fn mint_quote(
        &self,
        id: &WalletId,
        quote_id: &str,
    ) -> Result<MintOutcome, WalletError> {
        let quote_id = quote_id.to_owned();
        wallet_op(
            "mint_quote",
            self.run(id, false, move |w| async move {
                let q = w.check_mint_quote_status(&quote_id).await?;
                match q.state {
                    MintQuoteState::Unpaid => Ok(MintOutcome::Unpaid),
                    MintQuoteState::Issued => issued_outcome(&w, &quote_id).await,
                    MintQuoteState::Paid => {
                        let proofs = w.mint(&quote_id, SplitTarget::default(), None).await?;
                        let minted = proofs.iter().map(|p| u64::from(p.amount)).sum();
                        Ok(MintOutcome::Issued(minted))
                    }
                }
            }),
        )
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
        wallet_op(
            "receive",
            self.run(id, true, move |w| async move {
                let opts = ReceiveOptions {
                    p2pk_signing_keys: keys,
                    ..Default::default()
                };
                Ok(w.receive(&token, opts).await?.into())
            }),
        )
        .await
    }

    /// Sends `sats` out of the wallet as a token, P2PK-locked to `lock` when given. Mint fees
    /// come out of `sats` (see [`super::fees::FeeFit`]): the token is worth `sats` minus the
    /// fee.
    pub async fn send(
        &self,
        id: &WalletId,
        sats: u64,
        lock: Option<XOnlyKey>,
    ) -> Result<SentToken, WalletError> {
        wallet_op(
            "send",
            self.run(id, false, move |w| async move {
                let (prepared, amount) = prepare_within(&w, sats, lock).await?;
                let token = prepared.confirm(None).await?;
                Ok(SentToken {
                    token: token.to_string(),
                    amount,
                    fee: sats - amount,
                })
            }),
        )
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
        wallet_op(
            "send_recorded",
            self.run(id, false, move |w| async move {
                let (prepared, amount) = prepare_within(&w, sats, lock).await?;
                if let Some(lock) = &lock {
                    // The wallet's own swap, whose outputs survive any cut (see `locked`):
                    // cdk's send only picked the inputs.
                    let inputs = prepared.proofs();
                    prepared.cancel().await?;
                    let op = uuid::Uuid::new_v4().to_string();
                    record(op.clone()).await?;
                    let token = locked::send(&w, &op, lock, amount, inputs).await?;
                    return Ok(SentToken {
                        token,
                        amount,
                        fee: sats - amount,
                    });
                }
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
            }),
        )
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
        wallet_op(
            "sent_token",
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
                if let Some(token) = stashed.and_then(|b| String::from_utf8(b).ok()) {
                    return Ok(Some(token));
                }
                // A locked send cut before its token was stored: the same token, or none if it
                // paid nothing.
                locked::resume(&w, &op).await
            }),
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
        wallet_op(
            "balance",
            self.run(id, false, |w| async move { balances(&w).await }),
        )
        .await
    }

    /// Closes the wallet if open and gives its lease back.
    pub async fn close(&self, id: &WalletId) -> Result<(), WalletError> {
        self.in_task(id, |held| Box::pin(held.close())).await
    }

    /// Closes every open wallet (at shutdown).
    pub async fn close_all(&self) {
        for (id, _) in self.inner.slots.slots_snapshot() {
            if let Err(e) = self.close(&id).await {
                tracing::warn!(wallet = %id, error = %e, "closing wallet failed");
            }
        }
    }

    /// Deletes a wallet's file. Refuses while it holds funds unless `funds` says where they went.
    /// The check and the removal happen under the wallet's lock, so no operation can put sats
    /// into the wallet between them.
    pub async fn delete(&self, id: &WalletId, funds: Funds) -> Result<(), WalletError> {
        self.delete_archiving(id, funds, None).await
    }

    /// [`WalletManager::delete`], copying the file into `archive_dir` first when given (see
    /// [`super::archive`]): under the same lock and lease as the check and the removal, so the
    /// copy is the file as it was deleted. A failed copy leaves the wallet in place.
    pub async fn delete_archiving(
        &self,
        id: &WalletId,
        funds: Funds,
        archive_dir: Option<PathBuf>,
    ) -> Result<(), WalletError> {
        if !self.exists(id) {
            return Ok(());
        }
        let open = self.open(false);
        let owned = id.clone();
        let path = self.path_of(id);
        wallet_op("delete", self.in_task(id, move |held| {
            Box::pin(async move {
                let wallet = held.wallet(open).await?;
                let sats = balances(&wallet).await?.total();
                drop(wallet);
                match funds {
                    _ if sats == 0 => {}
                    Funds::AccountedFor(reason) => {
                        tracing::info!(wallet = %owned, sats, reason = %reason, "deleting wallet with accounted-for funds");
                    }
                    Funds::MustBeEmpty => return Err(WalletError::NotEmpty { id: owned, sats }),
                }
                if let Some(dir) = archive_dir {
                    super::archive::copy_into(&path, &dir, &owned).await?;
                    crate::metrics::wallet_archived();
                }
                held.remove().await
            })
        })
        ).await
    }
}

/// The way to a wallet: the cache of open wallets under the manager (`slots.rs`).
impl WalletManager {
    /// Until the manager is dropped: closes wallets idle for `idle_close`; and, in a task of
    /// its own so that closing never delays it, renews the leases of open wallets every third
    /// of their lifetime. Returns the idle task's handle.
    pub fn spawn_maintenance(&self) -> tokio::task::JoinHandle<()> {
        self.inner.slots.spawn_maintenance()
    }

    /// Number of wallets open in this process.
    pub fn open_count(&self) -> usize {
        self.inner.slots.open_count()
    }

    /// The usual way to open: wait for the lease as configured, recover on open.
    pub(super) fn open(&self, create: bool) -> Open {
        self.inner.slots.open(create)
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
        self.inner.slots.run(id, create, op).await
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
        self.inner.slots.run_with(id, open, op).await
    }

    /// Runs `op` in its own task holding the wallet's lock: the one way every operation,
    /// closing and deleting included, reaches a wallet.
    pub(super) async fn in_task<T, F>(&self, id: &WalletId, op: F) -> Result<T, WalletError>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut Held) -> BoxFuture<'a, Result<T, WalletError>> + Send + 'static,
    {
        self.inner.slots.in_task(id, op).await
    }
}

/// The wallet's balances, read from its store.
pub(super) async fn balances(w: &Wallet) -> Result<Balances, WalletError> {
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
