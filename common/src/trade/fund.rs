//! Fund an offer with a Cashu token (maker): the alternative to paying the deposit invoice. The
//! token must come from the platform's mint and be worth the deposit plus the mint's fee for
//! receiving it. What the fee leaves beyond the deposit stays in the session's wallet (the
//! session's cleanup sweeps it back to the maker's key); a token that leaves less than the
//! deposit, or arrives after the offer was funded, is refunded whole.
//!
//! No cut strands a token. A funding intent (the token's Ys, never the
//! token) is recorded before the receive; the receive and its record then run in a task of
//! their own, holding the intent's row lock, so a dropped request cannot cut between them. A
//! process that dies between them leaves the intent OPEN, and [`settle_open`] (the
//! reconciliation) decides it from what the session wallet recorded of the token: received
//! means the offer is funded (or the sats refunded, if it can no longer take them); not
//! received means the token is still the maker's, and the intent is abandoned.

use std::str::FromStr;

use cdk_common::bitcoin::hashes::{sha256, Hash};
use sqlx::PgConnection;
use uuid::Uuid;

use super::late_refund::{self, LatePayment};
use super::{advance, check_deadline, load_as, By, Role, TradeCtx, TradeError};
use crate::db::fund_intents::{self, FundIntent, IntentEnd, NewIntent};
use crate::db::ledger::{self, LedgerKind};
use crate::db::offers::{self, Offer};
use crate::domain::money::Party;
use crate::domain::offer::{transition, Event, OfferStatus};
use crate::domain::payout::FundedBy;
use crate::wallet::{Receipt, WalletErrorKind, WalletId};

/// Failpoint: the intent is recorded, the token not received yet.
pub const CUT_INTENT_RECORDED: &str = "fund:intent_recorded";
/// Failpoint: the token is received, nothing recorded of it yet.
pub const CUT_RECEIVED: &str = "fund:received";
/// Failpoint: the reconciliation knows what the wallet received, nothing recorded yet.
pub const CUT_SETTLING: &str = "fund:settling";

/// Funds `offer_id` with `token`; returns the funded offer. [`TradeError::NotFundable`] when the
/// token was received but could not fund the offer (its value is being refunded).
pub async fn fund(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    token: &str,
) -> Result<Offer, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Maker).await?;
    transition(offer.status, Event::DepositPaid)
        .map_err(|_| TradeError::WrongState(offer.status))?;
    // A party's move: not after the deadline, even before the lapse has run.
    check_deadline(ctx, &offer).await?;
    let deposit = offer.amounts().deposit().ok_or_else(|| {
        TradeError::Inconsistent(format!("offer {}: deposit overflows", offer.id))
    })?;
    let not_a_token = || TradeError::invalid("invalid_token", "token", "not a Cashu token");
    let parsed = cdk::nuts::Token::from_str(token.trim()).map_err(|_| not_a_token())?;
    let mint = &ctx.config.mint.url;
    let same_mint = parsed
        .mint_url()
        .map(|u| u.to_string().trim_end_matches('/') == mint.as_str())
        .unwrap_or(false);
    if !same_mint {
        return Err(TradeError::invalid(
            "token_wrong_mint",
            "token",
            format!("tokens must come from {mint}"),
        ));
    }
    let value: u64 = parsed.value().map_err(|_| not_a_token())?.into();
    if value < deposit {
        return Err(TradeError::invalid(
            "token_amount_mismatch",
            "token",
            format!("the token is worth {value} sats; the deposit is {deposit} plus the mint's input fee"),
        ));
    }
    let (ys, ys_hash) = token_ys(&parsed).ok_or_else(not_a_token)?;

    ctx.need_mint()?;
    // Record the intent first: from here on, a cut leaves a row the reconciliation settles.
    let wallet = WalletId::session(session);
    let intent_id = Uuid::new_v4();
    let recorded = fund_intents::insert(
        &ctx.pool,
        &NewIntent {
            id: intent_id,
            offer_id: offer.id,
            wallet_id: wallet.as_str(),
            token_ys: &ys,
            ys_hash: &ys_hash,
            value_sats: value,
        },
    )
    .await?;
    if !recorded {
        return Err(TradeError::invalid(
            "token_in_use",
            "token",
            "this token is already funding an offer",
        ));
    }
    if ctx.cuts.hit(CUT_INTENT_RECORDED) {
        return Err(cut(CUT_INTENT_RECORDED));
    }
    // The receive and its record in a task of their own: a dropped request cannot part them.
    let (task_ctx, token) = (ctx.clone(), token.trim().to_owned());
    tokio::spawn(async move { receive_and_settle(&task_ctx, intent_id, &wallet, &token).await })
        .await
        .map_err(|e| TradeError::Inconsistent(format!("funding task: {e}")))?
}

/// Receives the token of an OPEN intent and records what it brought, in one transaction that
/// holds the intent's row lock throughout (so the reconciliation leaves it alone meanwhile).
async fn receive_and_settle(
    ctx: &TradeCtx,
    intent_id: Uuid,
    wallet: &WalletId,
    token: &str,
) -> Result<Offer, TradeError> {
    let mut tx = ctx.pool.begin().await?;
    let Some(intent) = fund_intents::lock_open(&mut tx, intent_id).await? else {
        return Err(TradeError::Inconsistent(format!(
            "funding intent {intent_id} was settled by the reconciliation"
        )));
    };
    let received = match ctx.wallets.receive(wallet, token, vec![]).await {
        Ok(sats) => sats,
        Err(e)
            if matches!(
                e.kind(),
                WalletErrorKind::TokenInvalid | WalletErrorKind::TokenSpent
            ) =>
        {
            // Refused (by the mint, or the wallet's own checks): nothing was received.
            fund_intents::settle(&mut tx, intent_id, IntentEnd::Abandoned, None).await?;
            tx.commit().await?;
            return Err(e.into());
        }
        // Whether the mint swapped the token is not known: the intent stays OPEN and the
        // reconciliation settles it once the wallet knows.
        Err(e) => return Err(e.into()),
    };
    if ctx.cuts.hit(CUT_RECEIVED) {
        return Err(cut(CUT_RECEIVED));
    }
    let settled = settle_received(ctx, &mut tx, &intent, received).await?;
    tx.commit().await?;
    match settled {
        Settled::Funded(offer) => Ok(*offer),
        Settled::Refunded => Err(TradeError::NotFundable),
    }
}

/// Settles an intent a cut left OPEN (the reconciliation, for intents older than any request):
/// by what the session wallet recorded of the token, after saga recovery. `None` when it is
/// not this run's to settle (settled already, held by a running request, or the wallet's
/// receive is still unfinished). Safe to repeat and to run beside a request or another run:
/// the intent's row is locked (skipping a held one) and moves from OPEN once, in the
/// transaction that records its money, and the wallet lookup only reads.
pub async fn settle_open(ctx: &TradeCtx, intent_id: Uuid) -> Result<Option<IntentEnd>, TradeError> {
    let mut tx = ctx.pool.begin().await?;
    let Some(intent) = fund_intents::try_lock_open(&mut tx, intent_id).await? else {
        return Ok(None);
    };
    let wallet = WalletId::parse(&intent.wallet_id)
        .map_err(|e| TradeError::Inconsistent(format!("intent {intent_id}: {e}")))?;
    let receipt = ctx.wallets.receipt_of(&wallet, &intent.token_ys).await?;
    if ctx.cuts.hit(CUT_SETTLING) {
        return Err(cut(CUT_SETTLING));
    }
    let end = match receipt {
        Receipt::InFlight => return Ok(None),
        Receipt::NotReceived => {
            fund_intents::settle(&mut tx, intent_id, IntentEnd::Abandoned, None).await?;
            IntentEnd::Abandoned
        }
        Receipt::Received(sats) => match settle_received(ctx, &mut tx, &intent, sats).await? {
            Settled::Funded(_) => IntentEnd::Funded,
            Settled::Refunded => IntentEnd::Refunded,
        },
    };
    tx.commit().await?;
    Ok(Some(end))
}

/// What a received token did.
enum Settled {
    Funded(Box<Offer>),
    Refunded,
}

/// Records `received` sats of a locked OPEN intent: the offer funded (compare-and-set) and
/// the deposit booked, or, when the offer cannot take them, booked and refunded to the
/// maker's payout key; the intent closed with it, all in the caller's transaction.
async fn settle_received(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    intent: &FundIntent,
    received: u64,
) -> Result<Settled, TradeError> {
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
    if let Some(moved) = moved {
        // The offer's books hold the deposit; the fee's excess is the session sweep's.
        ledger::record(conn, offer.id, LedgerKind::Deposit, deposit, &reference).await?;
        fund_intents::settle(conn, intent.id, IntentEnd::Funded, Some(received)).await?;
        return Ok(Settled::Funded(Box::new(moved)));
    }
    // Received, but it cannot fund the offer (funded meanwhile, moved on, or the mint's fee
    // left less than the deposit): the sats go back to the maker's payout key.
    fund_intents::settle(conn, intent.id, IntentEnd::Refunded, Some(received)).await?;
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
    Ok(Settled::Refunded)
}

/// The token's proofs' Ys (hex) and the SHA-256 of them sorted: public, and all that is kept.
fn token_ys(token: &cdk::nuts::Token) -> Option<(Vec<String>, String)> {
    let mut ys = token
        .token_secrets()
        .into_iter()
        .map(|s| cdk::dhke::hash_to_curve(s.as_bytes()).map(|y| y.to_hex()))
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    if ys.is_empty() {
        return None;
    }
    ys.sort();
    let hash = sha256::Hash::hash(ys.concat().as_bytes());
    Some((ys, hash.to_string()))
}

fn cut(point: &'static str) -> TradeError {
    TradeError::Inconsistent(format!("cut at failpoint {point}"))
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
