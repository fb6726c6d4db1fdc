//! Registration, the OIDC provider's registration check, and user status.

use chrono::Utc;
use openpleb_common::db::{self, invites, users};
use openpleb_common::domain::keys::XOnlyKey;
use openpleb_common::domain::registration::{self, RegistrationError};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use uuid::Uuid;

use super::invites::gone;
use super::ApiTags;
use crate::auth::{AdminAuth, OidcApiAuth};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// What the user signs.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RegistrationPayload {
    /// The invite code.
    #[oai(validator(min_length = "1", max_length = "64"))]
    pub invite_code: String,
    /// BIP-340 x-only public key, 64 lowercase hex characters.
    #[oai(validator(pattern = "^[0-9a-f]{64}$"))]
    pub pubkey: String,
}

/// A signed registration.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct RegisterRequest {
    // The signed payload.
    pub payload: RegistrationPayload,
    /// A fresh random string (16-128 printable ASCII), never reused.
    #[oai(validator(pattern = "^[!-~]{16,128}$"))]
    pub nonce: String,
    /// Milliseconds since the Unix epoch; must be within 60 s of the server's clock.
    pub timestamp: i64,
    /// BIP-340 Schnorr signature (128 hex) by `pubkey` over
    /// SHA-256(nonce ‖ timestamp ‖ JSON of the payload with keys sorted).
    #[oai(validator(pattern = "^[0-9a-fA-F]{128}$"))]
    pub signature: String,
}

/// A registered user.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// The registered pubkey.
    pub pubkey: String,
    /// `active` or `inactive`.
    pub status: String,
}

impl From<users::User> for UserView {
    fn from(u: users::User) -> Self {
        Self {
            id: u.id,
            pubkey: u.pubkey,
            status: u.status,
        }
    }
}

#[derive(Debug, ApiResponse)]
enum Registered {
    /// Registered.
    #[oai(status = 201)]
    Ok(Json<UserView>),
}

/// The answer to the OIDC provider.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct PubkeyCheck {
    /// The pubkey is registered.
    pub registered: bool,
    /// The pubkey is registered and may log in.
    pub active: bool,
}

/// A user status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum UserStatus {
    /// May log in.
    Active,
    /// May not log in.
    Inactive,
}

/// Change a user's status.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SetStatus {
    // The new status.
    pub status: UserStatus,
}

fn registration_error(e: RegistrationError) -> ApiError {
    let code = match e {
        RegistrationError::StaleTimestamp => "stale_timestamp",
        RegistrationError::FutureTimestamp => "future_timestamp",
        RegistrationError::MalformedSignature => "malformed_signature",
        RegistrationError::InvalidSignature => "invalid_signature",
        RegistrationError::MalformedNonce => "malformed_nonce",
    };
    ApiError::bad_request(code, e.to_string())
}

/// Public user endpoints.
#[derive(Debug)]
pub struct UsersApi;

#[OpenApi(tag = "ApiTags::Users")]
impl UsersApi {
    /// Register a pubkey with an invite code
    ///
    /// One time per pubkey. The invite is consumed in the same transaction that creates the
    /// user; the nonce can never be used again.
    #[oai(
        path = "/users/register",
        method = "post",
        operation_id = "registerUser"
    )]
    async fn register(
        &self,
        state: Data<&AppState>,
        body: Json<RegisterRequest>,
    ) -> ApiResult<Registered> {
        // Check the request itself: shape, clock, signature. No database yet.
        let key: XOnlyKey = body
            .payload
            .pubkey
            .parse()
            .map_err(|e| ApiError::bad_request("malformed_pubkey", format!("pubkey: {e}")))?;
        if body.payload.pubkey != key.to_string() {
            return Err(
                ApiError::bad_request("malformed_pubkey", "pubkey must be lowercase hex").into(),
            );
        }
        registration::check_nonce(&body.nonce).map_err(registration_error)?;
        registration::check_timestamp(body.timestamp, Utc::now().timestamp_millis())
            .map_err(registration_error)?;
        let payload = serde_json::json!({
            "inviteCode": body.payload.invite_code,
            "pubkey": body.payload.pubkey,
        });
        let digest = registration::message_digest(&body.nonce, body.timestamp, &payload);
        registration::verify_signature(&key, digest, &body.signature)
            .map_err(registration_error)?;

        // Act: nonce, invite and user in one transaction.
        let mut tx = state.ctx.pool.begin().await?;
        if !users::record_nonce(&mut tx, &body.nonce).await? {
            return Err(ApiError::conflict("nonce_reused", "this nonce was already used").into());
        }
        let invite = invites::find_for_update(&mut tx, &body.payload.invite_code)
            .await?
            .ok_or_else(|| ApiError::not_found("invite_not_found", "no such invite code"))?;
        let status = invite.status(Utc::now());
        if status != invites::InviteStatus::Valid {
            return Err(gone(status).into());
        }
        let user = match users::insert(&mut tx, &body.payload.pubkey, invite.id).await {
            Ok(u) => u,
            Err(e) if db::violated_unique(&e).is_some() => {
                return Err(ApiError::conflict(
                    "pubkey_registered",
                    "this pubkey is already registered",
                )
                .into())
            }
            Err(e) => return Err(e.into()),
        };
        if !invites::consume(&mut tx, invite.id).await? {
            return Err(gone(invites::InviteStatus::Used).into());
        }
        tx.commit().await?;
        tracing::info!(user = %user.id, "user registered");
        Ok(Registered::Ok(Json(user.into())))
    }
}

/// Admin and OIDC-provider user endpoints.
#[derive(Debug)]
pub struct AdminUsersApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminUsersApi {
    /// Is this pubkey registered and active?
    ///
    /// For the OIDC provider (role `oidc-api`): answers this and nothing else.
    #[oai(
        path = "/oidc-api/pubkey/:pubkey",
        method = "get",
        operation_id = "checkPubkey"
    )]
    async fn check_pubkey(
        &self,
        _auth: OidcApiAuth,
        state: Data<&AppState>,
        /// BIP-340 x-only public key, 64 hex characters.
        #[oai(validator(pattern = "^[0-9a-fA-F]{64}$"))]
        pubkey: Path<String>,
    ) -> ApiResult<Json<PubkeyCheck>> {
        let key: XOnlyKey = pubkey
            .parse()
            .map_err(|e| ApiError::bad_request("malformed_pubkey", format!("pubkey: {e}")))?;
        let user = users::find_by_pubkey(&state.ctx.pool, &key.to_string()).await?;
        Ok(Json(PubkeyCheck {
            registered: user.is_some(),
            active: user.is_some_and(|u| u.status == "active"),
        }))
    }

    /// Activate or deactivate a user
    #[oai(
        path = "/admin/users/:id/status",
        method = "patch",
        operation_id = "setUserStatus"
    )]
    async fn set_status(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        id: Path<Uuid>,
        body: Json<SetStatus>,
    ) -> ApiResult<Json<UserView>> {
        let status = match body.status {
            UserStatus::Active => "active",
            UserStatus::Inactive => "inactive",
        };
        let user = users::set_status(&state.ctx.pool, *id, status)
            .await?
            .ok_or_else(|| ApiError::not_found("user_not_found", "no such user"))?;
        tracing::info!(user = %user.id, status, "user status changed");
        super::audit(&state, &auth.0, "set_user_status", user.id, Some(status)).await?;
        Ok(Json(user.into()))
    }
}
