//! Anonymous sessions, known only by the hash of the BAT that currently authenticates them.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::role::Role;

/// The `NOTIFY` channel for sessions that ended (`ended:<session id>`) or moved onto a new BAT
/// (`renewed:<session id>`): every api process listens and forgets what it cached of the
/// session. Sent in the transaction that makes the change, so delivered only on its commit.
/// Heard by the api processes only, never by clients.
pub const SESSIONS_CHANNEL: &str = "openpleb_sessions";

/// A session row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    /// Id (random; never shown to anyone but the session itself).
    pub id: Uuid,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Ends, unless renewed.
    pub expires_at: DateTime<Utc>,
    /// Ended by logout.
    pub ended_at: Option<DateTime<Utc>>,
}

/// Records a BAT as about to be spent at the mint, committed at once so its unique key makes
/// any other use of it a replay while the spend runs with no transaction open; false if it
/// was recorded before (a replay).
pub async fn reserve_bat(pool: &PgPool, bat_hash: &[u8; 32]) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("insert into bat_redemptions (bat_hash) values ($1) on conflict do nothing")
            .bind(bat_hash.as_slice())
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets a reserved BAT the mint refused (so did not spend); a spent one is never forgotten.
pub async fn release_bat(pool: &PgPool, bat_hash: &[u8; 32]) -> Result<(), sqlx::Error> {
    sqlx::query("delete from bat_redemptions where bat_hash = $1 and spent_at is null")
        .bind(bat_hash.as_slice())
        .execute(pool)
        .await?;
    Ok(())
}

/// Records that the mint spent a reserved BAT; false if it was not reserved and unspent.
pub async fn mark_bat_spent(
    conn: &mut PgConnection,
    bat_hash: &[u8; 32],
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update bat_redemptions set spent_at = now() where bat_hash = $1 and spent_at is null",
    )
    .bind(bat_hash.as_slice())
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Opens a session authenticated by `bat_hash` until `expires_at`.
pub async fn open(
    conn: &mut PgConnection,
    bat_hash: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<Session, sqlx::Error> {
    sqlx::query_as(
        "insert into sessions (id, bat_hash, expires_at) values ($1, $2, $3)
         returning id, created_at, expires_at, ended_at",
    )
    .bind(Uuid::new_v4())
    .bind(bat_hash.as_slice())
    .bind(expires_at)
    .fetch_one(conn)
    .await
}

/// The session a BAT authenticates, live or not.
pub async fn by_bat(pool: &PgPool, bat_hash: &[u8; 32]) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as("select id, created_at, expires_at, ended_at from sessions where bat_hash = $1")
        .bind(bat_hash.as_slice())
        .fetch_optional(pool)
        .await
}

/// One session by id, live or not.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Session>, sqlx::Error> {
    sqlx::query_as("select id, created_at, expires_at, ended_at from sessions where id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Moves a live session onto a new BAT with a new expiry; `None` if it is no longer live.
/// Announced on [`SESSIONS_CHANNEL`] when the transaction commits.
pub async fn renew(
    conn: &mut PgConnection,
    id: Uuid,
    new_bat_hash: &[u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<Option<Session>, sqlx::Error> {
    let renewed: Option<Session> = sqlx::query_as(
        "update sessions set bat_hash = $2, expires_at = $3
          where id = $1 and ended_at is null and expires_at > now()
         returning id, created_at, expires_at, ended_at",
    )
    .bind(id)
    .bind(new_bat_hash.as_slice())
    .bind(expires_at)
    .fetch_optional(&mut *conn)
    .await?;
    if renewed.is_some() {
        sqlx::query("select pg_notify($1, $2)")
            .bind(SESSIONS_CHANNEL)
            .bind(format!("renewed:{id}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(renewed)
}

/// Ends a live session (logout); false if it had already ended. Announced on
/// [`SESSIONS_CHANNEL`] in the same statement.
pub async fn end(pool: &PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query(
        "with e as (
            update sessions set ended_at = now() where id = $1 and ended_at is null returning id)
         select pg_notify($2, 'ended:' || id::text) from e",
    )
    .bind(id)
    .bind(SESSIONS_CHANNEL)
    .fetch_optional(pool)
    .await?;
    Ok(ended.is_some())
}

/// Ended or expired sessions whose wallet may be cleaned up: no offer of theirs is still
/// under way (as maker or taker), no payout from their wallet waits for release, and no quote
/// of their wallet can still be paid (a paid quote not yet minted, or an unpaid one before its
/// expiry plus [`super::quotes::PAYMENT_GRACE`]): an invoice of an ended offer may still be
/// paid, and only its wallet can mint the payment so it can be refunded.
pub async fn cleanup_candidates(pool: &PgPool, limit: i64) -> Result<Vec<Uuid>, sqlx::Error> {
    let grace = chrono::Duration::from_std(super::quotes::PAYMENT_GRACE)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select s.id from sessions s where {CLEANUP_CANDIDATE} order by s.expires_at limit $1"
    )))
    .bind(limit)
    .bind(grace)
    .fetch_all(pool)
    .await
}

/// What makes session `s` a cleanup candidate (`$2`: the payment grace).
const CLEANUP_CANDIDATE: &str = "s.wallet_removed_at is null
    and (s.ended_at is not null or s.expires_at < now())
    and not exists (
        select 1 from offers o
         where (o.maker_session_id = s.id or o.taker_session_id = s.id)
           and o.status not in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED'))
    and not exists (
        select 1 from payouts p
         where p.source_wallet = session_wallet_id(s.id)
           and p.state = 'RECORDED')
    and not exists (
        select 1 from wallet_quotes q
         where q.wallet_id = session_wallet_id(s.id)
           and (q.state = 'PAID'
                or (q.state = 'UNPAID' and q.expires_at > now() - $2)))
    and not exists (
        select 1 from fund_intents f
         where f.wallet_id = session_wallet_id(s.id) and f.state = 'OPEN')";

/// Claims up to `limit` cleanup candidates (as [`cleanup_candidates`]) that no other run has
/// claimed, for `hold`: runs on several workers at once take different sessions. A claim is
/// only a hint between runs (the wallet's lease is what guards the file); the run gives its
/// claims back with [`release_cleanup_claims`], and one that died loses them after `hold`.
pub async fn claim_cleanup_candidates(
    pool: &PgPool,
    limit: i64,
    hold: std::time::Duration,
) -> Result<Vec<Uuid>, sqlx::Error> {
    let grace = chrono::Duration::from_std(super::quotes::PAYMENT_GRACE)
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let hold = chrono::Duration::from_std(hold).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "update sessions set cleanup_claimed_until = now() + $3
          where id in (
            select s.id from sessions s
             where {CLEANUP_CANDIDATE}
               and (s.cleanup_claimed_until is null or s.cleanup_claimed_until < now())
             order by s.expires_at
             limit $1
             for update of s skip locked)
          returning id"
    )))
    .bind(limit)
    .bind(grace)
    .bind(hold)
    .fetch_all(pool)
    .await
}

/// Gives back a cleanup run's claims.
pub async fn release_cleanup_claims(pool: &PgPool, sessions: &[Uuid]) -> Result<(), sqlx::Error> {
    sqlx::query("update sessions set cleanup_claimed_until = null where id = any($1)")
        .bind(sessions)
        .execute(pool)
        .await?;
    Ok(())
}

/// Whether a trade of the session (as maker or taker) went through a dispute (an issue was
/// raised) or an admin action named its offer: such a session's wallet is archived before the
/// cleanup deletes it.
pub async fn disputed_or_admin_touched(pool: &PgPool, session: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (
            select 1 from offers o
             where (o.maker_session_id = $1 or o.taker_session_id = $1)
               and (exists (select 1 from disputes d where d.offer_id = o.id)
                    or exists (select 1 from admin_actions a where a.target = o.id::text)))",
    )
    .bind(session)
    .fetch_one(pool)
    .await
}

/// The payout key of the session's most recent offer or claim, with the offer and the
/// session's role (a claim that never won still gave a key its bond's refund locks to).
pub async fn last_payout_key(
    pool: &PgPool,
    session: Uuid,
) -> Result<Option<(Uuid, Role, String)>, sqlx::Error> {
    sqlx::query_as(
        "select id, role, key from (
            select id, created_at,
                   case when maker_session_id = $1 then 'maker' else 'taker' end as role,
                   case when maker_session_id = $1 then maker_payout_pubkey
                        else taker_payout_pubkey end as key
              from offers
             where maker_session_id = $1 or taker_session_id = $1
            union all
            select offer_id, created_at, 'taker', payout_pubkey
              from claims where session_id = $1) mine
          order by created_at desc limit 1",
    )
    .bind(session)
    .fetch_optional(pool)
    .await
    .map(|r: Option<(Uuid, Role, Option<String>)>| {
        r.and_then(|(id, role, key)| key.map(|k| (id, role, k)))
    })
}

/// Records that an ended session's wallet is gone (deleted, or never created).
///
/// Returns the session's lifetime in seconds (opening to its end or expiry, for the metrics),
/// or `None` when it was already marked.
pub async fn mark_wallet_removed(pool: &PgPool, id: Uuid) -> Result<Option<f64>, sqlx::Error> {
    sqlx::query_scalar(
        "update sessions set wallet_removed_at = now()
          where id = $1 and wallet_removed_at is null
          returning extract(epoch from least(coalesce(ended_at, expires_at), now()) - created_at)::float8",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}
