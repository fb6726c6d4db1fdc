//! Payouts as their owners see them: by session (those locked to the key it gave as maker or
//! taker, and a late refund of a payment the session made) or by proving the payout key, since
//! trades outlive sessions.

use cdk_common::bitcoin::hashes::{sha256, Hash};
use uuid::Uuid;

use super::{load, payout_key, Role, TradeCtx, TradeError, Viewer};
use crate::db::payouts::{self, Payout};
use crate::db::{claims, disputes, offers};
use crate::domain::claim::ClaimStatus;
use crate::domain::money::Party;
use crate::domain::notify::{Action, Notice};
use crate::domain::payout::PayoutPurpose;
use crate::domain::registration::{check_timestamp, verify_signature};
use crate::notify::{self, Recipient};
use crate::wallet::WalletId;

/// The message a payout key signs to fetch its tokens.
pub fn proof_message(offer: Uuid, timestamp: i64) -> String {
    format!("openpleb-payouts:{offer}:{timestamp}")
}

/// The payouts of `offer_id` that belong to `session`: those locked to the payout key it gave
/// as the offer's current maker or taker (or to the registered key it revealed in a dispute),
/// plus refunds out of its own wallet of a payment it
/// made (e.g. the bond of a claim that lapsed). Not found when it has none and is not a party.
///
/// Matched by key and wallet rather than by party: a taker whose claim lapsed leaves its late
/// refund on the offer under party "taker", and the next taker must not see it.
pub async fn for_session(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
) -> Result<Vec<Payout>, TradeError> {
    let offer = load(ctx, offer_id).await?;
    let role = Viewer::of(&offer, Some(session)).role();
    let own_key = match role {
        Some(Role::Maker) => Some(offer.maker_payout_pubkey.as_str()),
        Some(Role::Taker) => offer.taker_payout_pubkey.as_deref(),
        None => None,
    };
    // After an issue, the party's payouts lock to the registered key it revealed.
    let revealed = {
        let mut conn = ctx.pool.acquire().await?;
        disputes::get(&mut conn, offer.id).await?
    };
    let revealed_key = match (role, revealed) {
        (Some(Role::Maker), Some(d)) => d.maker_pubkey,
        (Some(Role::Taker), Some(d)) => d.taker_pubkey,
        _ => None,
    };
    let own_wallet = WalletId::session(session);
    let mine = |p: &Payout| {
        let lock = p.lock_pubkey.as_deref();
        let to_my_key = (own_key.is_some() && lock == own_key)
            || (revealed_key.is_some() && lock == revealed_key.as_deref());
        // Settlements may be paid from either party's wallet; only a refund of the session's
        // own payment is its by the wallet it sits in.
        let my_refund = matches!(p.purpose, PayoutPurpose::LateRefund | PayoutPurpose::Sweep)
            && p.source_wallet == own_wallet.as_str();
        to_my_key || my_refund
    };
    let rows = payouts::for_offer(&ctx.pool, offer.id).await?;
    if role.is_none() && !rows.iter().any(mine) {
        return Err(TradeError::NotFound);
    }
    Ok(rows.into_iter().filter(|p| mine(p)).collect())
}

/// A signature proving a payout key.
#[derive(Debug, Clone)]
pub struct KeyProof<'a> {
    /// The payout key (x-only hex).
    pub pubkey: &'a str,
    /// Milliseconds since the epoch, within 60 s of now.
    pub timestamp: i64,
    /// BIP-340 signature over SHA-256 of [`proof_message`].
    pub signature: &'a str,
}

/// The key `proof` proves, as x-only hex, once its timestamp is fresh and its signature over
/// SHA-256 of `message` checks out.
pub(crate) fn proven_key(
    ctx: &TradeCtx,
    proof: &KeyProof<'_>,
    message: &str,
) -> Result<String, TradeError> {
    let key = payout_key(proof.pubkey, "payoutPubkey")?;
    check_timestamp(proof.timestamp, ctx.clock.now().timestamp_millis())
        .map_err(|e| TradeError::invalid("stale_timestamp", "timestamp", e.to_string()))?;
    let digest = sha256::Hash::hash(message.as_bytes());
    verify_signature(&key, digest.to_byte_array(), proof.signature)
        .map_err(|e| TradeError::invalid("invalid_signature", "signature", e.to_string()))?;
    Ok(key.to_string())
}

/// The payouts of `offer_id` locked to the proven key.
pub async fn for_key(
    ctx: &TradeCtx,
    offer_id: Uuid,
    proof: KeyProof<'_>,
) -> Result<Vec<Payout>, TradeError> {
    let key = proven_key(ctx, &proof, &proof_message(offer_id, proof.timestamp))?;
    let offer = load(ctx, offer_id).await?;
    let rows = payouts::for_offer(&ctx.pool, offer.id).await?;
    Ok(rows
        .into_iter()
        .filter(|p| p.lock_pubkey.as_deref() == Some(key.as_str()))
        .collect())
}

/// Records `p` released with its token (and the send's `fee_sats`) and tells its owner it can
/// fetch it, in one transaction. False when another run released it first (it told them).
pub async fn released(
    ctx: &TradeCtx,
    p: &Payout,
    token: &str,
    fee_sats: u64,
) -> Result<bool, TradeError> {
    let mut tx = ctx.pool.begin().await?;
    if !payouts::mark_released(&mut tx, p, token, fee_sats).await? {
        return Ok(false);
    }
    let owner = match (p.party, p.purpose) {
        (_, PayoutPurpose::Sweep) | (Party::Platform, _) => None,
        (Party::Maker, _) => Some(Recipient::Party(Role::Maker)),
        (Party::Taker, PayoutPurpose::LateRefund) => {
            // A bond refunded to a claimant that did not win: its claim is told, not the taker.
            match claims::by_bond_for_update(&mut tx, &p.reference).await? {
                Some(c) if c.status != ClaimStatus::Won => Some(Recipient::Claim(c.id)),
                _ => Some(Recipient::Party(Role::Taker)),
            }
        }
        (Party::Taker, _) => Some(Recipient::Party(Role::Taker)),
    };
    if let Some(to) = owner {
        let status = offers::get_for_update(&mut tx, p.offer_id)
            .await?
            .map_or_else(String::new, |o| o.status.as_str().to_owned());
        let notice = Notice {
            offer_id: p.offer_id,
            status,
            deadline: None,
            action: Action::FetchPayout.as_str().to_owned(),
        };
        // One notice per owner and reason: a settlement paid out of both wallets is two
        // payouts, but one thing to fetch; each late refund is its own.
        let owner = match to {
            Recipient::Party(role) => role.as_str().to_owned(),
            Recipient::Claim(id) => id.to_string(),
        };
        let why = match p.purpose {
            PayoutPurpose::LateRefund => p.reference.as_str(),
            other => other.as_str(),
        };
        let key = format!("payout:{}:{owner}:{why}", p.offer_id);
        notify::tell(&mut tx, p.offer_id, to, &notice, false, &key).await?;
    }
    tx.commit().await?;
    Ok(true)
}
