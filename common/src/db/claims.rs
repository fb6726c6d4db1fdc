//! Claims: takers' bids for a listed offer, each with its own bond invoice and deadline, and
//! their compare-and-set moves. The offer row is untouched until a bond wins
//! ([`super::offers::take`]). Deadlines are set and compared with the database's clock.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::claim::ClaimStatus;

/// A claim row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claim {
    /// Id.
    pub id: Uuid,
    /// The offer claimed.
    pub offer_id: Uuid,
    /// The claiming session.
    pub session_id: Uuid,
    /// The taker's per-trade payout key; refunds of its bond lock to it.
    pub payout_pubkey: String,
    /// Its bond's mint quote, once made.
    pub bond_quote_id: Option<String>,
    /// The bond invoice (BOLT11), once made.
    pub bond_invoice: Option<String>,
    /// The bond's sats.
    pub bond_sats: i64,
    /// When the bond invoice stops being payable at the mint.
    pub bond_invoice_expires_at: Option<DateTime<Utc>>,
    /// Where it is.
    pub status: ClaimStatus,
    /// Reputation tokens staked with it.
    pub stake: i32,
    /// Its bond must be paid by then.
    pub expires_at: DateTime<Utc>,
    /// Made.
    pub created_at: DateTime<Utc>,
    /// Won, lapsed or lost.
    pub ended_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, offer_id, session_id, payout_pubkey, bond_quote_id, bond_invoice, \
    bond_sats, bond_invoice_expires_at, status, stake, expires_at, created_at, ended_at";

/// Inserts a PENDING claim whose deadline is `timer` from now, or the offer's own listing
/// deadline if that comes first; both read from the database's clock.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    offer_id: Uuid,
    session_id: Uuid,
    payout_pubkey: &str,
    timer: std::time::Duration,
) -> Result<Claim, sqlx::Error> {
    let timer = chrono::Duration::from_std(timer).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into claims (id, offer_id, session_id, payout_pubkey, bond_sats, expires_at)
         select $1, o.id, $3, $4, o.taker_bond_sats,
                least(now() + $5, coalesce(o.expires_at, now() + $5))
           from offers o where o.id = $2
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(offer_id)
    .bind(session_id)
    .bind(payout_pubkey)
    .bind(timer)
    .fetch_one(conn)
    .await
}

/// One claim.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from claims where id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The claim whose bond is `quote_id`, locked for the rest of the transaction.
pub async fn by_bond_for_update(
    conn: &mut PgConnection,
    quote_id: &str,
) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from claims where bond_quote_id = $1 for update"
    )))
    .bind(quote_id)
    .fetch_optional(conn)
    .await
}

/// The latest claim of `offer_id` made with the payout key `key`.
pub async fn by_payout_key(
    conn: &mut PgConnection,
    offer_id: Uuid,
    key: &str,
) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from claims where offer_id = $1 and payout_pubkey = $2
          order by created_at desc limit 1"
    )))
    .bind(offer_id)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// `session`'s latest claim of `offer_id`.
pub async fn latest_of(
    pool: &PgPool,
    offer_id: Uuid,
    session: Uuid,
) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from claims where offer_id = $1 and session_id = $2
          order by created_at desc limit 1"
    )))
    .bind(offer_id)
    .bind(session)
    .fetch_optional(pool)
    .await
}

/// The winning claim of `offer_id`, if a bond won it.
pub async fn winner(conn: &mut PgConnection, offer_id: Uuid) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from claims where offer_id = $1 and status = 'WON'"
    )))
    .bind(offer_id)
    .fetch_optional(conn)
    .await
}

/// Sets the bond invoice of a PENDING claim that has none yet; false when the claim ended
/// meanwhile.
pub async fn set_bond(
    conn: &mut PgConnection,
    id: Uuid,
    quote_id: &str,
    invoice: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update claims set bond_quote_id = $2, bond_invoice = $3, bond_invoice_expires_at = $4
          where id = $1 and status = 'PENDING' and bond_quote_id is null",
    )
    .bind(id)
    .bind(quote_id)
    .bind(invoice)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `session` holds a PENDING claim of `offer_id`.
pub async fn has_pending(
    conn: &mut PgConnection,
    offer_id: Uuid,
    session: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from claims
                         where offer_id = $1 and session_id = $2 and status = 'PENDING')",
    )
    .bind(offer_id)
    .bind(session)
    .fetch_one(conn)
    .await
}

/// Sets the stake a claim made.
pub async fn set_stake(conn: &mut PgConnection, id: Uuid, stake: i32) -> Result<(), sqlx::Error> {
    sqlx::query("update claims set stake = $2 where id = $1")
        .bind(id)
        .bind(stake)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends a PENDING claim as `to` (compare-and-set). `due_only` ends it only when its deadline
/// has passed by the database's clock (a lapse). The row if this call ended it.
pub async fn end(
    conn: &mut PgConnection,
    id: Uuid,
    to: ClaimStatus,
    due_only: bool,
) -> Result<Option<Claim>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update claims set status = $2, ended_at = now()
          where id = $1 and status = 'PENDING' and (not $3 or expires_at <= now())
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(to)
    .bind(due_only)
    .fetch_optional(conn)
    .await
}

/// Ends every other PENDING claim of `offer_id` as LOST (the offer left the book); the rows.
pub async fn lose_pending(
    conn: &mut PgConnection,
    offer_id: Uuid,
) -> Result<Vec<Claim>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "update claims set status = 'LOST', ended_at = now()
          where offer_id = $1 and status = 'PENDING'
         returning {COLUMNS}"
    )))
    .bind(offer_id)
    .fetch_all(conn)
    .await
}

/// The PENDING claims of `offer_id` with a bond quote (to ask the mint about before the offer
/// leaves the book).
pub async fn pending_bonds(pool: &PgPool, offer_id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select bond_quote_id from claims
          where offer_id = $1 and status = 'PENDING' and bond_quote_id is not null
          order by created_at",
    )
    .bind(offer_id)
    .fetch_all(pool)
    .await
}

/// PENDING claims of `offer_id` still inside their deadline.
pub async fn pending_count(conn: &mut PgConnection, offer_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from claims
          where offer_id = $1 and status = 'PENDING' and expires_at > now()",
    )
    .bind(offer_id)
    .fetch_one(conn)
    .await
}

/// Claims past their deadline and still PENDING, most overdue first (the expiry sweep lapses
/// them; the alerts count the ones long overdue).
pub async fn overdue(
    pool: &PgPool,
    by: std::time::Duration,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let by = chrono::Duration::from_std(by).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_scalar(
        "select id from claims where status = 'PENDING' and expires_at < now() - $1
          order by expires_at limit $2",
    )
    .bind(by)
    .bind(limit)
    .fetch_all(pool)
    .await
}
