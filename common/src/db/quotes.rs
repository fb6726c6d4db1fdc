//! Mint quotes the platform's wallets wait on, and their compare-and-set state changes.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::domain::payout::{QuotePurpose, QuoteState};

/// How long past the mint's expiry a quote may still turn out paid (the mint settles an invoice
/// paid at the last second; clocks differ): its watcher keeps looking and its wallet is kept
/// until then.
pub const PAYMENT_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The channel a new quote's id is announced on (on commit), so the workers' NUT-17
/// subscriptions take it in at once rather than at their next refresh.
pub const QUOTES_CHANNEL: &str = "openpleb_quotes";

/// A watched mint quote.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WalletQuote {
    /// The mint's quote id.
    pub quote_id: String,
    /// The wallet the quote belongs to.
    pub wallet_id: String,
    /// Sats the quote asks for.
    pub amount_sats: i64,
    /// Where it is.
    pub state: QuoteState,
    /// Sats minted into the wallet, once ISSUED.
    pub minted_sats: Option<i64>,
    /// When the mint stops accepting payment for it.
    pub expires_at: DateTime<Utc>,
    /// The offer it funds, if any.
    pub offer_id: Option<uuid::Uuid>,
    /// What it pays for, if it funds an offer.
    pub purpose: Option<QuotePurpose>,
    /// Where a late payment is refunded.
    pub refund_pubkey: Option<String>,
    /// The nonce the quote's NUT-20 key derives from (with the wallet's seed), for a quote
    /// made without opening the wallet before the workers' extended public key.
    pub lock_nonce: Option<String>,
    /// Where under the workers' quote-lock branch its NUT-20 key is (`a/b`), for a quote the
    /// api made from the workers' extended public key.
    pub lock_path: Option<String>,
}

/// A quote that funds an offer's deposit or a claim's bond.
#[derive(Debug, Clone)]
pub struct OfferQuote<'a> {
    /// The mint's quote id.
    pub quote_id: &'a str,
    /// The wallet it mints into.
    pub wallet_id: &'a str,
    /// Sats.
    pub amount_sats: u64,
    /// The mint's expiry.
    pub expires_at: DateTime<Utc>,
    /// The offer.
    pub offer_id: uuid::Uuid,
    /// What it pays for.
    pub purpose: QuotePurpose,
    /// The payer's key, for refunding a late payment.
    pub refund_pubkey: &'a str,
    /// Where under the workers' quote-lock branch the quote's NUT-20 key is.
    pub lock_path: Option<String>,
}

/// Records a new quote for an offer.
pub async fn insert_for_offer(
    conn: &mut PgConnection,
    q: &OfferQuote<'_>,
) -> Result<(), sqlx::Error> {
    let amount = i64::try_from(q.amount_sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "with q as (
           insert into wallet_quotes
             (quote_id, wallet_id, amount_sats, expires_at, offer_id, purpose, refund_pubkey,
              lock_path)
           values ($1, $2, $3, $4, $5, $6, $7, $8)
           returning quote_id)
         select pg_notify($9, quote_id) from q",
    )
    .bind(q.quote_id)
    .bind(q.wallet_id)
    .bind(amount)
    .bind(q.expires_at)
    .bind(q.offer_id)
    .bind(q.purpose)
    .bind(q.refund_pubkey)
    .bind(q.lock_path.as_deref())
    .bind(QUOTES_CHANNEL)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a new quote as UNPAID.
pub async fn insert(
    conn: &mut PgConnection,
    quote_id: &str,
    wallet_id: &str,
    amount_sats: u64,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let amount = i64::try_from(amount_sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "with q as (
           insert into wallet_quotes (quote_id, wallet_id, amount_sats, expires_at)
           values ($1, $2, $3, $4)
           returning quote_id)
         select pg_notify($5, quote_id) from q",
    )
    .bind(quote_id)
    .bind(wallet_id)
    .bind(amount)
    .bind(expires_at)
    .bind(QUOTES_CHANNEL)
    .execute(conn)
    .await?;
    Ok(())
}

/// Loads a quote.
pub async fn get(pool: &PgPool, quote_id: &str) -> Result<Option<WalletQuote>, sqlx::Error> {
    sqlx::query_as(
        "select quote_id, wallet_id, amount_sats, state, minted_sats, expires_at, offer_id,
                purpose, refund_pubkey, lock_nonce, lock_path
           from wallet_quotes where quote_id = $1",
    )
    .bind(quote_id)
    .fetch_optional(pool)
    .await
}

/// Moves a quote from one of `from` to `to`; false when it was not in any of them.
pub async fn transition(
    pool: &PgPool,
    quote_id: &str,
    from: &[QuoteState],
    to: QuoteState,
) -> Result<bool, sqlx::Error> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let done = sqlx::query(
        "update wallet_quotes set state = $3, updated_at = now()
          where quote_id = $1 and state = any($2)",
    )
    .bind(quote_id)
    .bind(&from)
    .bind(to)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a quote ISSUED with the sats minted (compare-and-set); the state it was in, or `None`
/// when it was already ISSUED (or ORPHANED). An EXPIRED quote can still turn out paid (the
/// watcher gave up on it, then the mint reported it issued): it is marked too, so its sats are
/// accounted for and refunded instead of stranded.
pub async fn mark_issued(
    conn: &mut PgConnection,
    quote_id: &str,
    minted_sats: u64,
) -> Result<Option<QuoteState>, sqlx::Error> {
    let minted = i64::try_from(minted_sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query_scalar(
        "with old as (
           select quote_id, state from wallet_quotes
            where quote_id = $1 and state in ('UNPAID', 'PAID', 'EXPIRED')
            for update)
         update wallet_quotes q set state = 'ISSUED', minted_sats = $2, updated_at = now()
           from old where q.quote_id = old.quote_id
         returning old.state",
    )
    .bind(quote_id)
    .bind(minted)
    .fetch_optional(conn)
    .await
}

/// Whether a payment of `quote_id` would still move something: its offer waits for this
/// deposit (CREATED), its claim for this bond (PENDING), or it funds no offer. Once false it
/// stays false (offers and claims do not go back), and a payment can only be refunded.
pub async fn awaited(pool: &PgPool, quote_id: &str) -> Result<bool, sqlx::Error> {
    let awaited: Option<bool> = sqlx::query_scalar(
        "select case
                  when q.offer_id is null then true
                  when q.purpose = 'deposit' then exists (
                    select 1 from offers o
                     where o.id = q.offer_id and o.status = 'CREATED'
                       and o.deposit_quote_id = q.quote_id)
                  when q.purpose = 'bond' then exists (
                    select 1 from claims c
                     where c.bond_quote_id = q.quote_id and c.status = 'PENDING')
                  else true
                end
           from wallet_quotes q where q.quote_id = $1",
    )
    .bind(quote_id)
    .fetch_optional(pool)
    .await?;
    Ok(awaited.unwrap_or(false))
}

/// A place in the list of [`stale_open`] quotes: the last one a page returned.
pub type StaleAfter = (DateTime<Utc>, String);

/// Up to `limit` quotes still waiting whose last change is older than `stale_secs`, oldest
/// first, after `after` (for the sweep, a page at a time: most stale quotes are watched, their
/// next look far off, and a fixed first page of them would hide every forgotten one behind).
pub async fn stale_open(
    pool: &PgPool,
    stale_secs: i64,
    after: Option<&StaleAfter>,
    limit: i64,
) -> Result<Vec<StaleAfter>, sqlx::Error> {
    let rows: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "select quote_id, updated_at from wallet_quotes
          where state in ('UNPAID', 'PAID') and updated_at < now() - make_interval(secs => $1)
            and ($2::timestamptz is null or (updated_at, quote_id) > ($2, $3))
          order by updated_at, quote_id limit $4",
    )
    .bind(stale_secs as f64)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1.as_str()).unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(q, at)| (at, q)).collect())
}

/// Quotes still waiting for payment (for the NUT-17 subscription), newest first.
pub async fn open_ids(pool: &PgPool, limit: i64) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select quote_id from wallet_quotes
          where state = 'UNPAID' and expires_at > now() - interval '5 minutes'
          order by created_at desc limit $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
