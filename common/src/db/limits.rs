//! Per-session limits on the book (against claim griefing): how many claims a session
//! holds unpaid, how many offers it has open, and the record of claims that lapsed unpaid.
//!
//! The counts are only trustworthy under [`lock_session`]: two requests of one session racing
//! past a count would both see room for one more, so the steps lock the session's row first and
//! count inside the transaction that then claims or inserts.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

fn interval(d: Duration) -> Result<chrono::Duration, sqlx::Error> {
    chrono::Duration::from_std(d).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Locks `session`'s row until the transaction ends, serialising its claims and creations.
pub async fn lock_session(conn: &mut PgConnection, session: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("select 1 from sessions where id = $1 for update")
        .bind(session)
        .fetch_optional(conn)
        .await?;
    Ok(())
}

/// Offers `session` has claimed and not yet paid the bond of (INVOICE_CREATED).
pub async fn unpaid_claims(conn: &mut PgConnection, session: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from offers
          where taker_session_id = $1 and status = 'INVOICE_CREATED'",
    )
    .bind(session)
    .fetch_one(conn)
    .await
}

/// Offers `session` made that are not yet under way or ended: unfunded, in the book, or
/// claimed with the bond unpaid.
pub async fn open_offers(conn: &mut PgConnection, session: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from offers
          where maker_session_id = $1
            and status in ('CREATED', 'INVOICE_PAID', 'INVOICE_CREATED')",
    )
    .bind(session)
    .fetch_one(conn)
    .await
}

/// Records that `session`'s claim of `offer` lapsed unpaid, and forgets the offer's lapses
/// older than `cooldown` (they refuse nothing any more).
pub async fn record_lapsed_claim(
    conn: &mut PgConnection,
    offer: Uuid,
    session: Uuid,
    cooldown: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from claim_lapses where offer_id = $1 and lapsed_at < now() - $2")
        .bind(offer)
        .bind(interval(cooldown)?)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "insert into claim_lapses (offer_id, session_id) values ($1, $2)
         on conflict (offer_id, session_id) do update set lapsed_at = now()",
    )
    .bind(offer)
    .bind(session)
    .execute(conn)
    .await?;
    Ok(())
}

/// Seconds left of `session`'s cooldown on `offer` (its claim of it lapsed less than
/// `cooldown` ago), or `None`.
pub async fn claim_cooldown_left(
    conn: &mut PgConnection,
    offer: Uuid,
    session: Uuid,
    cooldown: Duration,
) -> Result<Option<u64>, sqlx::Error> {
    // Whole seconds, rounded up so a client that waits that long is not refused again.
    let left: Option<i64> = sqlx::query_scalar(
        "select ceil(extract(epoch from lapsed_at + $3 - now()))::bigint from claim_lapses
          where offer_id = $1 and session_id = $2 and lapsed_at > now() - $3",
    )
    .bind(offer)
    .bind(session)
    .bind(interval(cooldown)?)
    .fetch_optional(conn)
    .await?;
    Ok(left.map(|s| u64::try_from(s).unwrap_or(0)))
}
