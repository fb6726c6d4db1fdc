//! Trade steps: every move of an offer, one file per step (DESIGN.md section 7).
//!
//! Each step is a plain `async fn(&TradeCtx, input) -> Result<_, TradeError>` that reads as a
//! checklist: load, check the caller, check the move with [`crate::domain::offer::transition`],
//! act (a compare-and-set and the jobs it causes, in one transaction), return. The api's
//! handlers and the worker's jobs call the same steps; repositories under [`crate::db`] only
//! store, and [`crate::domain`] only decides.

mod access;
mod error;

pub mod answer;
pub mod bond_paid;
pub mod cancel;
pub mod claim;
pub mod claim_lapse;
pub mod complete;
pub mod create;
pub mod deposit_paid;
pub mod details;
pub mod dispute;
pub mod evidence;
pub mod fund;
pub mod fund_receive;
pub mod issue;
pub mod lapse;
pub mod late_refund;
pub mod paid;
pub mod payouts;
pub mod quote;
pub mod receipt;
pub mod reputation;
pub mod reseal;
pub mod resolve;
pub mod reveal;
pub mod settle;
pub mod subscribe;
pub mod withdraw;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

pub use access::{load, load_as, load_visible, Role, Viewer};
pub use error::TradeError;

use crate::config::Config;
use crate::db::offers::{self, Offer};
use crate::desk::MintDesk;
use crate::domain::keys::XOnlyKey;
use crate::domain::offer::OfferStatus;
use crate::jobs::{self, LapseOffer};
use crate::keyring::data::{Field, Sealed};
use crate::keyring::WorkerKeys;
use crate::price::PriceSource;
use crate::wallet::WalletManager;

/// What every step may use.
#[derive(Clone)]
pub struct TradeCtx {
    /// The platform database and job queue.
    pub pool: PgPool,
    /// The mint requests that need no wallet: locked quotes, a funding token's checks.
    pub desk: MintDesk,
    /// Session wallets: only in a worker. The api holds no wallet and no wallet secret; a
    /// step that needs them ([`TradeCtx::wallets`]) is a worker's.
    pub wallets: Option<WalletManager>,
    /// The workers' private keys (quote locks, sealed tokens): only in a worker.
    pub worker_keys: Option<Arc<WorkerKeys>>,
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Fiat prices.
    pub price: Arc<dyn PriceSource>,
    /// The time deadlines are computed from.
    pub clock: Clock,
    /// The reputation token issuer.
    pub reputation: Arc<crate::reputation::Issuer>,
    /// Failpoints (armed by crash tests only).
    pub cuts: crate::failpoint::Cuts,
    /// The process' view of the mint and the database.
    pub health: crate::health::Health,
    /// The quotes the mint reports payments of to this process (its NUT-17 subscriptions;
    /// none outside a worker running the quote notifier).
    pub subscribed: crate::health::Subscribed,
}

impl std::fmt::Debug for TradeCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TradeCtx").finish_non_exhaustive()
    }
}

impl TradeCtx {
    /// `plaintext` sealed for `field` of `offer` under the current `DATA_SECRETS` key: how
    /// trade data is written (see [`crate::keyring::data`]).
    pub fn seal(&self, offer: Uuid, field: Field, plaintext: &[u8]) -> Sealed {
        self.config.data.seal(offer, field, plaintext)
    }

    /// The api's context: the mint desk only, no wallet and no wallet secret.
    pub fn for_api(
        pool: PgPool,
        desk: MintDesk,
        config: Arc<Config>,
        price: Arc<dyn PriceSource>,
    ) -> Self {
        let reputation = Arc::new(crate::reputation::Issuer::new(
            &config.reputation.secret_bytes(),
            config.reputation.keyset,
        ));
        Self {
            health: desk.health().clone(),
            pool,
            desk,
            wallets: None,
            worker_keys: None,
            config,
            price,
            clock: Clock::System,
            reputation,
            cuts: crate::failpoint::Cuts::default(),
            subscribed: crate::health::Subscribed::default(),
        }
    }

    /// A worker's context: its wallets and the keys derived from their master secret.
    pub fn new(
        pool: PgPool,
        wallets: WalletManager,
        config: Arc<Config>,
        price: Arc<dyn PriceSource>,
    ) -> Result<Self, TradeError> {
        let keys = Arc::new(
            wallets
                .worker_keys(&config)
                .map_err(|e| TradeError::Inconsistent(format!("the workers' keys: {e}")))?,
        );
        let desk = MintDesk::new(
            wallets.mint_url(),
            keys.public.clone(),
            wallets.service_auth(),
            wallets.health().clone(),
        )?;
        let mut ctx = Self::for_api(pool, desk, config, price);
        ctx.wallets = Some(wallets);
        ctx.worker_keys = Some(keys);
        Ok(ctx)
    }

    /// A worker's context whose price source is the configured one. Panics only on keys that
    /// cannot be derived from a master secret the configuration validated.
    pub fn from_config(pool: PgPool, wallets: WalletManager, config: Arc<Config>) -> Self {
        let price = crate::price::from_config(&config.prices, &config.limits.fiat_currency);
        match Self::new(pool, wallets, config, price) {
            Ok(ctx) => ctx,
            Err(e) => panic!("worker context: {e}"),
        }
    }

    /// The session wallets, in a worker; in the api, which has none, an error.
    pub fn wallets(&self) -> Result<&WalletManager, TradeError> {
        self.wallets.as_ref().ok_or(TradeError::NoWallets)
    }

    /// The workers' private keys, in a worker; in the api, which has none, an error.
    pub fn worker_keys(&self) -> Result<&WorkerKeys, TradeError> {
        self.worker_keys.as_deref().ok_or(TradeError::NoWallets)
    }

    /// Refuses a step that needs the mint while this process' last check found it down, before
    /// the step writes anything: the caller hears at once that it may try again later.
    pub fn need_mint(&self) -> Result<(), TradeError> {
        if self.health.is_down(crate::health::Dependency::Mint) {
            return Err(TradeError::MintUnavailable);
        }
        Ok(())
    }
}

/// Where "now" comes from: the system, or a fixed offset from it (tests of timers that cannot
/// wait an hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    System,
    /// The system clock shifted by this much.
    Shifted(chrono::Duration),
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Shifted(by) => Utc::now() + *by,
        }
    }
}

/// What every move into a state does besides the compare-and-set itself: the live-update event,
/// the parties' notices and reminders, and the state's lapse job at its deadline, in the
/// mover's transaction. Every step that moves an offer calls it with the row the move returned.
pub(crate) async fn entered(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    offer: &Offer,
    from: Option<OfferStatus>,
) -> Result<(), TradeError> {
    offers::record_event(conn, offer, from).await?;
    crate::notify::on_move(conn, offer, from, &ctx.config.notify.remind_before).await?;
    let Some(deadline) = offer.expires_at else {
        return Ok(());
    };
    let job = LapseOffer {
        offer_id: offer.id,
        status: offer.status,
        entered_at_micros: offer.state_entered_at.timestamp_micros(),
    };
    let delay = (deadline - Utc::now()).to_std().unwrap_or_default();
    jobs::enqueue_in(conn, &job, delay).await?;
    Ok(())
}

/// Who makes a move, which decides the deadline its compare-and-set respects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    /// A party: refused once the state's deadline has passed ([`TradeError::DeadlinePassed`]),
    /// by the database's clock, even while the lapse job is late.
    Party,
    /// The state's lapse: only once its deadline has passed.
    Lapse,
    /// The platform (a payment applied, an admin's decision): no deadline.
    Platform,
}

impl By {
    fn deadline(self) -> offers::Deadline {
        match self {
            Self::Party => offers::Deadline::Before,
            Self::Lapse => offers::Deadline::Passed,
            Self::Platform => offers::Deadline::Any,
        }
    }
}

/// Moves `offer` from `from` to `to` (compare-and-set) with `to`'s timer, and does what
/// entering `to` does. `None` when another move got there first (or, for a lapse, the deadline
/// has not passed); a party's move after its deadline is [`TradeError::DeadlinePassed`].
pub(crate) async fn advance(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    offer: &Offer,
    from: OfferStatus,
    to: OfferStatus,
    timer: Option<std::time::Duration>,
    by: By,
) -> Result<Option<Offer>, TradeError> {
    let moved = offers::transition(conn, offer.id, from, to, timer, by.deadline()).await?;
    match &moved {
        Some(m) => entered(ctx, conn, m, Some(from)).await?,
        None if by == By::Party => {
            if let Some((_, true)) = offers::missed_deadline(conn, offer.id, from).await? {
                return Err(TradeError::DeadlinePassed);
            }
        }
        None => {}
    }
    Ok(moved)
}

/// Refuses a party's move on `offer` once its current state's deadline has passed (database
/// clock), for steps that must check before they act rather than in their compare-and-set.
pub(crate) async fn check_deadline(ctx: &TradeCtx, offer: &Offer) -> Result<(), TradeError> {
    let mut conn = ctx.pool.acquire().await?;
    match offers::missed_deadline(&mut conn, offer.id, offer.status).await? {
        Some((_, true)) => Err(TradeError::DeadlinePassed),
        _ => Ok(()),
    }
}

/// A party's move from `offer`'s current status: the moved offer, or why not
/// ([`TradeError::DeadlinePassed`], or [`TradeError::WrongState`] when another move won).
pub(crate) async fn party_move(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    offer: &Offer,
    to: OfferStatus,
    timer: Option<std::time::Duration>,
) -> Result<Offer, TradeError> {
    advance(ctx, conn, offer, offer.status, to, timer, By::Party)
        .await?
        .ok_or(TradeError::WrongState(offer.status))
}

/// Parses a payout key given in `field`: BIP-340 x-only, lowercase hex.
pub(crate) fn payout_key(s: &str, field: &'static str) -> Result<XOnlyKey, TradeError> {
    let key: XOnlyKey = s.parse().map_err(|e| {
        TradeError::invalid("invalid_payout_pubkey", field, format!("{field}: {e}"))
    })?;
    if key.to_string() != s {
        return Err(TradeError::invalid(
            "invalid_payout_pubkey",
            field,
            format!("{field} must be lowercase hex"),
        ));
    }
    Ok(key)
}

/// A mint's expiry (unix seconds) as a time.
pub(crate) fn unix(secs: u64) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0).unwrap_or_else(Utc::now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_runs_ahead_by_its_offset() {
        let ahead = Clock::Shifted(chrono::Duration::hours(2)).now() - Clock::System.now();
        assert!(ahead > chrono::Duration::minutes(119) && ahead <= chrono::Duration::hours(2));
    }
}
