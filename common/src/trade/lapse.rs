//! A state's timer ran out (DESIGN.md section 3): an unfunded offer expires (after asking the
//! mint once more whether the deposit was paid), a listed one expires with a full refund, a
//! lapsed claim returns the offer to the book, a taker who never sent the receipt forfeits the
//! bond to the maker, maker silence on a receipt is consent, taker silence on an issue is
//! forfeit, and maker silence on a dispute is a counter (an admin decides).
//!
//! Called by the delayed lapse job and the cron's backstop alike: nothing happens unless the
//! offer is still in the state the caller saw and past its deadline, and every move is a
//! compare-and-set on that state, so whichever comes first acts and the other finds nothing.

use uuid::Uuid;

use super::settle::settle;
use super::{advance, answer, claim, paid, reputation, Role, TradeCtx, TradeError};
use crate::db::{disputes, offers, quotes};
use crate::domain::dispute::{DisputeStage, Resolution, ResolvedBy};
use crate::domain::offer::{lapse as lapse_of, Lapse, OfferStatus};
use crate::domain::reputation::Fate;
use crate::wallet::{MintOutcome, WalletId};

/// What a lapse did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapsed {
    /// Nothing: the offer moved on, is not due yet, or has no timer.
    Nothing,
    /// The offer moved to this status.
    Moved(OfferStatus),
    /// The deposit had been paid after all: the offer was funded instead.
    FundedLate,
    /// The maker did not answer the dispute: it now waits for an admin.
    Countered,
}

/// Lapses `offer_id` if it is still in `expected` past its deadline.
pub async fn lapse(
    ctx: &TradeCtx,
    offer_id: Uuid,
    expected: OfferStatus,
) -> Result<Lapsed, TradeError> {
    let Some(offer) = offers::get(&ctx.pool, offer_id).await? else {
        return Ok(Lapsed::Nothing);
    };
    let due = offer.expires_at.is_some_and(|d| d <= ctx.clock.now());
    let Some(what) = lapse_of(expected) else {
        return Ok(Lapsed::Nothing);
    };
    if offer.status != expected || !due {
        return Ok(Lapsed::Nothing);
    }
    if what == Lapse::ExpireUnfunded {
        // Ask the mint first: a deposit paid just now funds the offer instead.
        if let Some(quote_id) = &offer.deposit_quote_id {
            if let Some(quote) = quotes::get(&ctx.pool, quote_id).await? {
                let wallet = WalletId::parse(&quote.wallet_id)
                    .map_err(|e| TradeError::Inconsistent(format!("quote {quote_id}: {e}")))?;
                let lock = paid::lock_of(&quote);
                let outcome = ctx.wallets.mint_quote_with(&wallet, quote_id, lock).await?;
                if let MintOutcome::Issued(sats) = outcome {
                    paid::quote_minted(ctx, &quote, sats).await?;
                    return Ok(Lapsed::FundedLate);
                }
            }
        }
    }
    let mut tx = ctx.pool.begin().await?;
    let moved = match what {
        Lapse::ExpireUnfunded => {
            match advance(&mut tx, &offer, expected, OfferStatus::Expired, None).await? {
                Some(moved) => {
                    // Never funded: a stake made with the offer comes back.
                    reputation::conclude(ctx, &mut tx, &moved, Role::Maker, Fate::Return).await?;
                    Some(moved.status)
                }
                None => None,
            }
        }
        Lapse::Settle {
            to,
            outcome,
            bond_paid,
        } => match advance(&mut tx, &offer, expected, to, None).await? {
            Some(moved) => {
                if expected == OfferStatus::MarkedWithIssue {
                    // Taker silence on an issue is a forfeit.
                    disputes::resolve(
                        &mut tx,
                        offer.id,
                        &[DisputeStage::WaitingTaker],
                        Resolution::MakerWins,
                        ResolvedBy::TakerSilence,
                    )
                    .await?;
                }
                settle(ctx, &mut tx, &moved, outcome, bond_paid).await?;
                Some(to)
            }
            None => None,
        },
        Lapse::Unclaim => match offer.taker_session_id {
            Some(taker) => {
                let why = claim::Unclaim::Lapsed(ctx.config.limits.claim_cooldown);
                claim::unclaim(ctx, &mut tx, &offer, taker, why)
                    .await?
                    .then_some(OfferStatus::InvoicePaid)
            }
            None => None,
        },
        Lapse::CounterBySilence => {
            let countered = answer::counter(&mut tx, &offer).await?.is_some();
            tx.commit().await?;
            if countered {
                tracing::info!(offer = %offer.id, "maker silent on the dispute: an admin decides");
                return Ok(Lapsed::Countered);
            }
            return Ok(Lapsed::Nothing);
        }
    };
    tx.commit().await?;
    Ok(match moved {
        Some(to) => {
            tracing::info!(offer = %offer.id, from = %expected, to = %to, "state lapsed");
            Lapsed::Moved(to)
        }
        None => Lapsed::Nothing,
    })
}
