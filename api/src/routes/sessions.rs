//! Anonymous sessions opened with blind auth tokens (BATs).
//!
//! A BAT is verified once, by spending it at the mint, and from then on it is the session's
//! bearer credential until the session expires. Nothing about the session identifies a user.
//!
//! The spend holds no database connection, so a slow mint cannot exhaust the pool for every
//! other request: the BAT's hash is recorded under its unique key and committed first (a
//! second use of the same BAT is refused from then on), the mint spends it, and the session
//! is opened or renewed in a second short transaction ([`spend`]).

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

/// Verifies and burns `bat` at the mint, with no database connection held while the mint
/// answers:
/// 1. its hash is recorded and committed: from here on any other use of it is a replay (409);
/// 2. the mint spends it;
/// 3. the caller marks it spent and opens or renews the session in one short transaction.
///
/// A BAT the mint refused (spent before, or never signed) is forgotten again: the mint refuses
/// it on any retry too. A spend that went unanswered (timeout, lost connection, a server
/// error) may have happened at the mint, so that BAT stays recorded and is burnt: the caller
/// is told to use a new one. A session that ends while its renewal's spend runs burns the new
/// BAT the same way.
async fn spend(state: &AppState, bat: &ParsedBat) -> Result<(), ApiError> {
    // A mint known to be down: refused before anything is written, so the BAT stays usable.
    state.need_mint()?;
    state.ensure_blind_auth().await?;
    if !sessions::reserve_bat(&state.ctx.pool, &bat.hash).await? {
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
    match spent {
        Ok(()) => Ok(()),
        Err(BatError::Unavailable) => Err(ApiError::unavailable(
            "mint_unavailable",
            "the mint did not answer; this BAT may have been spent there and cannot be used \
             again: use a new one",
        )),
        Err(refused) => {
            sessions::release_bat(&state.ctx.pool, &bat.hash).await?;
            Err(refused.into())
        }
    }
}

/// Spends `token` (see [`spend`]) and marks it spent in a transaction the caller completes by
/// opening or renewing the session: the transaction, the BAT and the session's new expiry.
async fn spend_into(
    state: &AppState,
    token: &str,
) -> ApiResult<(
    sqlx::Transaction<'static, sqlx::Postgres>,
    ParsedBat,
    DateTime<Utc>,
)> {
    let bat = ParsedBat::parse(token).map_err(ApiError::from)?;
    spend(state, &bat).await?;
    let mut tx = state.ctx.pool.begin().await?;
    if !sessions::mark_bat_spent(&mut tx, &bat.hash).await? {
        return Err(ApiError::internal("a BAT spent here was not reserved").into());
    }
    Ok((tx, bat, Utc::now() + state.session_lifetime()))
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
    /// open one session, ever. 409 `bat_already_used` on reuse (also while its first use is
    /// still being spent), 401 `invalid_bat` when the mint did not sign it (such a BAT is
    /// refused again on any retry). 503 `mint_unavailable` when the mint did not answer the
    /// spend in time: the mint may have spent the BAT, so it is burnt; open the session with a
    /// new one.
    ///
    /// 503 `mint_unavailable` (with `Retry-After`) at once, before the BAT is touched, while the
    /// mint is known to be unreachable.
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
        let (mut tx, bat, expires_at) = spend_into(&state, &token).await?;
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
    /// stops working. The new BAT is refused and burnt as in `POST /sessions`; a session that
    /// ends while its new BAT is being spent is not renewed (401), and that BAT is burnt.
    ///
    /// 503 `mint_unavailable` (with `Retry-After`) while the mint is known to be unreachable.
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
        let (mut tx, bat, expires_at) = spend_into(&state, &token).await?;
        let session = sessions::renew(&mut tx, auth.0.id, &bat.hash, expires_at)
            .await?
            .ok_or_else(|| ApiError::unauthorized("session_expired", "the session has ended"))?;
        tx.commit().await?;
        state.sessions.forget(session.id);
        Ok(Json(session.into()))
    }

    /// End the session (logout)
    ///
    /// The BAT stops working at once on every api server (each hears of the logout as it
    /// commits).
    #[oai(path = "/sessions", method = "delete", operation_id = "endSession")]
    async fn end(&self, auth: SessionAuth, state: Data<&AppState>) -> ApiResult<Ended> {
        sessions::end(&state.ctx.pool, auth.0.id).await?;
        state.sessions.forget(auth.0.id);
        // Its event streams here end now; other processes' streams notice within a check.
        state.events.session_ended(auth.0.id);
        Ok(Ended::Ok)
    }
}
