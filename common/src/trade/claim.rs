//! Claim an offer (taker): a claim of its own with its own bond invoice and deadline. The offer
//! stays listed: a claim costs nothing until its bond is paid, so it must not hide the offer
//! (sessions are unlinkable and cheap, so any per-session ration would not hold against one
//! user with many). Several takers may hold claims at once; the first bond minted wins the
//! offer ([`super::bond_paid`]) and every other claim ends LOST, its bond refunded if paid.
//!
//! What a claim still costs us is a mint quote and a watcher, so a session holds at most
//! `CLAIM_MAX_UNPAID` pending claims, may not re-claim an offer whose claim it let lapse within
//! `CLAIM_COOLDOWN_SECS`, and an offer takes at most `CLAIM_MAX_PENDING_PER_OFFER` pending
//! claims. A claim notifies nobody: only a paid bond moves the offer.

use std::time::Duration;

use uuid::Uuid;

use super::quote::{watch, Invoice};
use super::reputation::{self, Owner, Reputation};
use super::subscribe::{self, Target};
use super::{load, payout_key, unix, TradeCtx, TradeError, Viewer};
use crate::db::claims::{self, Claim};
use crate::db::offers::{self, Offer};
use crate::db::quotes::OfferQuote;
use crate::db::{limits, notify_targets};
use crate::domain::claim::ClaimStatus;
use crate::domain::notify::{Action, Notice};
use crate::domain::offer::{transition, Event, OfferStatus};
use crate::domain::payout::QuotePurpose;
use crate::domain::reputation::Fate;
use crate::jobs::{self, LapseClaim};
use crate::notify::{self, Recipient};
use crate::wallet::WalletId;

/// A claim made and its bond invoice.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The claim (PENDING).
    pub claim: Claim,
    /// The offer, still listed.
    pub offer: Offer,
    /// Pay this bond to win the offer.
    pub bond: Invoice,
    /// The signing secret of the webhook given with it, shown this once.
    pub webhook_secret: Option<String>,
}

/// Claims `offer_id` for `session`, whose payouts (and a refund of its bond) lock to
/// `taker_payout_pubkey`, with its reputation outputs and stake.
pub async fn claim(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    taker_payout_pubkey: &str,
    rep: Reputation,
    notify: &[Target],
) -> Result<Claimed, TradeError> {
    let offer = load(ctx, offer_id).await?;
    let viewer = Viewer::of(&offer, Some(session));
    // An offer that was never in the book stays unknown; one that left it was taken.
    if !viewer.can_see(&offer) && offer.status == OfferStatus::Created {
        return Err(TradeError::NotFound);
    }
    if viewer == Viewer::Party(super::Role::Maker) {
        return Err(TradeError::OwnOffer);
    }
    let key = payout_key(taker_payout_pubkey, "takerPayoutPubkey")?;
    transition(offer.status, Event::Claim).map_err(|_| TradeError::NotAvailable)?;
    reputation::check(ctx, &rep)?;
    subscribe::check_all(ctx, notify)?;
    let required = usize::try_from(offer.min_taker_stake).unwrap_or(0);
    if rep.stake.len() < required {
        return Err(TradeError::invalid(
            "stake_too_small",
            "reputation.stake",
            format!("this maker asks takers to stake {required} reputation tokens"),
        ));
    }

    // The claim ends when its bond invoice cannot be made: without the mint, refuse before
    // claiming at all.
    ctx.need_mint()?;
    // The claim row first: the limits are counted under locks, and the quote is made only for
    // a claim that passed them.
    let timer = ctx.config.timers.invoice_created;
    let mut tx = ctx.pool.begin().await?;
    check_limits(&mut tx, ctx, offer.id, session).await?;
    let claim = claims::insert(
        &mut tx,
        Uuid::new_v4(),
        offer.id,
        session,
        &key.to_string(),
        timer,
    )
    .await?;
    let staked = reputation::record(ctx, &mut tx, Owner::Claim(&claim), &rep).await?;
    let claimant = notify_targets::Owner {
        offer_id: offer.id,
        role: super::Role::Taker,
        claim_id: Some(claim.id),
    };
    let webhook_secret = subscribe::store_all(ctx, &mut tx, &claimant, notify).await?;
    let delay = (claim.expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    jobs::enqueue_in(&mut tx, &LapseClaim { claim_id: claim.id }, delay).await?;
    tx.commit().await?;
    let claim = Claim {
        stake: staked,
        ..claim
    };

    // The bond invoice, locked to a key of the taker's wallet but made without opening it.
    // Should that fail, the claim ends and its stake comes back.
    let wallet = WalletId::session(session);
    let bond = offer.amounts().taker_bond;
    let quote = match ctx.desk.create_locked_quote(bond).await {
        Ok(q) => q,
        Err(e) => {
            let mut tx = ctx.pool.begin().await?;
            unclaim(ctx, &mut tx, &claim, Unclaim::NoBondInvoice).await?;
            tx.commit().await?;
            return Err(e.into());
        }
    };
    let expires_at = unix(quote.expiry);
    let mut tx = ctx.pool.begin().await?;
    let current = claims::set_bond(
        &mut tx,
        claim.id,
        &quote.quote_id,
        &quote.request,
        expires_at,
    )
    .await?;
    // Watched whatever happened meanwhile: a payment of an invoice whose claim already ended
    // is minted and refunded.
    watch(
        &mut tx,
        &OfferQuote {
            quote_id: &quote.quote_id,
            wallet_id: wallet.as_str(),
            amount_sats: bond,
            expires_at,
            offer_id: offer.id,
            purpose: QuotePurpose::Bond,
            refund_pubkey: &claim.payout_pubkey,
            lock_path: Some(quote.lock_path.to_string()),
        },
    )
    .await?;
    tx.commit().await?;
    if !current {
        return Err(TradeError::NotAvailable);
    }
    Ok(Claimed {
        claim: Claim {
            bond_quote_id: Some(quote.quote_id.clone()),
            bond_invoice: Some(quote.request.clone()),
            bond_invoice_expires_at: Some(expires_at),
            ..claim
        },
        offer,
        bond: Invoice {
            quote_id: quote.quote_id,
            request: quote.request,
            amount_sats: bond,
            expires_at,
        },
        webhook_secret,
    })
}

/// `session`'s latest claim of `offer_id`, or [`TradeError::NoClaim`].
pub async fn of_session(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
) -> Result<Claim, TradeError> {
    claims::latest_of(&ctx.pool, offer_id, session)
        .await?
        .ok_or(TradeError::NoClaim)
}

/// Refuses the claim when the offer is not listed any more (its listing deadline passed),
/// holds its share of pending claims, `session` let its claim of this offer lapse within the
/// cooldown, or already holds its share of pending claims or payable invoices. Locks the
/// session's row and the offer's first, so two claims cannot both count the room for one (the
/// locks last until the claim commits).
async fn check_limits(
    tx: &mut sqlx::PgConnection,
    ctx: &TradeCtx,
    offer_id: Uuid,
    session: Uuid,
) -> Result<(), TradeError> {
    let l = &ctx.config.limits;
    limits::lock_session(tx, session).await?;
    let listed = offers::lock_listed(tx, offer_id).await?;
    if !listed {
        return Err(TradeError::NotAvailable);
    }
    if claims::has_pending(tx, offer_id, session).await? {
        return Err(TradeError::AlreadyClaimed);
    }
    if let Some(left) = limits::claim_cooldown_left(tx, offer_id, session, l.claim_cooldown).await?
    {
        return Err(TradeError::ClaimCooldown(left));
    }
    let unpaid = limits::unpaid_claims(tx, session).await?;
    if unpaid >= l.claim_max_unpaid {
        return Err(TradeError::TooManyUnpaidClaims(unpaid));
    }
    let pending = claims::pending_count(tx, offer_id).await?;
    if pending >= l.claim_max_pending_per_offer {
        return Err(TradeError::TooManyClaims(pending));
    }
    let payable = limits::payable_quotes(tx, session).await?;
    if payable >= l.quote_max_payable {
        return Err(TradeError::TooManyPayableQuotes(payable));
    }
    Ok(())
}

/// Why a claim ends without its bond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unclaim {
    /// Its timer ran out (only once it has, by the database's clock): remembered for this
    /// long, so its session cannot claim the offer again straight away (zero remembers
    /// nothing).
    Lapsed(Duration),
    /// The bond invoice could not be made: not the claimer's doing, nothing remembered.
    NoBondInvoice,
}

/// Ends a PENDING claim as LAPSED: its stake comes back. False when the claim had already
/// ended (or, for a lapse, is not due).
pub(crate) async fn unclaim(
    ctx: &TradeCtx,
    conn: &mut sqlx::PgConnection,
    claim: &Claim,
    why: Unclaim,
) -> Result<bool, TradeError> {
    let (due_only, cooldown) = match why {
        Unclaim::Lapsed(c) => (true, c),
        Unclaim::NoBondInvoice => (false, Duration::ZERO),
    };
    let Some(ended) = claims::end(conn, claim.id, ClaimStatus::Lapsed, due_only).await? else {
        return Ok(false);
    };
    conclude_lost(ctx, conn, &ended).await?;
    if why != Unclaim::NoBondInvoice {
        tell_claimant(conn, &ended).await?;
    }
    if !cooldown.is_zero() {
        limits::record_lapsed_claim(conn, claim.offer_id, claim.session_id, cooldown).await?;
    }
    Ok(true)
}

/// Every other pending claim of `offer_id` ends LOST (a bond won, the maker cancelled, the
/// listing expired): their stakes come back. A bond paid for one later is refunded.
pub(crate) async fn lose_all(
    ctx: &TradeCtx,
    conn: &mut sqlx::PgConnection,
    offer_id: Uuid,
) -> Result<(), TradeError> {
    for lost in claims::lose_pending(conn, offer_id).await? {
        conclude_lost(ctx, conn, &lost).await?;
        tell_claimant(conn, &lost).await?;
    }
    Ok(())
}

/// Tells a claimant its claim ended without winning (and nobody else: a claim is its own).
async fn tell_claimant(conn: &mut sqlx::PgConnection, claim: &Claim) -> Result<(), TradeError> {
    let notice = Notice {
        offer_id: claim.offer_id,
        status: format!("CLAIM_{}", claim.status),
        deadline: None,
        action: Action::None.as_str().to_owned(),
    };
    let key = format!("claim:{}:{}", claim.id, claim.status);
    notify::tell(
        conn,
        claim.offer_id,
        Recipient::Claim(claim.id),
        &notice,
        false,
        &key,
    )
    .await?;
    Ok(())
}

/// A claim that did not win returns its stake and earns nothing.
async fn conclude_lost(
    ctx: &TradeCtx,
    conn: &mut sqlx::PgConnection,
    claim: &Claim,
) -> Result<(), TradeError> {
    reputation::conclude_owner(ctx, conn, Owner::Claim(claim), Fate::Return).await
}
