//! Security schemes: who is calling.
//!
//! Admin listener: `ADMIN_TOKEN` is role `admin`, `OIDC_API_TOKEN` is role `oidc-api`. The
//! `oidc-api` role may only ask whether a pubkey is registered; it gets 403 everywhere else.
//! Tokens are compared in constant time (both sides hashed first, so not even the length
//! leaks).

use cdk_common::bitcoin::hashes::{sha256, Hash};
use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::SecurityScheme;

use crate::error::ApiError;
use crate::AppState;

/// Roles on the admin listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Full administrator.
    Admin,
    /// The OIDC provider's registration check.
    OidcApi,
}

/// Constant-time equality of two secrets.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let ha = sha256::Hash::hash(a.as_bytes()).to_byte_array();
    let hb = sha256::Hash::hash(b.as_bytes()).to_byte_array();
    ha.iter()
        .zip(hb.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The role a bearer token has, if any.
pub fn role_of(state: &AppState, token: &str) -> Option<Role> {
    // Evaluate both comparisons every time so timing does not reveal which one matched.
    let admin = secrets_equal(token, state.config.admin_token.expose());
    let oidc = secrets_equal(token, state.config.oidc_api_token.expose());
    match (admin, oidc) {
        (true, _) => Some(Role::Admin),
        (false, true) => Some(Role::OidcApi),
        (false, false) => None,
    }
}

fn state(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>()
        .ok_or_else(|| ApiError::internal("application state missing").into())
}

/// `Authorization: Bearer <ADMIN_TOKEN>`.
#[derive(Debug, SecurityScheme)]
#[oai(rename = "AdminToken", ty = "bearer", checker = "check_admin")]
pub struct AdminAuth(pub Role);

async fn check_admin(req: &Request, bearer: Bearer) -> poem::Result<Role> {
    match role_of(state(req)?, &bearer.token) {
        Some(Role::Admin) => Ok(Role::Admin),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
        assert!(!secrets_equal("", "a"));
    }
}
