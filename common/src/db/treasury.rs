//! The treasury as PostgreSQL knows it: the balance the workers last read from the treasury
//! wallet, the one-time move of the legacy wallet, and withdrawals. The api reads only this (it
//! opens no wallet); the workers write it. Every state change is a compare-and-set that reports
//! whether it won.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// What the admin view shows of the treasury.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TreasuryRow {
    /// Spendable sats in the treasury wallet as a worker last read them.
    pub balance_sats: i64,
    /// When.
    pub balance_at: Option<DateTime<Utc>>,
    /// Platform fees swept into the treasury, in all (what their payouts were worth).
    pub fees_collected_sats: i64,
    /// When the last platform fee was swept.
    pub last_sweep_at: Option<DateTime<Utc>>,
    /// The legacy wallet's move: PENDING, SENDING or DONE.
    pub legacy_state: String,
    /// Its send's operation id (in the legacy wallet), once recorded.
    pub legacy_operation_id: Option<String>,
    /// Its token, locked to the treasury key, once made.
    pub legacy_token: Option<String>,
    /// Sats it moved into the treasury wallet.
    pub legacy_sats: i64,
    /// When it ended.
    pub legacy_done_at: Option<DateTime<Utc>>,
}

/// The treasury row with the fee totals.
pub async fn get(pool: &PgPool) -> Result<TreasuryRow, sqlx::Error> {
    sqlx::query_as(
        "select t.balance_sats, t.balance_at, t.legacy_state, t.legacy_operation_id,
                t.legacy_token, t.legacy_sats, t.legacy_done_at,
                coalesce(f.sats, 0)::bigint as fees_collected_sats, f.last as last_sweep_at
           from treasury t,
                lateral (select sum(amount_sats) as sats, max(swept_at) as last from payouts
                          where party = 'platform' and state = 'SWEPT') f",
    )
    .fetch_one(pool)
    .await
}

/// Stores the treasury wallet's spendable balance, read just now.
pub async fn set_balance(pool: &PgPool, sats: u64) -> Result<(), sqlx::Error> {
    let sats = i64::try_from(sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query("update treasury set balance_sats = $1, balance_at = now()")
        .bind(sats)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records the legacy move's send operation before anything leaves the legacy wallet, if it
/// is still the one the caller read (`expected`) and the move is not DONE. False: another run
/// got there first; the caller must not confirm its send.
pub async fn legacy_set_operation(
    pool: &PgPool,
    expected: Option<&str>,
    op: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update treasury set legacy_state = 'SENDING', legacy_operation_id = $2,
                legacy_token = null
          where legacy_state <> 'DONE' and legacy_operation_id is not distinct from $1",
    )
    .bind(expected)
    .bind(op)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the legacy move's token (locked to the treasury key) once its send made it.
pub async fn legacy_set_token(pool: &PgPool, op: &str, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update treasury set legacy_token = $2
          where legacy_state = 'SENDING' and legacy_operation_id = $1",
    )
    .bind(op)
    .bind(token)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends the legacy move with `sats` moved; false when it had ended already.
pub async fn legacy_done(pool: &PgPool, sats: u64) -> Result<bool, sqlx::Error> {
    let sats = i64::try_from(sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query(
        "update treasury set legacy_state = 'DONE', legacy_sats = $1, legacy_done_at = now()
          where legacy_state <> 'DONE'",
    )
    .bind(sats)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A withdrawal row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Withdrawal {
    /// Id.
    pub id: Uuid,
    /// `token` or `invoice`.
    pub kind: String,
    /// REQUESTED, SENT, PAID or FAILED.
    pub state: String,
    /// The admin who asked for it.
    pub admin_name: String,
    /// Token: the sats asked for (the fee comes out of them); invoice: its amount.
    pub amount_sats: i64,
    /// Token: the admin's key (x-only hex) it is locked to.
    pub lock_pubkey: Option<String>,
    /// Invoice: the bolt11 to pay.
    pub invoice: Option<String>,
    /// Token: the treasury wallet's send operation, recorded before the send is confirmed.
    pub operation_id: Option<String>,
    /// Token: the token, locked to `lock_pubkey`.
    pub token: Option<String>,
    /// Invoice: the mint's melt quote, recorded before the melt.
    pub quote_id: Option<String>,
    /// Invoice: the quote's Lightning fee reserve.
    pub fee_reserve_sats: Option<i64>,
    /// What the mint charged (input fee; for an invoice the Lightning fee too).
    pub fee_sats: i64,
    /// Invoice: the payment's preimage.
    pub preimage: Option<String>,
    /// Why it failed (nothing left the treasury).
    pub failure: Option<String>,
    /// Asked for.
    pub created_at: DateTime<Utc>,
    /// Ended.
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, kind, state, admin_name, amount_sats, lock_pubkey, invoice, \
    operation_id, token, quote_id, fee_reserve_sats, fee_sats, preimage, failure, created_at, \
    finished_at";

/// What a new withdrawal pays to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A token of this many sats locked to this key (x-only hex).
    Token {
        /// The key.
        pubkey: String,
        /// Sats.
        sats: u64,
    },
    /// This bolt11 invoice, of this many sats.
    Invoice {
        /// The invoice.
        bolt11: String,
        /// Its amount.
        sats: u64,
    },
}

/// Inserts a REQUESTED withdrawal. `Ok(None)` when another one is still REQUESTED (the one
/// in flight; the partial unique index decides, so two requests at once cannot both win).
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    admin: &str,
    to: &Destination,
) -> Result<Option<Withdrawal>, sqlx::Error> {
    let (kind, pubkey, invoice, sats) = match to {
        Destination::Token { pubkey, sats } => ("token", Some(pubkey.as_str()), None, *sats),
        Destination::Invoice { bolt11, sats } => ("invoice", None, Some(bolt11.as_str()), *sats),
    };
    let sats = i64::try_from(sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "insert into treasury_withdrawals (id, kind, admin_name, amount_sats, lock_pubkey, invoice)
         values ($1, $2, $3, $4, $5, $6)
         on conflict ((true)) where state = 'REQUESTED' do nothing
         returning {COLUMNS}"
    )))
    .bind(id)
    .bind(kind)
    .bind(admin)
    .bind(sats)
    .bind(pubkey)
    .bind(invoice)
    .fetch_optional(conn)
    .await
}

/// One withdrawal.
pub async fn get_withdrawal(pool: &PgPool, id: Uuid) -> Result<Option<Withdrawal>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from treasury_withdrawals where id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The newest withdrawals, newest first.
pub async fn recent(pool: &PgPool, limit: i64) -> Result<Vec<Withdrawal>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from treasury_withdrawals order by created_at desc, id limit $1"
    )))
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The withdrawal in flight (REQUESTED), if any.
pub async fn in_flight(pool: &PgPool) -> Result<Option<Withdrawal>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from treasury_withdrawals where state = 'REQUESTED'"
    )))
    .fetch_optional(pool)
    .await
}

/// Records a token withdrawal's send operation before the send is confirmed, if the row is
/// still REQUESTED with the operation the caller read. False: another run owns the send.
pub async fn set_operation(
    pool: &PgPool,
    id: Uuid,
    expected: Option<&str>,
    op: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update treasury_withdrawals set operation_id = $3
          where id = $1 and state = 'REQUESTED' and operation_id is not distinct from $2",
    )
    .bind(id)
    .bind(expected)
    .bind(op)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a token withdrawal SENT with its token and fee; false when it was no longer
/// REQUESTED.
pub async fn mark_sent(
    pool: &PgPool,
    id: Uuid,
    token: &str,
    fee_sats: u64,
) -> Result<bool, sqlx::Error> {
    let fee = i64::try_from(fee_sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query(
        "update treasury_withdrawals set state = 'SENT', token = $2, fee_sats = $3,
                finished_at = now()
          where id = $1 and state = 'REQUESTED' and kind = 'token'",
    )
    .bind(id)
    .bind(token)
    .bind(fee)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records an invoice withdrawal's melt quote before anything is melted, if it has none yet.
/// False: another run recorded its quote first; the caller must use that one.
pub async fn set_quote(
    pool: &PgPool,
    id: Uuid,
    quote_id: &str,
    fee_reserve_sats: u64,
) -> Result<bool, sqlx::Error> {
    let reserve = i64::try_from(fee_reserve_sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query(
        "update treasury_withdrawals set quote_id = $2, fee_reserve_sats = $3
          where id = $1 and state = 'REQUESTED' and kind = 'invoice' and quote_id is null",
    )
    .bind(id)
    .bind(quote_id)
    .bind(reserve)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks an invoice withdrawal PAID; false when it was no longer REQUESTED.
pub async fn mark_paid(
    pool: &PgPool,
    id: Uuid,
    fee_sats: u64,
    preimage: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let fee = i64::try_from(fee_sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query(
        "update treasury_withdrawals set state = 'PAID', fee_sats = $2, preimage = $3,
                finished_at = now()
          where id = $1 and state = 'REQUESTED' and kind = 'invoice'",
    )
    .bind(id)
    .bind(fee)
    .bind(preimage)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a withdrawal FAILED (the caller knows nothing left the treasury); false when it was
/// no longer REQUESTED.
pub async fn mark_failed(pool: &PgPool, id: Uuid, why: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update treasury_withdrawals set state = 'FAILED', failure = $2, finished_at = now()
          where id = $1 and state = 'REQUESTED'",
    )
    .bind(id)
    .bind(why)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
