//! Notifications: the VAPID key browsers subscribe with, and each party's Web Push
//! subscriptions and webhooks for one offer, set by its session or by its payout key.

use openpleb_common::notify::push::VapidKey;
use openpleb_common::trade::payouts::KeyProof;
use openpleb_common::trade::subscribe::{self, PushInput, Target};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use uuid::Uuid;

use super::ApiTags;
use crate::auth::SessionAuth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The keys of a push subscription.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PushKeys {
    /// The browser's P-256 public key (uncompressed point, base64url).
    #[oai(validator(min_length = "1", max_length = "200"))]
    pub p256dh: String,
    /// The browser's 16-byte auth secret (base64url).
    #[oai(validator(min_length = "1", max_length = "100"))]
    pub auth: String,
}

/// A browser's push subscription, as `PushSubscription.toJSON()` serialises it (other fields,
/// such as `expirationTime`, are ignored).
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PushSubscriptionBody {
    /// The push service's URL for this browser (https).
    #[oai(validator(min_length = "1", max_length = "2048"))]
    pub endpoint: String,
    // Its keys.
    pub keys: PushKeys,
}

/// A webhook.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookBody {
    /// Where notices are posted (https), signed in the Standard Webhooks form.
    #[oai(validator(min_length = "1", max_length = "2048"))]
    pub url: String,
}

/// Where a party is told what happens to its trade, given with an offer or a claim.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct NotifyBody {
    // A Web Push subscription (subscribe afresh for every offer: one endpoint used for two
    // offers lets its push service, and us, link them).
    pub push: Option<PushSubscriptionBody>,
    // A webhook (for bots); its signing secret comes back once, as `webhookSecret`.
    pub webhook: Option<WebhookBody>,
}

impl NotifyBody {
    /// The targets asked for.
    pub fn targets(&self) -> Vec<Target> {
        let mut out = Vec::new();
        if let Some(p) = &self.push {
            out.push(push_target(p));
        }
        if let Some(w) = &self.webhook {
            out.push(Target::Webhook(w.url.clone()));
        }
        out
    }
}

fn push_target(p: &PushSubscriptionBody) -> Target {
    Target::Push(PushInput {
        endpoint: p.endpoint.clone(),
        p256dh: p.keys.p256dh.clone(),
        auth: p.keys.auth.clone(),
    })
}

/// The server's VAPID public key.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PushKeyView {
    /// Pass as `applicationServerKey` to `pushManager.subscribe` (uncompressed P-256 point,
    /// base64url).
    pub public_key: String,
}

/// A webhook set.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookSet {
    /// The signing secret (`whsec_…`): shown this once; check each delivery's
    /// `webhook-signature` with it.
    pub secret: String,
}

/// A push subscription proven by the party's payout key.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PushByKey {
    // The subscription.
    pub subscription: PushSubscriptionBody,
    /// The payout key given when creating or claiming the offer (x-only hex).
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub payout_pubkey: String,
    /// Milliseconds since the epoch, within 60 s of the server's clock.
    pub timestamp: i64,
    /// BIP-340 signature by the payout key over
    /// SHA-256("openpleb-notify:" ‖ offer id ‖ ":" ‖ timestamp).
    #[oai(validator(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

/// A webhook proven by the party's payout key.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct WebhookByKey {
    // The webhook.
    pub webhook: WebhookBody,
    /// The payout key given when creating or claiming the offer (x-only hex).
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub payout_pubkey: String,
    /// Milliseconds since the epoch, within 60 s of the server's clock.
    pub timestamp: i64,
    /// BIP-340 signature by the payout key over
    /// SHA-256("openpleb-notify:" ‖ offer id ‖ ":" ‖ timestamp).
    #[oai(validator(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

#[derive(Debug, ApiResponse)]
enum Done {
    /// Done.
    #[oai(status = 204)]
    Ok,
}

/// Notification endpoints.
#[derive(Debug)]
pub struct NotifyApi;

#[OpenApi(tag = "ApiTags::Offers")]
impl NotifyApi {
    /// The VAPID public key for Web Push
    ///
    /// 404 `push_unavailable` when this server sends no Web Push (webhooks still work).
    #[oai(path = "/push/key", method = "get", operation_id = "getPushKey")]
    async fn key(&self, state: Data<&AppState>) -> ApiResult<Json<PushKeyView>> {
        let key = state
            .ctx
            .config
            .notify
            .vapid_private_key
            .as_ref()
            .and_then(|k| VapidKey::from_base64url(k.expose()).ok())
            .ok_or_else(|| {
                ApiError::not_found("push_unavailable", "this server sends no Web Push")
            })?;
        Ok(Json(PushKeyView {
            public_key: key.public_base64url(),
        }))
    }

    /// Add a push subscription (maker, taker or claimant)
    ///
    /// The caller's party of this offer (or its claim, before its bond wins) is told of every
    /// move that asks something of it or moves its money, and reminded before deadlines where
    /// silence decides against it. Notices carry the offer id, its status, the deadline and the
    /// action expected; never amounts, payment details, receipts or keys. Setting the same
    /// endpoint again replaces it; 409 `too_many_notify_targets` past `NOTIFY_MAX_TARGETS`.
    #[oai(path = "/offers/:id/push", method = "put", operation_id = "setPush")]
    async fn set_push(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<PushSubscriptionBody>,
    ) -> ApiResult<Done> {
        subscribe::set_for_session(&state.ctx, auth.0.id, *id, &push_target(&body)).await?;
        Ok(Done::Ok)
    }

    /// Remove your push subscriptions of an offer
    #[oai(
        path = "/offers/:id/push",
        method = "delete",
        operation_id = "removePush"
    )]
    async fn remove_push(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Done> {
        subscribe::remove_for_session(&state.ctx, auth.0.id, *id, "webpush").await?;
        Ok(Done::Ok)
    }

    /// Add a push subscription by payout key (no session)
    ///
    /// Trades outlive their one-hour sessions: proving the payout key given with the offer or
    /// the claim sets a subscription without one.
    #[oai(
        path = "/offers/:id/push/by-key",
        method = "put",
        operation_id = "setPushByKey"
    )]
    async fn set_push_by_key(
        &self,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<PushByKey>,
    ) -> ApiResult<Done> {
        let proof = KeyProof {
            pubkey: &body.payout_pubkey,
            timestamp: body.timestamp,
            signature: &body.signature,
        };
        let target = push_target(&body.subscription);
        subscribe::set_for_key(&state.ctx, *id, proof, &target).await?;
        Ok(Done::Ok)
    }

    /// Set a webhook (maker, taker or claimant)
    ///
    /// The same notices as Web Push, posted as JSON and signed in the Standard Webhooks form
    /// (`webhook-id`, `webhook-timestamp`, `webhook-signature`); the secret is returned once.
    /// The URL must be https and reach a public address (checked at every delivery, after
    /// resolution); redirects are not followed.
    #[oai(
        path = "/offers/:id/webhook",
        method = "put",
        operation_id = "setWebhook"
    )]
    async fn set_webhook(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<WebhookBody>,
    ) -> ApiResult<Json<WebhookSet>> {
        let target = Target::Webhook(body.0.url);
        let secret = subscribe::set_for_session(&state.ctx, auth.0.id, *id, &target).await?;
        Ok(Json(WebhookSet {
            secret: secret.unwrap_or_default(),
        }))
    }

    /// Remove your webhooks of an offer
    #[oai(
        path = "/offers/:id/webhook",
        method = "delete",
        operation_id = "removeWebhook"
    )]
    async fn remove_webhook(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
    ) -> ApiResult<Done> {
        subscribe::remove_for_session(&state.ctx, auth.0.id, *id, "webhook").await?;
        Ok(Done::Ok)
    }

    /// Set a webhook by payout key (no session)
    #[oai(
        path = "/offers/:id/webhook/by-key",
        method = "put",
        operation_id = "setWebhookByKey"
    )]
    async fn set_webhook_by_key(
        &self,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<WebhookByKey>,
    ) -> ApiResult<Json<WebhookSet>> {
        let proof = KeyProof {
            pubkey: &body.payout_pubkey,
            timestamp: body.timestamp,
            signature: &body.signature,
        };
        let target = Target::Webhook(body.webhook.url.clone());
        let secret = subscribe::set_for_key(&state.ctx, *id, proof, &target).await?;
        Ok(Json(WebhookSet {
            secret: secret.unwrap_or_default(),
        }))
    }
}
