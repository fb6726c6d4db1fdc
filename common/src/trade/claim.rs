//! Claim an offer (taker): INVOICE_PAID → INVOICE_CREATED. One claimer wins the
//! compare-and-set; the others get [`TradeError::NotAvailable`] and pay nothing. The winner gets
//! the bond invoice, made in its own session wallet; the offer leaves the book until the bond
//! arrives or the claim lapses.
//!
//! A claim costs nothing until the bond is paid, yet hides the offer, so a session may hold only
//! `CLAIM_MAX_UNPAID` unpaid claims and may not re-claim an offer whose claim it let lapse
//! within `CLAIM_COOLDOWN_SECS` (one session could otherwise keep the whole
//! book hidden by re-claiming every offer each bond timer).

use std::time::Duration;

use uuid::Uuid;

use super::paid::{watch, Invoice};
use super::reputation::{self, Reputation};
use super::{entered, load, payout_key, unix, TradeCtx, TradeError, Viewer};
use crate::db::limits;
use crate::db::offers::{self, Offer};
use crate::db::quotes::OfferQuote;
use crate::domain::offer::{transition, Event, OfferStatus};
use crate::domain::payout::QuotePurpose;
use crate::domain::reputation::Fate;
use crate::domain::role::Role;
use crate::wallet::WalletId;

/// A won claim and its bond invoice.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The offer (now INVOICE_CREATED).
    pub offer: Offer,
    /// Pay this bond to proceed.
    pub bond: Invoice,
}

/// Claims `offer_id` for `session`, whose payouts lock to `taker_payout_pubkey`, with its
/// reputation outputs and stake.
pub async fn claim(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    taker_payout_pubkey: &str,
    rep: Reputation,
) -> Result<Claimed, TradeError> {
    let offer = load(ctx, offer_id).await?;
    let viewer = Viewer::of(&offer, Some(session));
    // An offer that was never in the book stays unknown; one that left it was claimed.
    if !viewer.can_see(&offer) && offer.status == OfferStatus::Created {
        return Err(TradeError::NotFound);
    }
    if viewer == Viewer::Party(super::Role::Maker) {
        return Err(TradeError::OwnOffer);
    }
    let key = payout_key(taker_payout_pubkey, "takerPayoutPubkey")?;
    let to = transition(offer.status, Event::Claim).map_err(|_| TradeError::NotAvailable)?;
    reputation::check(ctx, &rep)?;
    let required = usize::try_from(offer.min_taker_stake).unwrap_or(0);
    if rep.stake.len() < required {
        return Err(TradeError::invalid(
            "stake_too_small",
            "reputation.stake",
            format!("this maker asks takers to stake {required} reputation tokens"),
        ));
    }

    let mut tx = ctx.pool.begin().await?;
    check_limits(&mut tx, ctx, offer.id, session).await?;
    let deadline = ctx.deadline(ctx.config.timers.invoice_created);
    let claimed = offers::claim(&mut tx, offer.id, session, &key.to_string(), deadline)
        .await?
        .ok_or(TradeError::NotAvailable)?;
    debug_assert_eq!(claimed.status, to);
    entered(&mut tx, &claimed, Some(offer.status)).await?;
    let staked = reputation::record(ctx, &mut tx, offer.id, Role::Taker, &rep).await?;
    tx.commit().await?;
    let claimed = Offer {
        taker_stake: staked,
        ..claimed
    };

    // Won: the bond invoice, locked to a key of the taker's wallet but made without opening
    // it. Should that fail, the claim is undone.
    let wallet = WalletId::session(session);
    let bond = claimed.amounts().taker_bond;
    let quote = match ctx.wallets.create_locked_quote(&wallet, bond).await {
        Ok(q) => q,
        Err(e) => {
            let mut tx = ctx.pool.begin().await?;
            unclaim(ctx, &mut tx, &claimed, session, Unclaim::NoBondInvoice).await?;
            tx.commit().await?;
            return Err(e.into());
        }
    };
    let expires_at = unix(quote.expiry);
    let mut tx = ctx.pool.begin().await?;
    offers::set_bond_quote(&mut tx, offer.id, session, &quote.quote_id).await?;
    watch(
        &mut tx,
        &OfferQuote {
            quote_id: &quote.quote_id,
            wallet_id: wallet.as_str(),
            amount_sats: bond,
            expires_at,
            offer_id: offer.id,
            purpose: QuotePurpose::Bond,
            refund_pubkey: &key.to_string(),
            lock_nonce: Some(&quote.lock_nonce),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Claimed {
        offer: Offer {
            bond_quote_id: Some(quote.quote_id.clone()),
            ..claimed
        },
        bond: Invoice {
            quote_id: quote.quote_id,
            request: quote.request,
            amount_sats: bond,
            expires_at,
        },
    })
}

/// Refuses the claim when `session` let its claim of this offer lapse within the cooldown, or
/// already holds its share of unpaid claims. Locks the session's row first, so two claims of
/// one session cannot both count the room for one (the lock lasts until the claim commits).
async fn check_limits(
    tx: &mut sqlx::PgConnection,
    ctx: &TradeCtx,
    offer_id: Uuid,
    session: Uuid,
) -> Result<(), TradeError> {
    let l = &ctx.config.limits;
    limits::lock_session(tx, session).await?;
    if let Some(left) = limits::claim_cooldown_left(tx, offer_id, session, l.claim_cooldown).await?
    {
        return Err(TradeError::ClaimCooldown(left));
    }
    let unpaid = limits::unpaid_claims(tx, session).await?;
    if unpaid >= l.claim_max_unpaid {
        return Err(TradeError::TooManyUnpaidClaims(unpaid));
    }
    Ok(())
}

/// Why a claim ends without its bond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unclaim {
    /// Its timer ran out: remembered for this long, so the claimer cannot hide the offer again
    /// straight away (zero remembers nothing).
    Lapsed(Duration),
    /// The bond invoice could not be made: not the claimer's doing, nothing remembered.
    NoBondInvoice,
}

/// Ends `session`'s claim: INVOICE_CREATED → INVOICE_PAID, back in the book until the end of the
/// maker's chosen lifetime; the taker's stake comes back. False when the claim was no longer
/// current.
pub(crate) async fn unclaim(
    ctx: &TradeCtx,
    conn: &mut sqlx::PgConnection,
    offer: &Offer,
    session: Uuid,
    why: Unclaim,
) -> Result<bool, TradeError> {
    let Some(back) = offers::unclaim(conn, offer.id, session).await? else {
        return Ok(false);
    };
    reputation::conclude(ctx, conn, &back, Role::Taker, Fate::Return).await?;
    entered(conn, &back, Some(OfferStatus::InvoiceCreated)).await?;
    if let Unclaim::Lapsed(cooldown) = why {
        if !cooldown.is_zero() {
            limits::record_lapsed_claim(conn, offer.id, session, cooldown).await?;
        }
    }
    Ok(true)
}
