//! Reputation in the trade: what a party sends with its offer or claim (blinded outputs to
//! earn, tokens to stake with outputs for their return), and what happens to them when the
//! trade ends ([`crate::domain::reputation::fates`]). Staked tokens are spent in the transaction
//! that creates the offer or claim, so a token can never be staked twice.

use cdk_common::nuts::{BlindedMessage, Proof};
use sqlx::PgConnection;
use uuid::Uuid;

use super::payouts::{proven_key, KeyProof};
use super::{TradeCtx, TradeError};
use crate::db::claims::{self, Claim};
use crate::db::disputes;
use crate::db::offers::Offer;
use crate::db::reputation::{self, Purpose, SignedOutput};
use crate::domain::reputation::Fate;
use crate::domain::role::Role;
use crate::reputation::ReputationError;

/// What a party sends with its offer or claim.
#[derive(Debug, Clone, Default)]
pub struct Reputation {
    /// Outputs signed when it earns (at most `REPUTATION_EARN_PER_TRADE`).
    pub outputs: Vec<BlindedMessage>,
    /// Tokens it stakes (at most `REPUTATION_MAX_STAKE`).
    pub stake: Vec<Proof>,
    /// One output per staked token, signed when the stake comes back.
    pub return_outputs: Vec<BlindedMessage>,
}

fn refused(field: &'static str, e: ReputationError) -> TradeError {
    let code = match e {
        ReputationError::Forged => "invalid_reputation_token",
        ReputationError::UnknownKeyset | ReputationError::InactiveKeyset => "unknown_keyset",
        ReputationError::WrongAmount => "wrong_amount",
        ReputationError::Malformed(_) => "invalid_reputation_output",
    };
    TradeError::invalid(code, field, e.to_string())
}

/// Checks `r` against the issuer and the limits, before anything is written.
pub(crate) fn check(ctx: &TradeCtx, r: &Reputation) -> Result<(), TradeError> {
    let limits = &ctx.config.reputation;
    if r.outputs.len() > limits.earn_per_trade {
        return Err(TradeError::invalid(
            "too_many_outputs",
            "reputation.outputs",
            format!("at most {} per trade", limits.earn_per_trade),
        ));
    }
    if r.stake.len() > limits.max_stake {
        return Err(TradeError::invalid(
            "stake_too_large",
            "reputation.stake",
            format!("at most {} tokens", limits.max_stake),
        ));
    }
    if r.return_outputs.len() != r.stake.len() {
        return Err(TradeError::invalid(
            "return_outputs_mismatch",
            "reputation.returnOutputs",
            "one return output per staked token",
        ));
    }
    for o in &r.outputs {
        ctx.reputation
            .check_output(o)
            .map_err(|e| refused("reputation.outputs", e))?;
    }
    for o in &r.return_outputs {
        ctx.reputation
            .check_output(o)
            .map_err(|e| refused("reputation.returnOutputs", e))?;
    }
    for p in &r.stake {
        ctx.reputation
            .verify(p)
            .map_err(|e| refused("reputation.stake", e))?;
    }
    Ok(())
}

/// Whose outputs and stake: the maker's of an offer, or a taker's claim.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Owner<'a> {
    /// A party of an offer (the taker: the winning claim's).
    Offer(Uuid, Role),
    /// One claim, won or not.
    Claim(&'a Claim),
}

/// Spends the staked tokens and keeps the outputs of `owner`, in the caller's transaction (the
/// one that creates the offer or the claim); the stake count.
pub(crate) async fn record(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    owner: Owner<'_>,
    r: &Reputation,
) -> Result<i32, TradeError> {
    let (offer_id, role, claim_id) = match owner {
        Owner::Offer(id, role) => (id, role, None),
        Owner::Claim(c) => (c.offer_id, Role::Taker, Some(c.id)),
    };
    for p in &r.stake {
        let y = ctx
            .reputation
            .verify(p)
            .map_err(|e| refused("reputation.stake", e))?;
        if !reputation::spend(conn, &y.to_hex(), &p.keyset_id.to_string()).await? {
            return Err(TradeError::TokenStaked);
        }
    }
    let outputs = r.outputs.iter().map(|o| (Purpose::Earn, o));
    let returns = r.return_outputs.iter().map(|o| (Purpose::Return, o));
    for (purpose, o) in outputs.chain(returns) {
        let fresh = reputation::add_output(
            conn,
            offer_id,
            role,
            claim_id,
            purpose,
            &o.keyset_id.to_string(),
            &o.blinded_secret.to_hex(),
        )
        .await?;
        if !fresh {
            return Err(TradeError::invalid(
                "output_reused",
                "reputation.outputs",
                "every blinded output may be sent once",
            ));
        }
    }
    let staked = i32::try_from(r.stake.len()).unwrap_or(i32::MAX);
    match owner {
        Owner::Offer(..) => reputation::set_stake(conn, offer_id, role, staked).await?,
        Owner::Claim(c) => claims::set_stake(conn, c.id, staked).await?,
    }
    Ok(staked)
}

/// Applies `fate` to the pending outputs of `role` on `offer`: signs what it earned or got
/// back, voids the rest. Idempotent: only pending outputs are touched.
pub(crate) async fn conclude(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    offer: &Offer,
    role: Role,
    fate: Fate,
) -> Result<(), TradeError> {
    conclude_owner(ctx, conn, Owner::Offer(offer.id, role), fate).await
}

/// Applies `fate` to the pending outputs of `owner` (as [`conclude`]).
pub(crate) async fn conclude_owner(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    owner: Owner<'_>,
    fate: Fate,
) -> Result<(), TradeError> {
    let pending = match owner {
        Owner::Offer(id, role) => reputation::pending(conn, id, role).await?,
        Owner::Claim(c) => reputation::pending_of_claim(conn, c.id).await?,
    };
    for o in pending {
        let sign = matches!(
            (fate, o.purpose.as_str()),
            (Fate::Earn, _) | (Fate::Return, "return")
        );
        if !sign {
            reputation::mark_void(conn, o.id).await?;
            continue;
        }
        let message: BlindedMessage = serde_json::from_value(serde_json::json!({
            "amount": 1, "id": o.keyset_id, "B_": o.blinded_secret,
        }))
        .map_err(|e| TradeError::Inconsistent(format!("stored output {}: {e}", o.id)))?;
        let signature = ctx
            .reputation
            .sign(&message)
            .map_err(|e| TradeError::Inconsistent(format!("signing output {}: {e}", o.id)))?;
        let json = serde_json::to_value(&signature)
            .map_err(|e| TradeError::Inconsistent(format!("output {}: {e}", o.id)))?;
        reputation::mark_signed(conn, o.id, &json).await?;
    }
    Ok(())
}

/// The signed outputs of `role` on `offer_id`.
pub async fn signed_for(
    ctx: &TradeCtx,
    offer_id: Uuid,
    role: Role,
) -> Result<Vec<SignedOutput>, TradeError> {
    Ok(reputation::signed(&ctx.pool, offer_id, role).await?)
}

/// The message a party's key signs to fetch its reputation signatures without a session.
pub fn key_proof_message(offer: Uuid, timestamp: i64) -> String {
    format!("openpleb-reputation:{offer}:{timestamp}")
}

/// The signed outputs of the party of `offer_id` whose key `proof` proves: the payout key it
/// gave when creating or claiming the offer, or the registered key it revealed in a dispute
/// (its payouts lock to either). Trades outlive sessions, and this needs none. A key that is
/// no party's gets an empty list, as `payouts/by-key` does.
pub async fn signed_for_key(
    ctx: &TradeCtx,
    offer_id: Uuid,
    proof: KeyProof<'_>,
) -> Result<Vec<SignedOutput>, TradeError> {
    let key = proven_key(ctx, &proof, &key_proof_message(offer_id, proof.timestamp))?;
    let offer = super::load(ctx, offer_id).await?;
    let revealed = {
        let mut conn = ctx.pool.acquire().await?;
        disputes::get(&mut conn, offer.id).await?
    };
    let is = |given: Option<&str>, shown: Option<&str>| {
        given == Some(key.as_str()) || shown == Some(key.as_str())
    };
    let role = if is(
        Some(offer.maker_payout_pubkey.as_str()),
        revealed.as_ref().and_then(|d| d.maker_pubkey.as_deref()),
    ) {
        Role::Maker
    } else if is(
        offer.taker_payout_pubkey.as_deref(),
        revealed.as_ref().and_then(|d| d.taker_pubkey.as_deref()),
    ) {
        Role::Taker
    } else {
        return Ok(Vec::new());
    };
    signed_for(ctx, offer.id, role).await
}

/// The signed outputs among `blinded` (hex B_ values only their owner knows).
pub async fn signed_by_outputs(
    ctx: &TradeCtx,
    blinded: &[String],
) -> Result<Vec<SignedOutput>, TradeError> {
    Ok(reputation::signed_by_outputs(&ctx.pool, blinded).await?)
}
