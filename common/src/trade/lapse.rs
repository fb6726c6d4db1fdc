//! A state's timer ran out: an unfunded offer expires (after asking the mint once more whether
//! the deposit was paid), a listed one expires with a full refund (after asking the mint about
//! its claims' bonds; claims still waiting are lost), a taker who never sent the receipt
//! forfeits the bond to the maker, maker silence on a receipt is consent, taker silence on an
//! issue is forfeit, and maker silence on a dispute (about the receipt or the payment details)
//! leaves it to an admin.
//!
//! A deposit that was minted but cannot fund the offer any more (its invoice had expired) is
//! refunded and the offer still expires in the same run, so a late payment never holds an
//! offer in a lapse that repeats.
//!
//! Called by the delayed lapse job and the cron's backstop alike: nothing happens unless the
//! offer is still in the state the caller saw and past its deadline, and every move is a
//! compare-and-set on that state, so whichever comes first acts and the other finds nothing.

use uuid::Uuid;

use super::paid::Paid;
use super::settle::settle;
use super::{advance, answer, claim, paid, quote, reputation, By, Role, TradeCtx, TradeError};
use crate::db::{claims, disputes, offers, quotes};
use crate::domain::dispute::{DisputeStage, Resolution, ResolvedBy};
use crate::domain::offer::{lapse as lapse_of, Lapse, OfferStatus};
use crate::domain::payout::QuoteState;
use crate::domain::reputation::Fate;
use crate::wallet::{MintOutcome, WalletId};

/// What a lapse did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapsed {
    /// Nothing: the offer moved on, is not due yet, or has no timer.
    Nothing,
    /// The offer moved to this status.
    Moved(OfferStatus),
    /// What the mint was asked about had been paid in time: the deposit funded the offer, or
    /// a claim's bond won it.
    PaidInTime,
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
    // Ask the mint first about what may have been paid in time and not minted yet: the
    // deposit of an unfunded offer (it funds the offer instead), the bonds of a listed one's
    // claims (the first wins the offer instead).
    let asked = match expected {
        OfferStatus::Created => offer.deposit_quote_id.iter().cloned().collect(),
        OfferStatus::InvoicePaid => claims::pending_bonds(&ctx.pool, offer.id).await?,
        _ => Vec::new(),
    };
    for quote_id in asked {
        if let Some(Paid::Advanced(_)) = ask_mint(ctx, &quote_id).await? {
            return Ok(Lapsed::PaidInTime);
        }
    }
    let mut tx = ctx.pool.begin().await?;
    let moved = match what {
        Lapse::ExpireUnfunded => {
            match advance(
                ctx,
                &mut tx,
                &offer,
                expected,
                OfferStatus::Expired,
                None,
                By::Lapse,
            )
            .await?
            {
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
        } => match advance(ctx, &mut tx, &offer, expected, to, None, By::Lapse).await? {
            Some(moved) => {
                if expected == OfferStatus::InvoicePaid {
                    // Out of the book: claims still waiting are lost.
                    claim::lose_all(ctx, &mut tx, offer.id).await?;
                }
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
        Lapse::CounterBySilence => {
            let countered = answer::counter(ctx, &mut tx, &offer, By::Lapse)
                .await?
                .is_some();
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

/// Asks the mint whether `quote_id` (still open) was paid and, if it was, mints and applies it
/// like its watcher would: what that did, or `None` when it was not paid (or already applied).
async fn ask_mint(ctx: &TradeCtx, quote_id: &str) -> Result<Option<Paid>, TradeError> {
    let Some(quote) = quotes::get(&ctx.pool, quote_id).await? else {
        return Ok(None);
    };
    if quote.state == QuoteState::Issued || quote.state == QuoteState::Orphaned {
        return Ok(None);
    }
    let wallet = WalletId::parse(&quote.wallet_id)
        .map_err(|e| TradeError::Inconsistent(format!("quote {quote_id}: {e}")))?;
    let lock = quote::lock_of(ctx, &quote)?;
    match ctx
        .wallets()?
        .mint_quote_with(&wallet, quote_id, lock)
        .await?
    {
        MintOutcome::Issued(sats) => paid::quote_minted(ctx, &quote, sats).await,
        MintOutcome::IssuedElsewhere => {
            paid::quote_issued_elsewhere(ctx, &quote).await?;
            Ok(None)
        }
        MintOutcome::Unpaid => Ok(None),
    }
}
