//! Applies the lapse of an offer's state when its timer runs out (DESIGN.md section 3): an
//! unfunded offer expires (after asking the mint once more whether the deposit was paid), a
//! listed one expires with a full refund, a lapsed claim returns the offer to the book, a taker
//! who never sent the receipt forfeits the bond to the maker, maker silence on a receipt is
//! consent, taker silence on an issue is forfeit, and a dispute waits for an admin.
//!
//! Safe to repeat, and run from two places (this delayed job and the cron's backstop): nothing
//! happens unless the offer is still in the state the job is for and past its deadline, every
//! move is a compare-and-set on that state, and the settlement is recorded in the transaction
//! that wins the move. A deposit re-check that finds the quote paid goes through the same
//! compare-and-set path as the quote watcher.

use std::sync::Arc;

use apalis::prelude::{BoxDynError, Data};
use chrono::Utc;
use openpleb_common::db::{offers, payouts, quotes};
use openpleb_common::domain::offer::{lapse, Lapse, OfferStatus};
use openpleb_common::jobs::LapseOffer;
use openpleb_common::trade;
use openpleb_common::wallet::{MintOutcome, WalletId};
use uuid::Uuid;

use crate::WorkerContext;

/// Handles one scheduled lapse.
pub async fn handle(job: LapseOffer, ctx: Data<Arc<WorkerContext>>) -> Result<(), BoxDynError> {
    let status: OfferStatus = job.status.parse()?;
    super::with_timeout(apply(&ctx, job.offer_id, status)).await
}

/// Lapses `offer_id` if it is still in `expected` past its deadline.
pub async fn apply(
    ctx: &WorkerContext,
    offer_id: Uuid,
    expected: OfferStatus,
) -> Result<(), BoxDynError> {
    let Some(offer) = offers::get(&ctx.pool, offer_id).await? else {
        return Ok(());
    };
    let due = offer.expires_at.is_some_and(|d| d <= Utc::now());
    if offer.status() != expected || !due {
        return Ok(());
    }
    let Some(what) = lapse(expected) else {
        return Ok(());
    };
    match what {
        Lapse::ExpireUnfunded => {
            // Ask the mint first: a deposit paid just now funds the offer instead.
            if let Some(quote_id) = &offer.deposit_quote_id {
                if let Some(quote) = quotes::get(&ctx.pool, quote_id).await? {
                    let wallet = WalletId::parse(&quote.wallet_id)?;
                    if let MintOutcome::Issued(sats) =
                        ctx.wallets.mint_quote(&wallet, quote_id).await?
                    {
                        let mut tx = ctx.pool.begin().await?;
                        if quotes::mark_issued(&mut tx, quote_id, sats).await? {
                            trade::quote_paid(&mut tx, &ctx.config.timers, &quote, sats).await?;
                        }
                        tx.commit().await?;
                        return Ok(());
                    }
                }
            }
            let mut tx = ctx.pool.begin().await?;
            offers::transition(&mut tx, offer.id, expected, OfferStatus::Expired, None).await?;
            tx.commit().await?;
        }
        Lapse::Settle {
            to,
            outcome,
            bond_paid,
        } => {
            let mut tx = ctx.pool.begin().await?;
            if let Some(moved) = offers::transition(&mut tx, offer.id, expected, to, None).await? {
                payouts::record_settlement(&mut tx, &moved, outcome, bond_paid).await?;
            }
            tx.commit().await?;
        }
        Lapse::Unclaim => {
            let Some(taker) = offer.taker_session_id else {
                return Ok(());
            };
            let mut tx = ctx.pool.begin().await?;
            offers::unclaim(&mut tx, offer.id, taker).await?;
            tx.commit().await?;
        }
        Lapse::Alert => {
            tracing::warn!(offer = %offer.id, "dispute past its deadline: an admin must decide");
            return Ok(());
        }
    }
    tracing::info!(offer = %offer.id, from = %expected, "state lapsed");
    Ok(())
}
