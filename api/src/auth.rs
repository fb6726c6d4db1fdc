//! Security schemes: who is calling.
//!
//! Admin listener: `ADMIN_TOKEN` and each `ADMIN_TOKENS` entry are role `admin` under the
//! admin's name (recorded with every admin write), `OIDC_API_TOKEN` is role `oidc-api`. The
//! `oidc-api` role may only ask whether a pubkey is registered; it gets 403 everywhere else.
//! Tokens are compared in constant time (both sides hashed first, so not even the length
//! leaks).
//!
//! Public listener: `Authorization: Bearer <BAT>` of an open session. Only the hash of the BAT's
//! `Y` is looked up; the BAT itself is never stored or logged.

use openpleb_common::db::sessions::{self, Session};
pub use openpleb_common::domain::secrets_equal;
use openpleb_common::mint::ParsedBat;
use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;

use crate::error::ApiError;
use crate::AppState;

/// Roles on the admin listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A full administrator, by name.
    Admin(String),
    /// The OIDC provider's registration check.
    OidcApi,
}

/// The role a bearer token has, if any.
pub fn role_of(state: &AppState, token: &str) -> Option<Role> {
    let api = &state.ctx.config.api;
    // Compare with every token every time, so timing does not reveal which one matched.
    let mut admin = None;
    for a in &api.admins {
        if secrets_equal(token, a.token.expose()) && admin.is_none() {
            admin = Some(a.name.clone());
        }
    }
    let oidc = secrets_equal(token, api.oidc_api_token.expose());
    match (admin, oidc) {
        (Some(name), _) => Some(Role::Admin(name)),
        (None, true) => Some(Role::OidcApi),
        (None, false) => None,
    }
}

fn state(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| ApiError::internal("application state missing").into())
}

/// `Authorization: Bearer <ADMIN_TOKEN>` (or a named admin's token); holds the admin's name.
#[derive(Debug, SecurityScheme)]
#[oai(rename = "AdminToken", ty = "bearer", checker = "check_admin")]
pub struct AdminAuth(pub String);

async fn check_admin(req: &Request, bearer: Bearer) -> poem::Result<String> {
    match role_of(state(req)?, &bearer.token) {
        Some(Role::Admin(name)) => Ok(name),
        Some(Role::OidcApi) => Err(ApiError::forbidden(
            "insufficient_role",
            "this token may not call admin endpoints",
        )
        .into()),
        None => Err(ApiError::unauthorized("invalid_token", "unknown bearer token").into()),
    }
}

/// `Authorization: Bearer <OIDC_API_TOKEN>` (the admin token works too).
#[derive(Debug, SecurityScheme)]
#[oai(rename = "OidcApiToken", ty = "bearer", checker = "check_oidc_api")]
pub struct OidcApiAuth(pub Role);

async fn check_oidc_api(req: &Request, bearer: Bearer) -> poem::Result<Role> {
    role_of(state(req)?, &bearer.token)
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "unknown bearer token").into())
}

/// A session a middleware in front (the rate limiter) already resolved from the request's BAT,
/// handed on to the `SessionBat` checker so the session is looked up once per request. It is
/// defined here, with the checker that reads it, so that the limiter depends on this module and
/// not the other way round.
#[derive(Debug, Clone)]
pub struct ResolvedSession(pub openpleb_common::db::sessions::Session);

/// A bearer token the limiter looked up and found no live session for, handed on to the
/// `SessionBat` checker so it need not look again: `true` when the session exists but ended.
#[derive(Debug, Clone, Copy)]
pub struct DeadBearer(pub bool);

/// `Authorization: Bearer <BAT>` of a live session.
#[derive(Debug, SecurityScheme)]
#[oai(rename = "SessionBat", ty = "bearer", checker = "check_session")]
pub struct SessionAuth(pub Session);

async fn check_session(req: &Request, bearer: Bearer) -> poem::Result<Session> {
    Ok(session_of(req, &bearer.token).await?)
}

/// The live session `token` (a request's bearer) authenticates, or the 401 the `SessionBat`
/// scheme answers with. The rate limiter has usually looked the token up already (see
/// [`crate::ratelimit`]); its answer is used then.
pub async fn session_of(req: &Request, token: &str) -> Result<Session, ApiError> {
    if let Some(resolved) = req.extensions().get::<ResolvedSession>() {
        return Ok(resolved.0.clone());
    }
    let expired = || ApiError::unauthorized("session_expired", "the session has ended");
    let unknown = || ApiError::unauthorized("invalid_session", "no session for this token");
    let bat = ParsedBat::parse(token)
        .map_err(|_| ApiError::unauthorized("malformed_bat", "the bearer token is not a BAT"))?;
    if let Some(DeadBearer(ended)) = req.extensions().get::<DeadBearer>() {
        return Err(if *ended { expired() } else { unknown() });
    }
    let state = req
        .data::<AppState>()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let session = sessions::by_bat(&state.ctx.pool, &bat.hash)
        .await?
        .ok_or_else(unknown)?;
    if session.ended_at.is_some() || session.expires_at <= chrono::Utc::now() {
        return Err(expired());
    }
    Ok(session)
}
