//! The sat ledger: every movement per offer, and the audit that checks it balances.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// What a ledger entry is; each kind moves sats one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerKind {
    /// A maker's deposit, in.
    Deposit,
    /// A taker's bond, in.
    Bond,
    /// A token paid to a party, out.
    Payout,
    /// The platform's share, out.
    PlatformFee,
    /// What the mint's input fees took, out.
    MintFee,
}

impl LedgerKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Deposit => "deposit",
            Self::Bond => "bond",
            Self::Payout => "payout",
            Self::PlatformFee => "platform_fee",
            Self::MintFee => "mint_fee",
        }
    }

    fn direction(self) -> &'static str {
        match self {
            Self::Deposit | Self::Bond => "in",
            Self::Payout | Self::PlatformFee | Self::MintFee => "out",
        }
    }
}

/// Records one movement; repeating the same `(offer, kind, ref)` is a no-op.
pub async fn record(
    conn: &mut PgConnection,
    offer_id: Uuid,
    kind: LedgerKind,
    amount_sats: u64,
    reference: &str,
) -> Result<(), sqlx::Error> {
    let amount = i64::try_from(amount_sats).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "insert into ledger_entries (offer_id, kind, direction, amount_sats, ref)
         values ($1, $2, $3, $4, $5) on conflict do nothing",
    )
    .bind(offer_id)
    .bind(kind.as_str())
    .bind(kind.direction())
    .bind(amount)
    .bind(reference)
    .execute(conn)
    .await?;
    Ok(())
}

/// An offer whose ledger does not balance.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Imbalance {
    /// The offer.
    pub offer_id: Uuid,
    /// Sats in (deposits, bonds).
    pub sats_in: i64,
    /// Sats out (payouts, the platform fee, mint fees).
    pub sats_out: i64,
}

/// Settled offers (terminal, nothing left to release) whose sats in differ from sats paid out
/// plus the platform fee plus mint fees.
pub async fn audit(pool: &PgPool) -> Result<Vec<Imbalance>, sqlx::Error> {
    sqlx::query_as(
        "select o.id as offer_id,
                coalesce(sum(l.amount_sats) filter (where l.direction = 'in'), 0)::bigint as sats_in,
                coalesce(sum(l.amount_sats) filter (where l.direction = 'out'), 0)::bigint as sats_out
           from offers o
           left join ledger_entries l on l.offer_id = o.id
          where o.status in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED')
            and not exists (select 1 from payouts p where p.offer_id = o.id and p.state = 'RECORDED')
          group by o.id
         having coalesce(sum(l.amount_sats) filter (where l.direction = 'in'), 0)
             <> coalesce(sum(l.amount_sats) filter (where l.direction = 'out'), 0)
          order by o.id",
    )
    .fetch_all(pool)
    .await
}

/// Number of settled offers the audit looked at.
pub async fn settled_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "select count(*) from offers o
          where o.status in ('COMPLETED', 'EXPIRED', 'RESOLVED', 'CANCELLED')
            and not exists (select 1 from payouts p where p.offer_id = o.id and p.state = 'RECORDED')",
    )
    .fetch_one(pool)
    .await
}
