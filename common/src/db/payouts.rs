//! Payouts: recorded (who, how much, from which wallet, locked to which key) before any ecash
//! moves, then released by the worker. Recording twice is impossible (unique per offer, party,
//! purpose and source wallet).

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection, PgPool};
use uuid::Uuid;

use super::ledger::{self, LedgerKind};
use crate::domain::money::Party;
use crate::domain::payout::{PayoutPurpose, PayoutState};
use crate::wallet::WalletId;

/// A payout row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Payout {
    /// Id.
    pub id: Uuid,
    /// Offer.
    pub offer_id: Uuid,
    /// Recipient.
    pub party: Party,
    /// Why it is owed.
    pub purpose: PayoutPurpose,
    /// Paying wallet.
    pub source_wallet: String,
    /// Sats.
    pub amount_sats: i64,
    /// Key the token is locked to (none for the platform's own share).
    pub lock_pubkey: Option<String>,
    /// Where it is.
    pub state: PayoutState,
    /// The wallet send operation, once started.
    pub send_operation_id: Option<String>,
    /// The token, once released.
    pub token: Option<String>,
    /// Mint fees the send cost.
    pub fee_sats: i64,
    /// Recorded.
    pub created_at: DateTime<Utc>,
    /// Released.
    pub released_at: Option<DateTime<Utc>>,
    /// What it answers (the quote a late payment came through), or empty.
    #[sqlx(rename = "ref")]
    pub reference: String,
}

const COLUMNS: &str = "id, offer_id, party, purpose, source_wallet, amount_sats, lock_pubkey, \
    state, send_operation_id, token, fee_sats, created_at, released_at, ref";

/// One payout to record.
#[derive(Debug, Clone)]
pub struct NewPayout<'a> {
    /// Offer.
    pub offer_id: Uuid,
    /// Recipient.
    pub party: Party,
    /// Why it is owed.
    pub purpose: PayoutPurpose,
    /// Paying wallet.
    pub source_wallet: &'a WalletId,
    /// Sats.
    pub sats: u64,
    /// Lock key (none for the platform).
    pub lock_pubkey: Option<&'a str>,
    /// What it answers (e.g. a late quote), for uniqueness.
    pub reference: &'a str,
}

/// Records one payout row; recording the same payout again is a no-op.
pub async fn record(conn: &mut PgConnection, p: &NewPayout<'_>) -> Result<(), sqlx::Error> {
    let amount = i64::try_from(p.sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "insert into payouts
            (id, offer_id, party, purpose, source_wallet, amount_sats, lock_pubkey, ref)
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing",
    )
    .bind(Uuid::new_v4())
    .bind(p.offer_id)
    .bind(p.party)
    .bind(p.purpose)
    .bind(p.source_wallet.as_str())
    .bind(amount)
    .bind(p.lock_pubkey)
    .bind(p.reference)
    .execute(conn)
    .await?;
    Ok(())
}

/// Payouts of an offer still to release, oldest first.
pub async fn pending(pool: &PgPool, offer_id: Uuid) -> Result<Vec<Payout>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from payouts where offer_id = $1 and state = 'RECORDED'
          order by created_at, id"
    )))
    .bind(offer_id)
    .fetch_all(pool)
    .await
}

/// One payout.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Payout>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from payouts where id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Released platform payouts not yet swept into the treasury.
pub async fn unswept(pool: &PgPool, offer_id: Uuid) -> Result<Vec<Payout>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from payouts
          where offer_id = $1 and party = 'platform' and state = 'RELEASED'"
    )))
    .bind(offer_id)
    .fetch_all(pool)
    .await
}

/// All payouts of an offer.
pub async fn for_offer(pool: &PgPool, offer_id: Uuid) -> Result<Vec<Payout>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from payouts where offer_id = $1 order by created_at, id"
    )))
    .bind(offer_id)
    .fetch_all(pool)
    .await
}

/// Stores the send operation of a payout about to be released, if the payout is still
/// unreleased and its operation is still `expected` (what the caller read). False means another
/// run got there first and owns the release: the caller must not confirm its send.
pub async fn set_operation(
    pool: &PgPool,
    id: Uuid,
    expected: Option<&str>,
    op: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update payouts set send_operation_id = $3
          where id = $1 and state = 'RECORDED' and send_operation_id is not distinct from $2",
    )
    .bind(id)
    .bind(expected)
    .bind(op)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a payout released with its token, and writes its ledger entries, in one transaction.
/// `fee_sats` is the mint fee the send paid out of the payout (the caller checked it is not more
/// than the payout): the token is worth the payout's amount minus it, and the ledger says so
/// (the token's value out, the fee out as `mint_fee`). False when another run released it.
pub async fn mark_released(
    conn: &mut PgConnection,
    p: &Payout,
    token: &str,
    fee_sats: u64,
) -> Result<bool, sqlx::Error> {
    let mut tx = conn.begin().await?;
    let fee = i64::try_from(fee_sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query(
        "update payouts set state = 'RELEASED', token = $2, fee_sats = $3, released_at = now()
          where id = $1 and state = 'RECORDED'",
    )
    .bind(p.id)
    .bind(token)
    .bind(fee)
    .execute(&mut *tx)
    .await?;
    // A sweep returns sats that never entered the ledger, so it does not leave it either.
    if done.rows_affected() == 1 && p.purpose != PayoutPurpose::Sweep {
        let kind = if p.party == Party::Platform {
            LedgerKind::PlatformFee
        } else {
            LedgerKind::Payout
        };
        let amount = u64::try_from(p.amount_sats).unwrap_or(0);
        let sent = amount.saturating_sub(fee_sats);
        let reference = p.id.to_string();
        ledger::record(&mut tx, p.offer_id, kind, sent, &reference).await?;
        if fee_sats > 0 {
            ledger::record(
                &mut tx,
                p.offer_id,
                LedgerKind::MintFee,
                fee_sats,
                &reference,
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a released platform payout as spent by someone other than the treasury; false when
/// it was no longer RELEASED (swept or marked by another run).
pub async fn mark_spent_elsewhere(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update payouts set state = 'SPENT_ELSEWHERE', spent_elsewhere_at = now()
          where id = $1 and state = 'RELEASED'",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a platform payout swept into the treasury.
pub async fn mark_swept(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update payouts set state = 'SWEPT', swept_at = now() where id = $1 and state = 'RELEASED'",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}
