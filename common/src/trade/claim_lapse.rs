//! A claim's timer ran out with its bond unpaid: the claim ends LAPSED, its stake comes back,
//! and its session may not claim the offer again for `CLAIM_COOLDOWN_SECS`. The offer never
//! left the book, so nothing else moves.
//!
//! The mint is asked first: a bond paid in time but not minted yet (its watcher is behind, the
//! mint's notification was lost) is applied like any paid bond, so it may still win the offer.
//! Called by the delayed lapse job and the expiry sweep alike; the end is a compare-and-set on
//! the claim still waiting and past its deadline (database clock), so whichever runs first acts.

use uuid::Uuid;

use super::claim::{unclaim, Unclaim};
use super::{paid, quote, TradeCtx, TradeError};
use crate::db::{claims, quotes};
use crate::domain::claim::ClaimStatus;
use crate::wallet::{MintOutcome, WalletId};

/// What a claim's lapse did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimLapsed {
    /// Nothing: the claim had ended, or is not due.
    Nothing,
    /// Its bond had been paid after all and was applied (it won, or it is refunded).
    BondArrived,
    /// It lapsed.
    Lapsed,
}

/// Lapses `claim_id` if it still waits for its bond past its deadline.
pub async fn lapse(ctx: &TradeCtx, claim_id: Uuid) -> Result<ClaimLapsed, TradeError> {
    let Some(claim) = claims::get(&ctx.pool, claim_id).await? else {
        return Ok(ClaimLapsed::Nothing);
    };
    if claim.status != ClaimStatus::Pending || claim.expires_at > ctx.clock.now() {
        return Ok(ClaimLapsed::Nothing);
    }
    if let Some(quote_id) = &claim.bond_quote_id {
        if let Some(quote) = quotes::get(&ctx.pool, quote_id).await? {
            if !quote.state.is_final() {
                let wallet = WalletId::parse(&quote.wallet_id)
                    .map_err(|e| TradeError::Inconsistent(format!("quote {quote_id}: {e}")))?;
                let lock = quote::lock_of(ctx, &quote)?;
                let outcome = ctx
                    .wallets()?
                    .mint_quote_with(&wallet, quote_id, lock)
                    .await?;
                match outcome {
                    MintOutcome::Issued(sats) => {
                        paid::quote_minted(ctx, &quote, sats).await?;
                        return Ok(ClaimLapsed::BondArrived);
                    }
                    // Not paid to us: the claim lapses like an unpaid one.
                    MintOutcome::IssuedElsewhere => {
                        paid::quote_issued_elsewhere(ctx, &quote).await?;
                    }
                    MintOutcome::Unpaid => {}
                }
            }
        }
    }
    let mut tx = ctx.pool.begin().await?;
    let why = Unclaim::Lapsed(ctx.config.limits.claim_cooldown);
    let lapsed = unclaim(ctx, &mut tx, &claim, why).await?;
    tx.commit().await?;
    if lapsed {
        tracing::info!(claim = %claim.id, offer = %claim.offer_id, "claim lapsed unpaid");
        return Ok(ClaimLapsed::Lapsed);
    }
    Ok(ClaimLapsed::Nothing)
}
