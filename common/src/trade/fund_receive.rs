//! Fund an offer with a Cashu token, the worker's half: receive the token the api sealed to
//! the workers' key into the maker's session wallet and move the offer.
//!
//! No cut strands a token. The intent (the token's Ys and the sealed token) was recorded with
//! its job before any receive; the receive and its record run holding the intent's row lock,
//! and each run first asks the session wallet what it already received of the token, so a run
//! after a cut between the receive and its record settles what the wallet holds instead of
//! receiving again. A token the mint refuses (spent meanwhile, invalid) ends the intent
//! ABANDONED with a reason the maker reads; a token received after the offer moved on is
//! refunded to the maker's payout key. Every end clears the sealed token in the statement
//! that ends the intent.

use sqlx::PgConnection;
use uuid::Uuid;

use super::late_refund::{self, LatePayment};
use super::{advance, By, TradeCtx, TradeError};
use crate::db::fund_intents::{self, reasons, FundIntent, IntentEnd};
use crate::db::ledger::{self, LedgerKind};
use crate::db::offers::{self, Offer};
use crate::domain::money::Party;
use crate::domain::offer::OfferStatus;
use crate::domain::payout::FundedBy;
use crate::wallet::{Receipt, WalletErrorKind, WalletId};

/// Failpoint: the token is received, nothing recorded of it yet.
pub const CUT_RECEIVED: &str = "fund:received";
/// Failpoint: the wallet's record of the token is read, nothing recorded yet.
pub const CUT_SETTLING: &str = "fund:settling";

/// How a run left an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// It ended so.
    Ended(IntentEnd),
    /// Not this run's to settle: ended already, held by another run, or the wallet's receive
    /// of it is unfinished (a later run settles it).
    Left,
}

/// Receives the token of OPEN intent `intent_id` (the receive job), waiting for another run
/// that holds it. Safe to repeat: a settled intent is left alone, and a token the wallet
/// received already is recorded, not received again.
pub async fn receive(ctx: &TradeCtx, intent_id: Uuid) -> Result<Ran, TradeError> {
    let mut tx = ctx.pool.begin().await?;
    let Some(intent) = fund_intents::lock_open(&mut tx, intent_id).await? else {
        return Ok(Ran::Left);
    };
    let ran = work(ctx, &mut tx, &intent).await?;
    tx.commit().await?;
    Ok(ran)
}

/// Settles an intent its job did not (the reconciliation, for intents older than any job
/// should take): the same work as [`receive`], skipping an intent another run holds.
pub async fn settle_open(ctx: &TradeCtx, intent_id: Uuid) -> Result<Ran, TradeError> {
    let mut tx = ctx.pool.begin().await?;
    let Some(intent) = fund_intents::try_lock_open(&mut tx, intent_id).await? else {
        return Ok(Ran::Left);
    };
    let ran = work(ctx, &mut tx, &intent).await?;
    tx.commit().await?;
    Ok(ran)
}

/// What to do with a locked OPEN intent, by what the session wallet recorded of its token.
async fn work(
    ctx: &TradeCtx,
    tx: &mut PgConnection,
    intent: &FundIntent,
) -> Result<Ran, TradeError> {
    let wallet = WalletId::parse(&intent.wallet_id)
        .map_err(|e| TradeError::Inconsistent(format!("intent {}: {e}", intent.id)))?;
    let wallets = ctx.wallets()?;
    let (received, cut) = match wallets.receipt_of(&wallet, &intent.token_ys).await? {
        Receipt::InFlight => return Ok(Ran::Left),
        Receipt::Received(sats) => (sats, CUT_SETTLING),
        Receipt::NotReceived => {
            let Some(sealed) = fund_intents::sealed_token(tx, intent.id).await? else {
                // An intent from before tokens were sealed, whose request was cut before the
                // receive: the token is still the maker's.
                fund_intents::settle(tx, intent.id, IntentEnd::Abandoned, None, None).await?;
                return Ok(Ran::Ended(IntentEnd::Abandoned));
            };
            let token = ctx
                .worker_keys()?
                .unseal(intent.id.as_bytes(), &sealed)
                .map_err(|e| TradeError::Inconsistent(format!("intent {}: {e}", intent.id)))?;
            let token = String::from_utf8(token)
                .map_err(|e| TradeError::Inconsistent(format!("intent {}: {e}", intent.id)))?;
            match wallets.receive(&wallet, &token, vec![]).await {
                Ok(sats) => (sats, CUT_RECEIVED),
                Err(e) if refused(e.kind()).is_some() => {
                    // Refused by the mint or the wallet's checks: nothing was received.
                    let reason = refused(e.kind());
                    fund_intents::settle(tx, intent.id, IntentEnd::Abandoned, None, reason).await?;
                    tracing::info!(intent = %intent.id, offer = %intent.offer_id, ?reason,
                        "funding token refused");
                    return Ok(Ran::Ended(IntentEnd::Abandoned));
                }
                // Whether the mint swapped the token is not known: the intent stays OPEN and
                // the next run asks the wallet.
                Err(e) => return Err(e.into()),
            }
        }
    };
    if ctx.cuts.hit(cut) {
        return Err(TradeError::Inconsistent(format!("cut at failpoint {cut}")));
    }
    let end = settle_received(ctx, tx, intent, received).await?;
    Ok(Ran::Ended(end))
}

fn refused(kind: WalletErrorKind) -> Option<&'static str> {
    match kind {
        WalletErrorKind::TokenSpent => Some(reasons::TOKEN_SPENT),
        WalletErrorKind::TokenInvalid => Some(reasons::TOKEN_INVALID),
        _ => None,
    }
}

/// Records `received` sats of a locked OPEN intent: the offer funded (compare-and-set) and
/// the deposit booked, or, when the offer cannot take them, booked and refunded to the
/// maker's payout key; the intent closed with it, all in the caller's transaction.
async fn settle_received(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    intent: &FundIntent,
    received: u64,
) -> Result<IntentEnd, TradeError> {
    let offer = offers::get_for_update(conn, intent.offer_id)
        .await?
        .ok_or(TradeError::NotFound)?;
    let deposit = offer.amounts().deposit().ok_or_else(|| {
        TradeError::Inconsistent(format!("offer {}: deposit overflows", offer.id))
    })?;
    let reference = format!("token:{}", intent.id);
    let moved = if received >= deposit {
        funded(ctx, conn, &offer, FundedBy::Token).await?
    } else {
        None
    };
    if moved.is_some() {
        // The offer's books hold the deposit; the fee's excess is the session sweep's.
        ledger::record(conn, offer.id, LedgerKind::Deposit, deposit, &reference).await?;
        fund_intents::settle(conn, intent.id, IntentEnd::Funded, Some(received), None).await?;
        return Ok(IntentEnd::Funded);
    }
    // Received, but it cannot fund the offer (funded meanwhile, moved on, or the mint's fee
    // left less than the deposit): the sats go back to the maker's payout key.
    fund_intents::settle(
        conn,
        intent.id,
        IntentEnd::Refunded,
        Some(received),
        Some(reasons::OFFER_NOT_FUNDABLE),
    )
    .await?;
    if received > 0 {
        let wallet = WalletId::parse(&intent.wallet_id)
            .map_err(|e| TradeError::Inconsistent(format!("intent {}: {e}", intent.id)))?;
        ledger::record(conn, offer.id, LedgerKind::Deposit, received, &reference).await?;
        late_refund::record(
            conn,
            &LatePayment {
                offer_id: offer.id,
                payer: Party::Maker,
                wallet: &wallet,
                sats: received,
                refund_pubkey: &offer.maker_payout_pubkey,
                reference: &reference,
            },
        )
        .await?;
    }
    Ok(IntentEnd::Refunded)
}

/// CREATED → INVOICE_PAID (compare-and-set), listed for the maker's chosen lifetime, recording
/// how the deposit arrived. `None` when the offer was no longer CREATED.
pub(crate) async fn funded(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    offer: &Offer,
    how: FundedBy,
) -> Result<Option<Offer>, TradeError> {
    let lifetime = std::time::Duration::from_secs(u64::try_from(offer.lifetime_secs).unwrap_or(0));
    let Some(moved) = advance(
        ctx,
        conn,
        offer,
        OfferStatus::Created,
        OfferStatus::InvoicePaid,
        Some(lifetime),
        By::Platform,
    )
    .await?
    else {
        return Ok(None);
    };
    offers::set_funded_by(conn, offer.id, how).await?;
    Ok(Some(Offer {
        funded_by: Some(how),
        ..moved
    }))
}
