//! Anonymous sessions opened with blind auth tokens (BATs).
//!
//! A BAT is verified once, by spending it at the mint inside the transaction that records its
//! hash under a unique key, and from then on it is the session's bearer credential until the
//! session expires. Nothing about the session identifies a user.

use chrono::{DateTime, Utc};
use openpleb_common::db::sessions;
use openpleb_common::health::Dependency;
use openpleb_common::mint::{BatError, ParsedBat};
use poem::web::Data;
use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use crate::auth::SessionAuth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// A BAT presented in the body.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct BatBody {
    /// The blind auth token, `authA…`. May instead be sent as `Authorization: Bearer <BAT>`
    /// when opening a session.
    #[oai(validator(max_length = "4096", pattern = "^authA[A-Za-z0-9_-]+={0,2}$"))]
    pub bat: Option<String>,
}

/// A session as its holder sees it.
#[derive(Debug, Clone, Object)]
#[oai(rename_all = "camelCase", skip_serializing_if_is_none)]
pub struct SessionView {
    /// Always true when returned: the session is live.
    pub valid: bool,
    /// Opened.
    pub created_at: DateTime<Utc>,
    /// Ends unless renewed before.
    pub expires_at: DateTime<Utc>,
}

impl From<sessions::Session> for SessionView {
    fn from(s: sessions::Session) -> Self {
        Self {
            valid: true,
            created_at: s.created_at,
            expires_at: s.expires_at,
        }
    }
}

#[derive(Debug, ApiResponse)]
enum Opened {
    /// Opened; use the same BAT as `Authorization: Bearer <BAT>` from now on.
    #[oai(status = 201)]
    Ok(Json<SessionView>),
}

#[derive(Debug, ApiResponse)]
enum Ended {
    /// Ended.
    #[oai(status = 204)]
    Ok,
}

/// Verifies and burns `bat` inside `tx`: the hash is recorded first (a concurrent duplicate
/// blocks on the uncommitted key), then the mint spends it. Rolls back on any refusal.
async fn redeem(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    bat: &ParsedBat,
) -> Result<(), ApiError> {
    state.need_mint()?;
    state.ensure_blind_auth().await?;
    if !sessions::redeem_bat(tx, &bat.hash).await? {
        return Err(BatError::AlreadySpent.into());
    }
    let started = std::time::Instant::now();
    let spent = state.mint.spend_bat(bat).await;
    // Refusals (spent, not signed) are counted apart from the mint being unreachable: the
    // first is a client's doing, the second an operator's problem.
    let result = match &spent {
        Ok(()) => "ok",
        Err(BatError::Unavailable) => {
            state.ctx.health.suspect(Dependency::Mint);
            "error"
        }
        Err(_) => "rejected",
    };
    openpleb_common::metrics::bat_verified(result, started);
    Ok(spent?)
}

fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get(poem::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|v| v.trim().to_owned())
}

/// Session endpoints.
#[derive(Debug)]
pub struct SessionsApi;

#[OpenApi(tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Open a session with a BAT
    ///
    /// The BAT (body `bat`, or `Authorization: Bearer`) is spent at the mint once; a BAT can
    /// open one session, ever. 409 `bat_already_used` on reuse, 401 `invalid_bat` when the mint
    /// did not sign it.
    ///
    /// 503 `mint_unavailable` (with `Retry-After`) while the mint cannot be reached.
    #[oai(path = "/sessions", method = "post", operation_id = "openSession")]
    async fn open(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: Json<BatBody>,
    ) -> ApiResult<Opened> {
        let token = body.0.bat.or_else(|| bearer(req)).ok_or_else(|| {
            ApiError::bad_request("missing_bat", "send a BAT in `bat` or as a bearer token")
        })?;
        let bat = ParsedBat::parse(&token).map_err(ApiError::from)?;
        let mut tx = state.ctx.pool.begin().await?;
        redeem(&state, &mut tx, &bat).await?;
        let expires_at = Utc::now() + state.session_lifetime();
        let session = sessions::open(&mut tx, &bat.hash, expires_at).await?;
        tx.commit().await?;
        Ok(Opened::Ok(Json(session.into())))
    }

    /// The current session
    #[oai(
        path = "/sessions/current",
        method = "get",
        operation_id = "currentSession"
    )]
    async fn current(&self, auth: SessionAuth) -> ApiResult<Json<SessionView>> {
        Ok(Json(auth.0.into()))
    }

    /// Renew the session onto a fresh BAT
    ///
    /// Authenticated with the current BAT; the body's new BAT is spent at the mint and becomes
    /// the credential, with a new expiry. Offers and wallet stay with the session; the old BAT
    /// stops working.
    ///
    /// 503 `mint_unavailable` (with `Retry-After`) while the mint cannot be reached.
    #[oai(
        path = "/sessions/renew",
        method = "post",
        operation_id = "renewSession"
    )]
    async fn renew(
        &self,
        auth: SessionAuth,
        state: Data<&AppState>,
        body: Json<BatBody>,
    ) -> ApiResult<Json<SessionView>> {
        let token = body
            .0
            .bat
            .ok_or_else(|| ApiError::bad_request("missing_bat", "send the new BAT in `bat`"))?;
        let bat = ParsedBat::parse(&token).map_err(ApiError::from)?;
        let mut tx = state.ctx.pool.begin().await?;
        redeem(&state, &mut tx, &bat).await?;
        let expires_at = Utc::now() + state.session_lifetime();
        let session = sessions::renew(&mut tx, auth.0.id, &bat.hash, expires_at)
            .await?
            .ok_or_else(|| ApiError::unauthorized("session_expired", "the session has ended"))?;
        tx.commit().await?;
        state.sessions.forget(session.id);
        Ok(Json(session.into()))
    }

    /// End the session (logout)
    #[oai(path = "/sessions", method = "delete", operation_id = "endSession")]
    async fn end(&self, auth: SessionAuth, state: Data<&AppState>) -> ApiResult<Ended> {
        sessions::end(&state.ctx.pool, auth.0.id).await?;
        state.sessions.forget(auth.0.id);
        // Its event streams here end now; other processes' streams notice within a check.
        state.events.session_ended(auth.0.id);
        Ok(Ended::Ok)
    }
}
