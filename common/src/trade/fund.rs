//! Fund an offer with a Cashu token (maker): the alternative to paying the deposit invoice. The
//! token must come from the platform's mint and be worth the deposit plus the mint's fee for
//! receiving it. What the fee leaves beyond the deposit stays in the session's wallet (the
//! session's cleanup sweeps it back to the maker's key); a token that leaves less than the
//! deposit, or arrives after the offer was funded, is refunded whole.

use std::str::FromStr;

use sqlx::PgConnection;
use uuid::Uuid;

use super::late_refund::{self, LatePayment};
use super::{advance, load_as, Role, TradeCtx, TradeError};
use crate::db::ledger::{self, LedgerKind};
use crate::db::offers::{self, Offer};
use crate::domain::money::Party;
use crate::domain::offer::{transition, Event, OfferStatus};
use crate::domain::payout::FundedBy;
use crate::wallet::WalletId;

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

    let wallet = WalletId::session(session);
    let received = ctx.wallets.receive(&wallet, token.trim(), vec![]).await?;
    let reference = format!("token:{}", Uuid::new_v4());
    let mut tx = ctx.pool.begin().await?;
    let moved = if received >= deposit {
        funded(ctx, &mut tx, &offer, FundedBy::Token).await?
    } else {
        None
    };
    let Some(moved) = moved else {
        // Received, but it cannot fund the offer (paid meanwhile, or the mint's fee left less
        // than the deposit): the sats go back to the maker's payout key.
        ledger::record(&mut tx, offer.id, LedgerKind::Deposit, received, &reference).await?;
        late_refund::record(
            &mut tx,
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
        tx.commit().await?;
        return Err(TradeError::NotFundable);
    };
    // The offer's books hold the deposit; the fee's excess is the session sweep's.
    ledger::record(&mut tx, offer.id, LedgerKind::Deposit, deposit, &reference).await?;
    tx.commit().await?;
    Ok(moved)
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
        conn,
        offer,
        OfferStatus::Created,
        OfferStatus::InvoicePaid,
        Some(ctx.deadline(lifetime)),
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
