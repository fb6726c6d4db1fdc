//! Where a party is told: its Web Push subscriptions and webhooks for one offer, given with the
//! offer or the claim (so the first notice cannot be missed) and set or removed later, by the
//! party's session or, since trades outlive their one-hour sessions, by its payout key.
//!
//! A target belongs to one party of one offer (a claimant's to its claim until the claim wins),
//! never to a session or a user. Its endpoint is checked before it is stored (https, length, no
//! literal private address; the address actually connected to is checked at every delivery),
//! a party holds at most `NOTIFY_MAX_TARGETS`, and a webhook's signing secret is returned once.

use sqlx::PgConnection;
use uuid::Uuid;

use super::payouts::{proven_key, KeyProof};
use super::{load, Role, TradeCtx, TradeError, Viewer};
use crate::db::notify_targets::{self, Kind, Owner};
use crate::db::{claims, offers::Offer};
use crate::domain::claim::ClaimStatus;
use crate::notify::push::Subscription;
use crate::notify::{send, webhook};

/// A browser's push subscription, as `PushSubscription.toJSON()` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushInput {
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// `keys.p256dh`.
    pub p256dh: String,
    /// `keys.auth`.
    pub auth: String,
}

/// Where to be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Web Push subscription.
    Push(PushInput),
    /// A webhook URL.
    Webhook(String),
}

/// What setting a target gives back: a webhook's signing secret, shown this once.
pub type Secret = Option<String>;

/// The message a payout key signs to set a target without a session.
pub fn proof_message(offer: Uuid, timestamp: i64) -> String {
    format!("openpleb-notify:{offer}:{timestamp}")
}

/// Checks `t` before anything is stored.
fn check(ctx: &TradeCtx, t: &Target) -> Result<(), TradeError> {
    let allow = ctx.config.notify.allow_private;
    match t {
        Target::Push(p) => {
            if ctx.config.notify.vapid_private_key.is_none() {
                return Err(TradeError::invalid(
                    "push_unavailable",
                    "push",
                    "this server sends no Web Push (no VAPID key); use a webhook",
                ));
            }
            send::check_url(&p.endpoint, allow)
                .map_err(|e| TradeError::invalid("invalid_push_endpoint", "push.endpoint", e))?;
            Subscription {
                endpoint: &p.endpoint,
                p256dh: &p.p256dh,
                auth: &p.auth,
            }
            .check_keys()
            .map_err(|e| TradeError::invalid("invalid_push_keys", "push.keys", e.to_string()))
        }
        Target::Webhook(url) => send::check_url(url, allow)
            .map_err(|e| TradeError::invalid("invalid_webhook_url", "webhook.url", e)),
    }
}

/// Checks every target given with an offer or a claim, before its transaction starts.
pub(crate) fn check_all(ctx: &TradeCtx, targets: &[Target]) -> Result<(), TradeError> {
    if i64::try_from(targets.len()).unwrap_or(i64::MAX) > ctx.config.notify.max_targets {
        return Err(TradeError::TooManyTargets(ctx.config.notify.max_targets));
    }
    targets.iter().try_for_each(|t| check(ctx, t))
}

/// Stores `t` for `owner` (checked already), in the caller's transaction; a webhook's secret.
pub(crate) async fn store(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    owner: &Owner,
    t: &Target,
) -> Result<Secret, TradeError> {
    let (endpoint, kind, secret) = match t {
        Target::Push(p) => (
            p.endpoint.as_str(),
            Kind::WebPush {
                p256dh: p.p256dh.clone(),
                auth: p.auth.clone(),
            },
            None,
        ),
        Target::Webhook(url) => {
            let secret = webhook::new_secret();
            (
                url.as_str(),
                Kind::Webhook {
                    secret: secret.clone(),
                },
                Some(secret),
            )
        }
    };
    let held = notify_targets::count(conn, owner).await?;
    let (_, added) = notify_targets::put(conn, owner, endpoint, &kind).await?;
    if added && held >= ctx.config.notify.max_targets {
        return Err(TradeError::TooManyTargets(ctx.config.notify.max_targets));
    }
    Ok(secret)
}

/// Stores every target of an offer's or a claim's request; the webhook secret, if one was
/// given (at most one is kept per request: the last).
pub(crate) async fn store_all(
    ctx: &TradeCtx,
    conn: &mut PgConnection,
    owner: &Owner,
    targets: &[Target],
) -> Result<Secret, TradeError> {
    let mut secret = None;
    for t in targets {
        if let Some(s) = store(ctx, conn, owner, t).await? {
            secret = Some(s);
        }
    }
    Ok(secret)
}

/// Whose targets a session sets on `offer`: the maker's, the taker's, or its claim's.
async fn owner_of_session(
    ctx: &TradeCtx,
    offer: &Offer,
    session: Uuid,
) -> Result<Owner, TradeError> {
    if let Viewer::Party(role) = Viewer::of(offer, Some(session)) {
        return Ok(Owner {
            offer_id: offer.id,
            role,
            claim_id: None,
        });
    }
    match claims::latest_of(&ctx.pool, offer.id, session).await? {
        Some(c) if c.status != ClaimStatus::Won => Ok(Owner {
            offer_id: offer.id,
            role: Role::Taker,
            claim_id: Some(c.id),
        }),
        _ => Err(TradeError::NotFound),
    }
}

/// Whose targets the payout key `key` sets on `offer`: the maker's, the taker's, or a
/// claimant's (the key it claimed with).
async fn owner_of_key(ctx: &TradeCtx, offer: &Offer, key: &str) -> Result<Owner, TradeError> {
    let party = |role| Owner {
        offer_id: offer.id,
        role,
        claim_id: None,
    };
    if offer.maker_payout_pubkey == key {
        return Ok(party(Role::Maker));
    }
    if offer.taker_payout_pubkey.as_deref() == Some(key) {
        return Ok(party(Role::Taker));
    }
    let mut conn = ctx.pool.acquire().await?;
    match claims::by_payout_key(&mut conn, offer.id, key).await? {
        Some(c) => Ok(Owner {
            offer_id: offer.id,
            role: Role::Taker,
            claim_id: Some(c.id),
        }),
        None => Err(TradeError::NotFound),
    }
}

async fn set(ctx: &TradeCtx, owner: Owner, t: &Target) -> Result<Secret, TradeError> {
    check(ctx, t)?;
    let mut tx = ctx.pool.begin().await?;
    let secret = store(ctx, &mut tx, &owner, t).await?;
    tx.commit().await?;
    Ok(secret)
}

/// Sets a target of the party (or claimant) `session` is on `offer_id`.
pub async fn set_for_session(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    t: &Target,
) -> Result<Secret, TradeError> {
    let offer = load(ctx, offer_id).await?;
    let owner = owner_of_session(ctx, &offer, session).await?;
    set(ctx, owner, t).await
}

/// Sets a target of the party (or claimant) whose payout key `proof` proves.
pub async fn set_for_key(
    ctx: &TradeCtx,
    offer_id: Uuid,
    proof: KeyProof<'_>,
    t: &Target,
) -> Result<Secret, TradeError> {
    let key = proven_key(ctx, &proof, &proof_message(offer_id, proof.timestamp))?;
    let offer = load(ctx, offer_id).await?;
    let owner = owner_of_key(ctx, &offer, &key).await?;
    set(ctx, owner, t).await
}

/// Removes every push subscription (`webpush`) or webhook (`webhook`) of the party (or
/// claimant) `session` is on `offer_id`; how many.
pub async fn remove_for_session(
    ctx: &TradeCtx,
    session: Uuid,
    offer_id: Uuid,
    kind: &'static str,
) -> Result<u64, TradeError> {
    let offer = load(ctx, offer_id).await?;
    let owner = owner_of_session(ctx, &offer, session).await?;
    Ok(notify_targets::remove(&ctx.pool, &owner, kind).await?)
}
