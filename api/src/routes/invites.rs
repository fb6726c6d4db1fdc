//! Invite codes: the public validity check, and the admin's create, list and revoke.

use chrono::{DateTime, Utc};
use openpleb_common::db::invites::{self, Invite, InviteStatus};
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::auth::AdminAuth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Default lifetime of a new invite.
const DEFAULT_INVITE_SECS: u64 = 7 * 86_400;

/// An invite code as admins see it.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InviteView {
    /// Id.
    pub id: uuid::Uuid,
    /// The code.
    pub code: String,
    /// `valid`, `used`, `revoked` or `expired`.
    pub status: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Consumed by a registration.
    pub used_at: Option<DateTime<Utc>>,
    /// Revoked by an admin.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<Invite> for InviteView {
    fn from(i: Invite) -> Self {
        Self {
            status: i.status(Utc::now()).as_str().to_owned(),
            id: i.id,
            code: i.code,
            created_at: i.created_at,
            expires_at: i.expires_at,
            used_at: i.used_at,
            revoked_at: i.revoked_at,
        }
    }
}

/// Create an invite.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct CreateInvite {
    /// Lifetime in seconds (default 7 days, at most 90 days).
    #[oai(validator(minimum(value = "60"), maximum(value = "7776000")))]
    pub expires_in_secs: Option<u64>,
}

/// A valid invite.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct InviteValidity {
    /// Always true when this is returned.
    pub valid: bool,
    /// Expires.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, ApiResponse)]
enum Created {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<InviteView>),
}

#[derive(Debug, ApiResponse)]
enum Revoked {
    /// Revoked.
    #[oai(status = 204)]
    Ok,
}

fn new_code() -> String {
    // 24 characters from 30 unambiguous symbols (about 117 bits), easy to type.
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes
        .iter()
        .take(24)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// Public invite endpoints.
#[derive(Debug)]
pub struct InvitesApi;

#[OpenApi(tag = "ApiTags::Invites")]
impl InvitesApi {
    /// Check an invite code
    ///
    /// 200 when it can be used to register, 404 when unknown, 410 when used, revoked or
    /// expired.
    #[oai(
        path = "/invite-codes/:code/validate",
        method = "get",
        operation_id = "validateInviteCode"
    )]
    async fn validate(
        &self,
        state: Data<&AppState>,
        code: Path<String>,
    ) -> ApiResult<Json<InviteValidity>> {
        let invite = invites::find(&state.ctx.pool, &code)
            .await?
            .ok_or_else(|| ApiError::not_found("invite_not_found", "no such invite code"))?;
        match invite.status(Utc::now()) {
            InviteStatus::Valid => Ok(Json(InviteValidity {
                valid: true,
                expires_at: invite.expires_at,
            })),
            other => Err(gone(other).into()),
        }
    }
}

/// The 410 for an invite that exists but cannot be used.
pub fn gone(status: InviteStatus) -> ApiError {
    match status {
        InviteStatus::Used => ApiError::gone("invite_used", "this invite code was already used"),
        InviteStatus::Revoked => ApiError::gone("invite_revoked", "this invite code was revoked"),
        _ => ApiError::gone("invite_expired", "this invite code has expired"),
    }
}

/// Admin invite endpoints.
#[derive(Debug)]
pub struct AdminInvitesApi;

#[OpenApi(tag = "ApiTags::Admin")]
impl AdminInvitesApi {
    /// Create an invite code
    #[oai(
        path = "/admin/invite-codes",
        method = "post",
        operation_id = "createInviteCode"
    )]
    async fn create(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        body: Json<CreateInvite>,
    ) -> ApiResult<Created> {
        let secs = body.expires_in_secs.unwrap_or(DEFAULT_INVITE_SECS);
        let expires_at = Utc::now()
            + chrono::Duration::seconds(i64::try_from(secs).map_err(ApiError::internal)?);
        let invite = invites::create(&state.ctx.pool, &new_code(), expires_at).await?;
        tracing::info!(invite = %invite.id, "invite code created");
        super::audit(&state, &auth.0, "create_invite", invite.id, None).await?;
        Ok(Created::Ok(Json(invite.into())))
    }

    /// List invite codes
    #[oai(
        path = "/admin/invite-codes",
        method = "get",
        operation_id = "listInviteCodes"
    )]
    async fn list(
        &self,
        _auth: AdminAuth,
        state: Data<&AppState>,
        /// Most codes to return, newest first.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "1000"))
        )]
        limit: Query<i64>,
    ) -> ApiResult<Json<Vec<InviteView>>> {
        let list = invites::list(&state.ctx.pool, *limit).await?;
        Ok(Json(list.into_iter().map(Into::into).collect()))
    }

    /// Revoke an unused invite code
    #[oai(
        path = "/admin/invite-codes/:code",
        method = "delete",
        operation_id = "revokeInviteCode"
    )]
    async fn revoke(
        &self,
        auth: AdminAuth,
        state: Data<&AppState>,
        code: Path<String>,
    ) -> ApiResult<Revoked> {
        if invites::revoke(&state.ctx.pool, &code).await? {
            // The code itself is a credential: the record names the invite by id.
            if let Some(i) = invites::find(&state.ctx.pool, &code).await? {
                super::audit(&state, &auth.0, "revoke_invite", i.id, None).await?;
            }
            return Ok(Revoked::Ok);
        }
        match invites::find(&state.ctx.pool, &code).await? {
            None => Err(ApiError::not_found("invite_not_found", "no such invite code").into()),
            Some(i) => Err(ApiError::conflict(
                "invite_not_revocable",
                format!("the invite is {}", i.status(Utc::now()).as_str()),
            )
            .into()),
        }
    }
}

fn default_limit() -> i64 {
    100
}
