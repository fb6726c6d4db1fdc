//! Settling an offer by the money table (DESIGN.md section 4): who is owed what from which
//! wallet, recorded as payouts in the transaction that moved the offer to its final state, with
//! the release job enqueued beside them. Nothing moves until the release job runs, and a
//! payout is recorded at most once (unique per offer, party, purpose, wallet and reference).
//! Payouts lock to each party's payout key, or to the registered key it revealed in a dispute;
//! the platform's share locks to the treasury key (`wallet::treasury`), so the token stored
//! until the sweep is worth nothing to a reader of the database.
//! Each party's reputation is concluded in the same transaction: earned, returned or burned.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{reputation, TradeCtx, TradeError};
use crate::db::disputes;
use crate::db::offers::{self, Offer};
use crate::db::payouts::{self, NewPayout};
use crate::domain::money::{allocate, payouts as money_table, Outcome, Party, Source};
use crate::domain::payout::PayoutPurpose;
use crate::domain::reputation::fates_at;
use crate::domain::role::Role;
use crate::jobs::{self, ReleasePayouts};
use crate::wallet::WalletId;

/// Records the payouts `owed` of `offer_id` and enqueues their release, in the caller's
/// transaction.
pub async fn record_and_release(
    conn: &mut PgConnection,
    offer_id: Uuid,
    owed: &[NewPayout<'_>],
) -> Result<(), TradeError> {
    record(conn, offer_id, owed).await?;
    jobs::enqueue(conn, &ReleasePayouts { offer_id }).await?;
    Ok(())
}

/// Records the payouts `owed` of `offer_id` with a release job `delay` out, in the caller's
/// transaction: for a caller that releases them itself right after its commit (the wallet
/// cleanup's sweep), the job being the backstop should it die first.
pub async fn record_with_backstop(
    conn: &mut PgConnection,
    offer_id: Uuid,
    owed: &[NewPayout<'_>],
    delay: std::time::Duration,
) -> Result<(), TradeError> {
    record(conn, offer_id, owed).await?;
    jobs::enqueue_in(conn, &ReleasePayouts { offer_id }, delay).await?;
    Ok(())
}

async fn record(
    conn: &mut PgConnection,
    offer_id: Uuid,
    owed: &[NewPayout<'_>],
) -> Result<(), TradeError> {
    for o in owed {
        debug_assert_eq!(o.offer_id, offer_id);
        payouts::record(conn, o).await?;
    }
    Ok(())
}

/// Settles `offer` (just moved to its final state by the caller's transaction) by `outcome`.
/// `taker_bond_paid` says whether the taker's wallet holds the bond.
pub async fn settle(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    offer: &Offer,
    outcome: Outcome,
    taker_bond_paid: bool,
) -> Result<(), TradeError> {
    let amounts = offer.amounts();
    let owed = money_table(outcome, &amounts);
    let deposit = amounts.deposit().ok_or_else(|| {
        TradeError::Inconsistent(format!("offer {}: deposit overflows", offer.id))
    })?;
    let bond = if taker_bond_paid {
        amounts.taker_bond
    } else {
        0
    };
    let plan = allocate(&owed, deposit, bond).ok_or_else(|| {
        TradeError::Inconsistent(format!("offer {}: payouts exceed the escrow", offer.id))
    })?;
    // After an issue, a party's payouts lock to the registered key it revealed, if it did.
    let revealed = disputes::get(conn, offer.id).await?;
    let (maker_fate, taker_fate) = fates_at(
        outcome,
        revealed.is_some(),
        amounts.escrow,
        ctx.config.reputation.min_earn_sats,
    );
    let maker_key = revealed
        .as_ref()
        .and_then(|d| d.maker_pubkey.clone())
        .unwrap_or_else(|| offer.maker_payout_pubkey.clone());
    let taker_key = revealed
        .and_then(|d| d.taker_pubkey)
        .or_else(|| offer.taker_payout_pubkey.clone());
    let treasury = ctx.desk.keys().treasury.to_string();
    let maker_wallet = WalletId::session(offer.maker_session_id);
    let taker_wallet = offer.taker_session_id.map(WalletId::session);
    let purpose = match outcome {
        Outcome::RefundMaker => PayoutPurpose::Refund,
        _ => PayoutPurpose::Settlement,
    };
    let mut rows = Vec::with_capacity(plan.len());
    for a in &plan {
        let source = match a.source {
            Source::MakerWallet => &maker_wallet,
            Source::TakerWallet => taker_wallet.as_ref().ok_or_else(|| {
                TradeError::Inconsistent(format!("offer {}: a bond without a taker", offer.id))
            })?,
        };
        let lock = match a.party {
            Party::Maker => Some(maker_key.as_str()),
            Party::Taker => Some(taker_key.as_deref().ok_or_else(|| {
                TradeError::Inconsistent(format!(
                    "offer {}: a taker payout without a key",
                    offer.id
                ))
            })?),
            Party::Platform => Some(treasury.as_str()),
        };
        rows.push(NewPayout {
            offer_id: offer.id,
            party: a.party,
            purpose,
            source_wallet: source,
            sats: a.sats,
            lock_pubkey: lock,
            reference: "",
        });
    }
    offers::set_outcome(conn, offer.id, outcome).await?;
    record_and_release(conn, offer.id, &rows).await?;
    reputation::conclude(ctx, conn, offer, Role::Maker, maker_fate).await?;
    if offer.taker_session_id.is_some() {
        reputation::conclude(ctx, conn, offer, Role::Taker, taker_fate).await?;
    }
    crate::metrics::offer_settled(outcome, offer.created_at);
    Ok(())
}
