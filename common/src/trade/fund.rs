//! Fund an offer with a Cashu token (maker), the api's half: the alternative to paying the
//! deposit invoice. The api holds no wallet and no key that spends, so it only checks the
//! token and hands it on: the token must be from the platform's mint, in sats, of keysets the
//! mint has, and worth the deposit plus the mint's fee for receiving it. Whether it is unspent
//! is the worker's receive to find out (`crate::desk` says why).
//! The token is sealed to the workers' key (the api cannot open it again) and recorded with
//! its Ys as a funding intent, and a worker's receive is enqueued in the same transaction
//! ([`super::fund_receive`]); the maker gets the intent (`202`) and hears the offer's move
//! like any other.

use std::str::FromStr;

use cdk::nuts::PublicKey;
use cdk_common::bitcoin::hashes::{sha256, Hash};
use uuid::Uuid;

use super::{check_deadline, load_as, Role, TradeCtx, TradeError};
use crate::db::fund_intents::{self, FundIntent, NewIntent};
use crate::desk::TokenRefusal;
use crate::domain::offer::{transition, Event};
use crate::jobs::{self, ReceiveFunding};
use crate::wallet::WalletId;

/// Failpoint: the intent and its job are committed, the request not answered.
pub const CUT_INTENT_RECORDED: &str = "fund:intent_recorded";

/// Records `token` as a funding intent of `offer_id` for a worker to receive; returns the
/// intent (OPEN).
pub async fn fund(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    token: &str,
) -> Result<FundIntent, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Maker).await?;
    transition(offer.status, Event::DepositPaid)
        .map_err(|_| TradeError::WrongState(offer.status))?;
    // A party's move: not after the deadline, even before the lapse has run.
    check_deadline(ctx, &offer).await?;
    let deposit = offer.amounts().deposit().ok_or_else(|| {
        TradeError::Inconsistent(format!("offer {}: deposit overflows", offer.id))
    })?;
    let token = token.trim();
    let parsed = cdk::nuts::Token::from_str(token).map_err(|_| not_a_token())?;

    ctx.need_mint()?;
    let checked = ctx.desk.check_token(&parsed).await.map_err(refused)?;
    let needed = deposit.saturating_add(checked.input_fee);
    if checked.value < needed {
        return Err(TradeError::invalid(
            "token_amount_mismatch",
            "token",
            format!(
                "the token is worth {} sats; the deposit is {deposit} plus the mint's fee of {} \
                 for receiving it",
                checked.value, checked.input_fee
            ),
        ));
    }
    let (ys, ys_hash) = ys_hex(&checked.ys);
    let intent_id = Uuid::new_v4();
    let sealed = ctx
        .desk
        .seal(intent_id.as_bytes(), token)
        .map_err(|e| TradeError::Inconsistent(format!("sealing a token: {e}")))?;
    let wallet = WalletId::session(session);
    let mut tx = ctx.pool.begin().await?;
    let recorded = fund_intents::insert(
        &mut tx,
        &NewIntent {
            id: intent_id,
            offer_id: offer.id,
            wallet_id: wallet.as_str(),
            token_ys: &ys,
            ys_hash: &ys_hash,
            value_sats: checked.value,
            sealed_token: &sealed,
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
    jobs::enqueue(&mut tx, &ReceiveFunding { intent_id }).await?;
    tx.commit().await?;
    if ctx.cuts.hit(CUT_INTENT_RECORDED) {
        return Err(TradeError::Inconsistent(format!(
            "cut at failpoint {CUT_INTENT_RECORDED}"
        )));
    }
    fund_intents::get(&ctx.pool, offer.id, intent_id)
        .await?
        .ok_or_else(|| TradeError::Inconsistent(format!("intent {intent_id} vanished")))
}

/// A funding intent of `offer_id`, for its maker.
pub async fn intent(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    intent_id: Uuid,
) -> Result<FundIntent, TradeError> {
    let offer = load_as(ctx, offer_id, session, Role::Maker).await?;
    fund_intents::get(&ctx.pool, offer.id, intent_id)
        .await?
        .ok_or(TradeError::NoFundIntent)
}

fn not_a_token() -> TradeError {
    TradeError::invalid("invalid_token", "token", "not a Cashu token")
}

fn refused(r: TokenRefusal) -> TradeError {
    match r {
        TokenRefusal::Malformed => not_a_token(),
        TokenRefusal::WrongMint(_) => {
            TradeError::invalid("token_wrong_mint", "token", r.to_string())
        }
        TokenRefusal::WrongKeyset => {
            TradeError::invalid("token_wrong_keyset", "token", r.to_string())
        }
        TokenRefusal::Mint(e) => e.into(),
    }
}

/// The Ys (hex) sorted and the SHA-256 of them: public, and with the sealed token all that is
/// kept.
fn ys_hex(ys: &[PublicKey]) -> (Vec<String>, String) {
    let mut ys: Vec<String> = ys.iter().map(PublicKey::to_hex).collect();
    ys.sort();
    let hash = sha256::Hash::hash(ys.concat().as_bytes());
    (ys, hash.to_string())
}
