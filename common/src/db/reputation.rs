//! Reputation storage: the blinded outputs kept with an offer (and their signatures once
//! signed), the staked tokens' `Y`s, and the stake counts on the offer.
//!
//! A taker's outputs belong to its claim: several claimants send theirs for one offer, and the
//! offer's taker outputs are the winning claim's (or, for rows older than claims, those with
//! no claim).

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::role::Role;

/// Why an output is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Signed when the party earns.
    Earn,
    /// Signed when the party's stake comes back.
    Return,
}

impl Purpose {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Earn => "earn",
            Self::Return => "return",
        }
    }
}

/// A pending output, to sign or void.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingOutput {
    /// Row id.
    pub id: i64,
    /// `earn` or `return`.
    pub purpose: String,
    /// Keyset id (hex).
    pub keyset_id: String,
    /// B_ (compressed point, hex).
    pub blinded_secret: String,
}

/// A signed output.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SignedOutput {
    /// `earn` or `return`.
    pub purpose: String,
    /// B_ (compressed point, hex).
    pub blinded_secret: String,
    /// The blind signature with its DLEQ proof (NUT-00/12 JSON).
    pub signature: serde_json::Value,
}

/// What an offer's outputs of a role are: the maker's, or the winning claim's.
const OF_ROLE: &str = "offer_id = $1 and role = $2
    and (role = 'maker' or claim_id is null
         or claim_id in (select id from claims where offer_id = $1 and status = 'WON'))";

/// Keeps an output of `role` on `offer_id` (of `claim_id`, for a taker's). False when this B_
/// was sent before (anywhere).
pub async fn add_output(
    conn: &mut PgConnection,
    offer_id: Uuid,
    role: Role,
    claim_id: Option<Uuid>,
    purpose: Purpose,
    keyset_id: &str,
    blinded_secret: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into reputation_outputs
           (offer_id, role, claim_id, purpose, keyset_id, blinded_secret)
         values ($1, $2, $3, $4, $5, $6) on conflict (blinded_secret) do nothing",
    )
    .bind(offer_id)
    .bind(role)
    .bind(claim_id)
    .bind(purpose.as_str())
    .bind(keyset_id)
    .bind(blinded_secret)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a staked token's Y. False when it was staked before.
///
/// The time is kept to the day: the stake is recorded in the transaction that creates the
/// offer or claim, whose exact time the offer keeps, and an exact time here would tell which
/// offer each token was staked on.
pub async fn spend(conn: &mut PgConnection, y: &str, keyset_id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into reputation_spent (y, keyset_id, spent_at)
         values ($1, $2, date_trunc('day', now())) on conflict do nothing",
    )
    .bind(y)
    .bind(keyset_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets the stake count of `role` on an offer.
pub async fn set_stake(
    conn: &mut PgConnection,
    offer_id: Uuid,
    role: Role,
    count: i32,
) -> Result<(), sqlx::Error> {
    let column = match role {
        Role::Maker => "maker_stake",
        Role::Taker => "taker_stake",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update offers set {column} = $2 where id = $1"
    )))
    .bind(offer_id)
    .bind(count)
    .execute(conn)
    .await?;
    Ok(())
}

/// The pending outputs of `role` on an offer, locked for the caller's transaction.
pub async fn pending(
    conn: &mut PgConnection,
    offer_id: Uuid,
    role: Role,
) -> Result<Vec<PendingOutput>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select id, purpose, keyset_id, blinded_secret from reputation_outputs
          where {OF_ROLE} and state = 'pending'
          order by id for update"
    )))
    .bind(offer_id)
    .bind(role)
    .fetch_all(conn)
    .await
}

/// The pending outputs of one claim, locked for the caller's transaction.
pub async fn pending_of_claim(
    conn: &mut PgConnection,
    claim_id: Uuid,
) -> Result<Vec<PendingOutput>, sqlx::Error> {
    sqlx::query_as(
        "select id, purpose, keyset_id, blinded_secret from reputation_outputs
          where claim_id = $1 and state = 'pending'
          order by id for update",
    )
    .bind(claim_id)
    .fetch_all(conn)
    .await
}

/// Stores an output's signature.
pub async fn mark_signed(
    conn: &mut PgConnection,
    id: i64,
    signature: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update reputation_outputs set state = 'signed', signature = $2
          where id = $1 and state = 'pending'",
    )
    .bind(id)
    .bind(signature)
    .execute(conn)
    .await?;
    Ok(())
}

/// Voids an output: it will never be signed.
pub async fn mark_void(conn: &mut PgConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("update reputation_outputs set state = 'void' where id = $1 and state = 'pending'")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The signed outputs of `role` on an offer.
pub async fn signed(
    pool: &PgPool,
    offer_id: Uuid,
    role: Role,
) -> Result<Vec<SignedOutput>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select purpose, blinded_secret, signature from reputation_outputs
          where {OF_ROLE} and state = 'signed' order by id"
    )))
    .bind(offer_id)
    .bind(role)
    .fetch_all(pool)
    .await
}

/// The signed outputs among the blinded secrets `b`, wherever they were sent.
pub async fn signed_by_outputs(
    pool: &PgPool,
    b: &[String],
) -> Result<Vec<SignedOutput>, sqlx::Error> {
    sqlx::query_as(
        "select purpose, blinded_secret, signature from reputation_outputs
          where blinded_secret = any($1) and state = 'signed' order by id",
    )
    .bind(b)
    .fetch_all(pool)
    .await
}
