//! What an operator must look at: offers stuck past their deadline, payouts owed and not
//! moving, jobs that gave up, wallets the reconciliation has not reached, quotes whose wallet
//! was gone. Read-only counts and
//! ids; the jobs that act on the same conditions log them as they go.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::offers::{self, Offer};
use crate::domain::money::Party;
use crate::domain::payout::{PayoutPurpose, PayoutState};

/// An offer overdue by longer than this is stuck: its lapse job and the backstop both failed.
pub const STUCK_OFFER_GRACE: Duration = Duration::from_secs(600);

/// Platform tokens found spent by someone other than the treasury are listed this long.
pub const SPENT_ELSEWHERE_WINDOW: Duration = Duration::from_secs(30 * 86_400);

/// A payout unreleased (or a platform fee unswept) this long after it was recorded is overdue.
pub const OVERDUE_PAYOUT_GRACE: Duration = Duration::from_secs(600);

/// An orphaned quote stays in the alerts this long: time for an operator to ask the mint
/// whether it was paid and, if so, restore the wallet from its seed and refund the payer.
pub const ORPHANED_QUOTE_WINDOW: Duration = Duration::from_secs(7 * 86_400);

fn interval(d: Duration) -> Result<chrono::Duration, sqlx::Error> {
    chrono::Duration::from_std(d).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Up to `limit` offers past their deadline by more than [`STUCK_OFFER_GRACE`] in a state
/// that lapses on its own, most overdue first. (A dispute waiting for an admin has no deadline;
/// those are counted apart.)
pub async fn stuck_offers(pool: &PgPool, limit: i64) -> Result<Vec<Offer>, sqlx::Error> {
    offers::overdue(pool, STUCK_OFFER_GRACE, limit).await
}

/// A payout owed and not moving.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OverduePayout {
    /// The payout.
    pub id: Uuid,
    /// Its offer.
    pub offer_id: Uuid,
    /// Recipient.
    pub party: Party,
    /// Why it is owed.
    pub purpose: PayoutPurpose,
    /// RECORDED (not released) or RELEASED (a platform fee not swept into the treasury).
    pub state: PayoutState,
    /// Sats.
    pub amount_sats: i64,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Up to `limit` payouts overdue by [`OVERDUE_PAYOUT_GRACE`], oldest first.
pub async fn overdue_payouts(pool: &PgPool, limit: i64) -> Result<Vec<OverduePayout>, sqlx::Error> {
    sqlx::query_as(
        "select id, offer_id, party, purpose, state, amount_sats, created_at from payouts
          where (state = 'RECORDED' and created_at < now() - $1)
             or (state = 'RELEASED' and party = 'platform' and released_at < now() - $1)
          order by created_at limit $2",
    )
    .bind(interval(OVERDUE_PAYOUT_GRACE)?)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The reconciliation's reach: when it last checked a wallet, and how many live session
/// wallets it has not checked within `window` (sessions younger than that are not counted).
pub async fn reconciliation(
    pool: &PgPool,
    window: Duration,
) -> Result<(Option<DateTime<Utc>>, i64), sqlx::Error> {
    let last: Option<DateTime<Utc>> =
        sqlx::query_scalar("select max(checked_at) from wallet_checks")
            .fetch_one(pool)
            .await?;
    let behind: i64 = sqlx::query_scalar(
        "select count(*) from sessions s
           left join wallet_checks c
             on c.wallet_id = session_wallet_id(s.id)
          where s.wallet_removed_at is null
            and s.created_at < now() - $1
            and (c.checked_at is null or c.checked_at < now() - $1)",
    )
    .bind(interval(window)?)
    .fetch_one(pool)
    .await?;
    Ok((last, behind))
}

/// A quote whose wallet was gone when its watcher looked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrphanedQuote {
    /// The mint's quote id.
    pub quote_id: String,
    /// The offer it was for, if any.
    pub offer_id: Option<Uuid>,
    /// Sats it asked for.
    pub amount_sats: i64,
    /// The mint's expiry.
    pub expires_at: DateTime<Utc>,
    /// When the watcher found the wallet gone.
    pub orphaned_at: DateTime<Utc>,
}

/// Up to `limit` quotes orphaned within [`ORPHANED_QUOTE_WINDOW`], newest first.
pub async fn orphaned_quotes(pool: &PgPool, limit: i64) -> Result<Vec<OrphanedQuote>, sqlx::Error> {
    sqlx::query_as(
        "select quote_id, offer_id, amount_sats, expires_at, updated_at as orphaned_at
           from wallet_quotes
          where state = 'ORPHANED' and updated_at > now() - $1
          order by updated_at desc limit $2",
    )
    .bind(interval(ORPHANED_QUOTE_WINDOW)?)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A platform token the treasury sweep found spent by someone else.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpentElsewhere {
    /// The payout.
    pub id: Uuid,
    /// Its offer.
    pub offer_id: Uuid,
    /// The platform's share.
    pub amount_sats: i64,
    /// When the sweep found it spent.
    pub spent_elsewhere_at: DateTime<Utc>,
}

/// Platform tokens found spent by someone other than the treasury within
/// [`SPENT_ELSEWHERE_WINDOW`], newest first.
pub async fn spent_elsewhere(
    pool: &PgPool,
    limit: i64,
) -> Result<Vec<SpentElsewhere>, sqlx::Error> {
    let window = chrono::Duration::from_std(SPENT_ELSEWHERE_WINDOW)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_as(
        "select id, offer_id, amount_sats, spent_elsewhere_at from payouts
          where state = 'SPENT_ELSEWHERE' and spent_elsewhere_at > now() - $1
          order by spent_elsewhere_at desc limit $2",
    )
    .bind(window)
    .bind(limit)
    .fetch_all(pool)
    .await
}
