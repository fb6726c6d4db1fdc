//! Payouts: recorded (who, how much, from which wallet, locked to which key) before any ecash
//! moves, then released by the worker. Recording twice is impossible (unique per offer, party,
//! purpose and source wallet).

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{ledger, offers::Offer};
use crate::domain::money::{allocate, payouts as money_table, Outcome, Party, Source};
use crate::jobs::{enqueue, queues, ReleasePayouts, Schedule};
use crate::wallet::WalletId;

/// A payout row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Payout {
    /// Id.
    pub id: Uuid,
    /// Offer.
    pub offer_id: Uuid,
    /// `maker`, `taker` or `platform`.
    pub party: String,
    /// `settlement`, `refund` or `late_refund`.
    pub purpose: String,
    /// Paying wallet.
    pub source_wallet: String,
    /// Sats.
    pub amount_sats: i64,
    /// Key the token is locked to (none for the platform's own share).
    pub lock_pubkey: Option<String>,
    /// RECORDED, RELEASED or SWEPT.
    pub state: String,
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
}

const COLUMNS: &str = "id, offer_id, party, purpose, source_wallet, amount_sats, lock_pubkey, \
    state, send_operation_id, token, fee_sats, created_at, released_at";

/// The stored form of an outcome.
pub fn outcome_str(o: Outcome) -> &'static str {
    match o {
        Outcome::Completed => "COMPLETED",
        Outcome::RefundMaker => "REFUND_MAKER",
        Outcome::MakerWins => "MAKER_WINS",
        Outcome::TakerWins => "TAKER_WINS",
        Outcome::Return => "RETURN",
        Outcome::Split => "SPLIT",
    }
}

/// One payout to record.
#[derive(Debug, Clone)]
pub struct NewPayout<'a> {
    /// Offer.
    pub offer_id: Uuid,
    /// Recipient.
    pub party: Party,
    /// `settlement`, `refund` or `late_refund`.
    pub purpose: &'a str,
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
pub async fn record_one(conn: &mut PgConnection, p: &NewPayout<'_>) -> Result<(), sqlx::Error> {
    let amount = i64::try_from(p.sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "insert into payouts
            (id, offer_id, party, purpose, source_wallet, amount_sats, lock_pubkey, ref)
         values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict do nothing",
    )
    .bind(Uuid::new_v4())
    .bind(p.offer_id)
    .bind(p.party.as_str())
    .bind(p.purpose)
    .bind(p.source_wallet.as_str())
    .bind(amount)
    .bind(p.lock_pubkey)
    .bind(p.reference)
    .execute(conn)
    .await?;
    Ok(())
}

/// Enqueues the release of an offer's recorded payouts (deduplicated per offer and round).
pub async fn enqueue_release(conn: &mut PgConnection, offer_id: Uuid) -> Result<(), sqlx::Error> {
    enqueue(
        conn,
        queues::RELEASE_PAYOUTS,
        &ReleasePayouts { offer_id },
        Schedule {
            max_attempts: Some(25),
            ..Schedule::default()
        },
    )
    .await
    .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    Ok(())
}

/// Records the settlement of `offer` by the money table and enqueues its release, inside the
/// caller's transaction (the one that moved the offer to its final state).
/// `taker_bond_paid` says whether the taker's wallet holds the bond.
pub async fn record_settlement(
    conn: &mut PgConnection,
    offer: &Offer,
    outcome: Outcome,
    taker_bond_paid: bool,
) -> Result<(), sqlx::Error> {
    let amounts = offer.amounts();
    let owed = money_table(outcome, &amounts);
    let deposit = amounts.deposit().unwrap_or(0);
    let bond = if taker_bond_paid {
        amounts.taker_bond
    } else {
        0
    };
    let plan = allocate(&owed, deposit, bond)
        .ok_or_else(|| sqlx::Error::Protocol("payouts exceed the escrow".to_owned()))?;
    let maker_wallet = WalletId::session(offer.maker_session_id);
    let taker_wallet = offer.taker_session_id.map(WalletId::session);
    let purpose = match outcome {
        Outcome::RefundMaker => "refund",
        _ => "settlement",
    };
    for a in plan {
        let source = match a.source {
            Source::MakerWallet => maker_wallet.clone(),
            Source::TakerWallet => taker_wallet
                .clone()
                .ok_or_else(|| sqlx::Error::Protocol("bond without a taker".to_owned()))?,
        };
        let lock = match a.party {
            Party::Maker => Some(offer.maker_payout_pubkey.as_str()),
            Party::Taker => offer.taker_payout_pubkey.as_deref(),
            Party::Platform => None,
        };
        if a.party == Party::Taker && lock.is_none() {
            return Err(sqlx::Error::Protocol(
                "taker payout without a key".to_owned(),
            ));
        }
        let payout = NewPayout {
            offer_id: offer.id,
            party: a.party,
            purpose,
            source_wallet: &source,
            sats: a.sats,
            lock_pubkey: lock,
            reference: "",
        };
        record_one(conn, &payout).await?;
    }
    super::offers::set_outcome(conn, offer.id, outcome_str(outcome)).await?;
    enqueue_release(conn, offer.id).await
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

/// Whether a release job for `offer_id` is waiting, running, or due to be retried: the
/// reconciliation's re-enqueue of an overdue release adds one only when none is.
pub async fn release_queued(pool: &PgPool, offer_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (
            select 1 from apalis.jobs
             where job_type = $1
               and (status in ('Pending', 'Queued', 'Running')
                    or (status = 'Failed' and attempts < max_attempts))
               -- CASE fixes the order: only release jobs' payloads are decoded.
               and case when job_type = $1
                        then convert_from(job, 'UTF8')::jsonb ->> 'offer_id' end = $2::text)",
    )
    .bind(queues::RELEASE_PAYOUTS)
    .bind(offer_id)
    .fetch_one(pool)
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
/// `fee_sats` is the mint fee the send paid out of the payout: the token is worth the payout's
/// amount minus it, and the ledger says so (the token's value out, the fee out as `mint_fee`).
pub async fn mark_released(
    pool: &PgPool,
    p: &Payout,
    token: &str,
    fee_sats: u64,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
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
    if done.rows_affected() == 1 && p.purpose != "sweep" {
        let kind = if p.party == "platform" {
            "platform_fee"
        } else {
            "payout"
        };
        let amount = u64::try_from(p.amount_sats).unwrap_or(0);
        let sent = amount.checked_sub(fee_sats).ok_or_else(|| {
            sqlx::Error::Protocol(format!("payout {}: fee exceeds the amount", p.id))
        })?;
        ledger::record(&mut tx, p.offer_id, kind, "out", sent, &p.id.to_string()).await?;
        if fee_sats > 0 {
            ledger::record(
                &mut tx,
                p.offer_id,
                "mint_fee",
                "out",
                fee_sats,
                &p.id.to_string(),
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a platform payout swept into the treasury.
pub async fn mark_swept(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("update payouts set state = 'SWEPT' where id = $1 and state = 'RELEASED'")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
