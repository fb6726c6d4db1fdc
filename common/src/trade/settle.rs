//! Settling an offer by the money table (DESIGN.md section 4): who is owed what from which
//! wallet, recorded as payouts in the transaction that moved the offer to its final state, with
//! the release job enqueued beside them. Nothing moves until the release job runs, and a
//! payout is recorded at most once (unique per offer, party, purpose, wallet and reference).

use sqlx::PgConnection;
use uuid::Uuid;

use super::TradeError;
use crate::db::offers::{self, Offer};
use crate::db::payouts::{self, NewPayout};
use crate::domain::money::{allocate, payouts as money_table, Outcome, Party, Source};
use crate::domain::payout::PayoutPurpose;
use crate::jobs::{self, ReleasePayouts};
use crate::wallet::WalletId;

/// Records the payouts `owed` of `offer_id` and enqueues their release, in the caller's
/// transaction.
pub async fn record_and_release(
    conn: &mut PgConnection,
    offer_id: Uuid,
    owed: &[NewPayout<'_>],
) -> Result<(), TradeError> {
    for o in owed {
        debug_assert_eq!(o.offer_id, offer_id);
        payouts::record(conn, o).await?;
    }
    jobs::enqueue(conn, &ReleasePayouts { offer_id }).await?;
    Ok(())
}

/// Settles `offer` (just moved to its final state by the caller's transaction) by `outcome`.
/// `taker_bond_paid` says whether the taker's wallet holds the bond.
pub async fn settle(
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
            Party::Maker => Some(offer.maker_payout_pubkey.as_str()),
            Party::Taker => Some(offer.taker_payout_pubkey.as_deref().ok_or_else(|| {
                TradeError::Inconsistent(format!(
                    "offer {}: a taker payout without a key",
                    offer.id
                ))
            })?),
            Party::Platform => None,
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
    crate::metrics::offer_settled(outcome, offer.created_at);
    Ok(())
}
