//! Uploads are read only from the party allowed to make them.
//!
//! A receipt (`POST /offers/{id}/receipt`, the taker's) or an evidence image
//! (`POST /offers/{id}/dispute/evidence`, either party's) may be `RECEIPT_MAX_BYTES` large.
//! poem-openapi reads a multipart body before the handler runs, and the input hardening
//! ([`crate::input`]) reads every body before that, so a handler's own checks came after
//! megabytes had been taken in from anyone. This layer, in front of the hardening, resolves
//! the session and loads the offer first, and refuses anyone else with the status and code
//! the handler would give (401 from the `SessionBat` scheme, 400 for an id that is not one,
//! 404 `offer_not_found`, 403 `not_your_role`), without reading a byte of the body.
//!
//! The handler checks everything again (state, size, content) once the body is read: this
//! layer only decides whether it is read at all.

use openpleb_common::trade::{load_as, load_visible, Role, TradeError, Viewer};
use poem::http::Method;
use poem::web::headers::authorization::Bearer;
use poem::web::headers::{Authorization, HeaderMapExt};
use poem::{Endpoint, IntoResponse, Request, Response};
use poem_openapi::types::ParseFromParameter;
use uuid::Uuid;

use crate::auth::session_of;
use crate::error::{envelope, ApiError};
use crate::AppState;

/// Who may upload to an upload route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// The offer's taker (`/receipt`).
    Receipt,
    /// Either party of the offer (`/dispute/evidence`).
    Evidence,
}

/// The upload `method` and `path` are, with the offer id as written, if they are one.
pub fn target<'p>(base: &str, method: &Method, path: &'p str) -> Option<(&'p str, Upload)> {
    if method != Method::POST {
        return None;
    }
    let rest = path.strip_prefix(base)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["offers", id, "receipt"] => Some((id, Upload::Receipt)),
        ["offers", id, "dispute", "evidence"] => Some((id, Upload::Evidence)),
        _ => None,
    }
}

/// Ok when the caller may upload to `offer` as `upload`; else the response the handler
/// would have given.
async fn authorise(
    state: &AppState,
    req: &Request,
    offer: &str,
    upload: Upload,
) -> Result<(), poem::Response> {
    // As the `SessionBat` scheme reads it: a missing or unusable header is its 401.
    let Some(auth) = req.headers().typed_get::<Authorization<Bearer>>() else {
        return Err(envelope(poem_openapi::error::AuthorizationError.into()).await);
    };
    let session = session_of(req, auth.token())
        .await
        .map_err(|e| e.to_response())?;
    // As the handler's path parameter: its 400 for an id that is not a UUID.
    let offer = match Uuid::parse_from_parameter(offer) {
        Ok(id) => id,
        Err(e) => {
            let err = poem_openapi::error::ParseParamError {
                name: "id",
                reason: e.into_message(),
            };
            return Err(envelope(err.into()).await);
        }
    };
    let allowed = match upload {
        Upload::Receipt => load_as(&state.ctx, offer, session.id, Role::Taker)
            .await
            .map(drop),
        Upload::Evidence => match load_visible(&state.ctx, offer, Some(session.id)).await {
            Ok((_, Viewer::Party(_))) => Ok(()),
            Ok(_) => Err(TradeError::NotFound),
            Err(e) => Err(e),
        },
    };
    allowed.map_err(|e| ApiError::from(e).to_response())
}

/// The middleware (see the module doc); every other request passes untouched.
pub async fn guard<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let state = req
        .data::<AppState>()
        .cloned()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let base = &state.ctx.config.api.base_path;
    if let Some((offer, upload)) = target(base, req.method(), req.uri().path()) {
        if let Err(refusal) = authorise(&state, &req, offer, upload).await {
            return Ok(refusal);
        }
    }
    // Boxed: every layer would otherwise hold the whole inner future in its own, and the
    // nested futures of a debug build outgrow a test thread's stack.
    Box::pin(next.call(req))
        .await
        .map(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_upload_routes_are_guarded() {
        let post = Method::POST;
        assert_eq!(
            target("/api/v1", &post, "/api/v1/offers/abc/receipt"),
            Some(("abc", Upload::Receipt))
        );
        assert_eq!(
            target("/api/v1", &post, "/api/v1/offers/abc/dispute/evidence"),
            Some(("abc", Upload::Evidence))
        );
        assert_eq!(
            target("/api/v1", &Method::GET, "/api/v1/offers/abc/receipt"),
            None
        );
        assert_eq!(
            target("/api/v1", &post, "/api/v1/offers/abc/complete"),
            None
        );
        assert_eq!(
            target("/api/v1", &post, "/api/v1/offers/abc/receipt/x"),
            None
        );
        assert_eq!(target("/api/v1", &post, "/other/offers/abc/receipt"), None);
        assert_eq!(target("/api/v1", &post, "/api/v1/receipt"), None);
        assert_eq!(
            target("/api/v1", &post, "/api/v1/offers/abc/dispute/evidence/xyz"),
            None,
            "reading one image is a GET anyway"
        );
    }
}
