//! Funding intents: a token about to be received into a session wallet to fund an offer,
//! recorded before the receive, so no cut strands the token. Besides the token's Ys, only the
//! token sealed to the workers' key is stored (the api that wrote it cannot open it), and only
//! while the intent is OPEN: every move out of OPEN clears it in the same statement. State
//! changes are compare-and-set from OPEN.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// How an intent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentEnd {
    /// Received, and it funded the offer.
    Funded,
    /// Received, and refunded to the maker's key (the offer could not take it).
    Refunded,
    /// Never received: the token is still the maker's (or was spent by someone else).
    Abandoned,
}

impl IntentEnd {
    fn as_str(self) -> &'static str {
        match self {
            Self::Funded => "FUNDED",
            Self::Refunded => "REFUNDED",
            Self::Abandoned => "ABANDONED",
        }
    }
}

/// An intent as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FundIntent {
    /// Its id (also the ledger reference `token:<id>`).
    pub id: Uuid,
    /// The offer it funds.
    pub offer_id: Uuid,
    /// The wallet the token goes into.
    pub wallet_id: String,
    /// The token's proofs' Ys (hex, compressed points).
    pub token_ys: Vec<String>,
    /// The token's face value.
    pub value_sats: i64,
    /// OPEN, FUNDED, REFUNDED or ABANDONED.
    pub state: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// The sats received, once received.
    pub received_sats: Option<i64>,
    /// Why it ended without funding the offer (a stable code), if it did.
    pub reason: Option<String>,
    /// When it ended.
    pub settled_at: Option<DateTime<Utc>>,
}

/// A new intent.
#[derive(Debug, Clone)]
pub struct NewIntent<'a> {
    /// Its id.
    pub id: Uuid,
    /// The offer.
    pub offer_id: Uuid,
    /// The wallet.
    pub wallet_id: &'a str,
    /// The token's Ys.
    pub token_ys: &'a [String],
    /// SHA-256 of the sorted Ys, hex.
    pub ys_hash: &'a str,
    /// Face value.
    pub value_sats: u64,
    /// The token sealed to the workers' key, bound to the intent's id.
    pub sealed_token: &'a [u8],
}

const COLUMNS: &str =
    "id, offer_id, wallet_id, token_ys, value_sats, state, created_at, received_sats, reason, settled_at";

/// Why an intent ended without funding its offer: stable codes the maker reads.
pub mod reasons {
    /// The mint refused the token as spent (spent elsewhere meanwhile, or twice offered).
    pub const TOKEN_SPENT: &str = "token_spent";
    /// The mint or the wallet refused the token as invalid.
    pub const TOKEN_INVALID: &str = "token_invalid";
    /// Received, but the offer could no longer take it (funded or moved on meanwhile, or the
    /// mint's fee left less than the deposit): refunded to the maker's payout key.
    pub const OFFER_NOT_FUNDABLE: &str = "offer_not_fundable";
}

/// Records an OPEN intent; false when the same token has a live (not abandoned) intent already.
pub async fn insert(conn: &mut PgConnection, i: &NewIntent<'_>) -> Result<bool, sqlx::Error> {
    let value = i64::try_from(i.value_sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query(
        "insert into fund_intents
           (id, offer_id, wallet_id, token_ys, ys_hash, value_sats, sealed_token)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (ys_hash) where state <> 'ABANDONED' do nothing",
    )
    .bind(i.id)
    .bind(i.offer_id)
    .bind(i.wallet_id)
    .bind(i.token_ys)
    .bind(i.ys_hash)
    .bind(value)
    .bind(i.sealed_token)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The intent if still OPEN, locked for the caller's transaction (waiting for another holder).
pub async fn lock_open(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<FundIntent>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from fund_intents where id = $1 and state = 'OPEN' for update"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The intent if still OPEN and nobody holds it, locked for the caller's transaction.
pub async fn try_lock_open(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<FundIntent>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from fund_intents where id = $1 and state = 'OPEN'
           for update skip locked"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// OPEN intents recorded more than `older_than` ago, oldest first.
pub async fn open_before(
    pool: &PgPool,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from fund_intents
          where state = 'OPEN' and created_at < now() - make_interval(secs => $1)
          order by created_at limit $2",
    )
    .bind(older_than.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// OPEN → `end` (compare-and-set), with the sats received when it was received and why it
/// did not fund the offer, if it did not; the sealed token is cleared with it.
pub async fn settle(
    conn: &mut PgConnection,
    id: Uuid,
    end: IntentEnd,
    received_sats: Option<u64>,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let received = received_sats
        .map(i64::try_from)
        .transpose()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let done = sqlx::query(
        "update fund_intents
            set state = $2, received_sats = $3, reason = $4, settled_at = now(),
                sealed_token = null
          where id = $1 and state = 'OPEN'",
    )
    .bind(id)
    .bind(end.as_str())
    .bind(received)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The sealed token of an OPEN intent the caller holds locked.
pub async fn sealed_token(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("select sealed_token from fund_intents where id = $1 and state = 'OPEN'")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map(Option::flatten)
}

/// An intent of `offer_id`, whatever its state.
pub async fn get(
    pool: &PgPool,
    offer_id: Uuid,
    id: Uuid,
) -> Result<Option<FundIntent>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLUMNS} from fund_intents where id = $1 and offer_id = $2"
    )))
    .bind(id)
    .bind(offer_id)
    .fetch_optional(pool)
    .await
}

/// An intent's state, whatever it is.
pub async fn state(pool: &PgPool, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select state from fund_intents where id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}
