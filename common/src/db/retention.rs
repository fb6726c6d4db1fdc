//! Deleting what grows without bound once nothing reads it any more: events of long-settled
//! offers, registration nonces past any timestamp a registration could still carry, old cron
//! slot claims, and reconciliation checks of wallets that are gone. Each delete takes at most
//! `batch` rows, so one statement never holds locks for long; the retention job repeats it
//! until a batch comes back short. (Finished jobs are pruned by
//! [`crate::jobs::queries::prune_finished`], beside the other queries on apalis' tables.)

use std::time::Duration;

use sqlx::PgPool;

use crate::domain::registration::TIMESTAMP_WINDOW_MS;

fn interval(d: Duration) -> Result<chrono::Duration, sqlx::Error> {
    chrono::Duration::from_std(d).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// How long a registration nonce must be kept: a registration is accepted while its timestamp
/// is within the window of now, either side, and its nonce was stored when it was accepted, so
/// a replay of it can arrive up to two windows after the nonce's `seen_at`. A minute more
/// covers clock skew between api processes.
pub fn nonce_lifetime() -> Duration {
    let window = Duration::from_millis(u64::try_from(TIMESTAMP_WINDOW_MS).unwrap_or(60_000));
    window * 2 + Duration::from_secs(60)
}

/// Deletes up to `batch` events of offers that have been in a final state (COMPLETED,
/// EXPIRED, RESOLVED, CANCELLED) for longer than `older_than`. Events of live offers, and of
/// offers settled recently (disputes and audits still read them), stay.
pub async fn prune_offer_events(
    pool: &PgPool,
    older_than: Duration,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from offer_events where id in (
            select e.id from offer_events e join offers o on o.id = e.offer_id
             where o.status in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED')
               and o.state_entered_at < now() - $1
             limit $2)",
    )
    .bind(interval(older_than)?)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes up to `batch` registration nonces older than [`nonce_lifetime`].
pub async fn prune_nonces(pool: &PgPool, batch: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from registration_nonces where nonce in (
            select nonce from registration_nonces where seen_at < now() - $1 limit $2)",
    )
    .bind(interval(nonce_lifetime())?)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes up to `batch` cron slot claims older than `older_than`. Workers only ever claim the
/// slot nearest to now, so an old claim decides nothing any more.
pub async fn prune_cron_slots(
    pool: &PgPool,
    older_than: Duration,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from cron_slots where (job, slot) in (
            select job, slot from cron_slots where slot < now() - $1 limit $2)",
    )
    .bind(interval(older_than)?)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes up to `batch` reconciliation checks of session wallets the cleanup removed (the
/// cleanup forgets them itself; this catches a check written by a reconciliation that raced
/// the removal).
pub async fn prune_wallet_checks(pool: &PgPool, batch: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from wallet_checks where wallet_id in (
            select c.wallet_id from wallet_checks c
              join sessions s on c.wallet_id = session_wallet_id(s.id)
             where s.wallet_removed_at is not null
             limit $1)",
    )
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes the trade data of up to `batch` offers final (COMPLETED, EXPIRED, RESOLVED,
/// CANCELLED) for longer than `older_than`: the payment details, the receipt's image and note,
/// the evidence images and the dispute messages' text. The rows stay with when they were
/// emptied, the record that the data existed; payouts and the ledger are not touched. An
/// offer still in dispute is not final, so its data stays until the dispute is resolved and
/// the period has passed. Returns how many offers it emptied.
pub async fn prune_trade_data(
    pool: &PgPool,
    older_than: Duration,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    // One statement: the offers are picked and locked (others running the job skip them), and
    // their data goes with them or not at all.
    let done = sqlx::query(
        "with picked as (
            select id from offers
             where trade_data_deleted_at is null
               and status in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED')
               and state_entered_at < now() - $1
             order by state_entered_at
             limit $2
               for update skip locked),
         receipts_gone as (
            update receipts set image = null, note = null, note_sealed = null, deleted_at = now()
             where offer_id in (select id from picked) and deleted_at is null),
         evidence_gone as (
            update dispute_evidence set image = null, deleted_at = now()
             where offer_id in (select id from picked) and deleted_at is null),
         messages_gone as (
            update dispute_messages set body = null, body_sealed = null, deleted_at = now()
             where offer_id in (select id from picked) and deleted_at is null)
         update offers set payment_details = null, payment_details_sealed = null,
                trade_data_deleted_at = now()
          where id in (select id from picked)",
    )
    .bind(interval(older_than)?)
    .bind(batch)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
