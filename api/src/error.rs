//! The API's one error type and its one mapping to HTTP.
//!
//! Every failure leaves as `{"error":{"code","message"}}` with a stable, machine-readable
//! `code` (snake_case; never renamed once released). Internal errors are logged with their cause
//! and answered with a generic message. Errors raised outside handlers (unknown routes, bodies
//! that do not parse, failed validation, security checkers) pass through [`envelope`] and get the
//! same shape.

use openpleb_common::db::is_unavailable;
use openpleb_common::jobs::EnqueueError;
use openpleb_common::mint::BatError;
use openpleb_common::trade::TradeError;
use openpleb_common::wallet::{WalletError, WalletErrorKind};
use poem::http::StatusCode;
use poem::IntoResponse;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// The error body's inner object.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invite_expired`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// The error envelope every endpoint uses.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ErrorBody {
    // What went wrong.
    pub error: ErrorDetail,
}

/// An API failure: status, stable code and a message safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Caller-facing message.
    pub message: String,
    /// Seconds to wait before retrying (429, and 503 when the wait is known).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A failure with a caller-facing message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 401 with `code`.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// 403 with `code`.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// 404 with `code`.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409 with `code`.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 410 with `code`.
    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, code, message)
    }

    /// 503 with `code`.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 503 `mint_unavailable` with `Retry-After`: the mint cannot be reached (this process'
    /// last check found it down, or the call failed); asking again shortly may succeed.
    pub fn mint_unavailable() -> Self {
        Self {
            retry_after: Some(DEPENDENCY_RETRY_SECS),
            ..Self::unavailable(
                "mint_unavailable",
                "the mint cannot be reached; try again shortly",
            )
        }
    }

    /// 503 `database_unavailable` with `Retry-After`: PostgreSQL cannot be reached. Nothing
    /// of the request was written (its transaction did not commit).
    pub fn database_unavailable() -> Self {
        Self {
            retry_after: Some(DEPENDENCY_RETRY_SECS),
            ..Self::unavailable(
                "database_unavailable",
                "the database cannot be reached; try again shortly",
            )
        }
    }

    /// An internal failure: the cause is logged, the caller gets a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }

    fn body(&self) -> Json<ErrorBody> {
        Json(ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message.clone(),
            },
        })
    }

    /// The HTTP response.
    pub fn to_response(&self) -> poem::Response {
        let mut resp = self.body().into_response();
        resp.set_status(self.status);
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(poem::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}

/// Seconds a caller waits before asking again while the mint or the database is down: about
/// what this process takes to notice either is back (`openpleb_common::health::watch`).
pub const DEPENDENCY_RETRY_SECS: u64 = 3;

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable");
            return Self::database_unavailable();
        }
        Self::internal(e)
    }
}

impl From<BatError> for ApiError {
    fn from(e: BatError) -> Self {
        match e {
            BatError::Malformed => Self::bad_request("malformed_bat", e.to_string()),
            BatError::AlreadySpent => Self::conflict("bat_already_used", e.to_string()),
            BatError::Invalid => Self::unauthorized("invalid_bat", e.to_string()),
            BatError::Unavailable => Self::mint_unavailable(),
        }
    }
}

impl From<TradeError> for ApiError {
    fn from(e: TradeError) -> Self {
        match e {
            TradeError::NotFound => Self::not_found("offer_not_found", "no such offer"),
            TradeError::NotYours(_) => Self::forbidden("not_your_role", e.to_string()),
            TradeError::WrongState(_) => Self::conflict("invalid_state", e.to_string()),
            TradeError::NotAvailable => Self::conflict("offer_not_available", e.to_string()),
            TradeError::DeadlinePassed => Self::conflict("deadline_passed", e.to_string()),
            TradeError::NoClaim => Self::not_found("claim_not_found", e.to_string()),
            TradeError::AlreadyClaimed => Self::conflict("already_claimed", e.to_string()),
            TradeError::TooManyTargets(_) => {
                Self::conflict("too_many_notify_targets", e.to_string())
            }
            TradeError::OwnOffer => Self::forbidden("own_offer", e.to_string()),
            // Lifted by a change of the caller's own offers or claims: a conflict.
            TradeError::TooManyUnpaidClaims(_) => {
                Self::conflict("too_many_unpaid_claims", e.to_string())
            }
            TradeError::TooManyOpenOffers(_) => {
                Self::conflict("too_many_open_offers", e.to_string())
            }
            TradeError::TooManyClaims(_) => Self::conflict("too_many_claims", e.to_string()),
            TradeError::TooManyPayableQuotes(_) => {
                Self::conflict("too_many_payable_invoices", e.to_string())
            }
            // Lifted by time alone: too many requests, with when to come back.
            TradeError::ClaimCooldown(secs) => Self {
                retry_after: Some(secs.max(1)),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "claim_cooldown",
                    e.to_string(),
                )
            },
            TradeError::Invalid { code, message, .. } => Self::bad_request(code, message),
            TradeError::TooLarge { code, max, .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                code,
                format!("at most {max} bytes"),
            ),
            TradeError::NotFundable => Self::conflict("offer_not_fundable", e.to_string()),
            TradeError::NoFundIntent => Self::not_found("fund_intent_not_found", e.to_string()),
            TradeError::NotAnImage => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not_an_image",
                e.to_string(),
            ),
            TradeError::TokenStaked => Self::conflict("token_already_staked", e.to_string()),
            TradeError::NoDispute => Self::not_found("dispute_not_found", e.to_string()),
            TradeError::TradeDataDeleted => Self::not_found("trade_data_deleted", e.to_string()),
            TradeError::RevealRefused(_) => Self::forbidden("reveal_refused", e.to_string()),
            TradeError::MintUnavailable => Self::mint_unavailable(),
            TradeError::PriceUnavailable(cause) => {
                tracing::warn!(error = %cause, "no price");
                Self::unavailable("price_unavailable", "no current price; try again shortly")
            }
            TradeError::Wallet(w) => w.into(),
            TradeError::Database(db) | TradeError::Enqueue(EnqueueError::Database(db)) => db.into(),
            TradeError::Enqueue(_)
            | TradeError::Inconsistent(_)
            | TradeError::NoWallets
            | TradeError::SealedData(_) => Self::internal(e),
        }
    }
}

impl From<WalletError> for ApiError {
    fn from(e: WalletError) -> Self {
        match e.kind() {
            WalletErrorKind::Busy => {
                tracing::info!(error = %e, "wallet busy");
                Self {
                    retry_after: Some(WALLET_BUSY_RETRY_SECS),
                    ..Self::unavailable("wallet_busy", "your wallet is busy; try again shortly")
                }
            }
            WalletErrorKind::MintUnavailable => {
                tracing::warn!(error = %e, "mint unavailable");
                Self::mint_unavailable()
            }
            WalletErrorKind::TokenSpent => {
                Self::conflict("token_spent", "the token was already spent")
            }
            WalletErrorKind::TokenInvalid => {
                Self::bad_request("invalid_token", "the mint refused the token")
            }
            WalletErrorKind::Internal => match e {
                WalletError::Database(db) => db.into(),
                e => Self::internal(e),
            },
        }
    }
}

/// Seconds a caller whose wallet is busy (its lease held by another process) waits.
const WALLET_BUSY_RETRY_SECS: u64 = 2;

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> poem::Response {
        self.to_response()
    }
}

/// How errors appear in the OpenAPI document. On the wire every one is an [`ErrorBody`].
#[derive(Debug, ApiResponse)]
pub enum ErrorResponse {
    /// Malformed input or failed validation.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, invalid or expired credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// Not allowed for this caller.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// Not found.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Conflicts with the current state.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Existed, but is used up or expired.
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// The body is too large.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The upload is not of a type this operation takes.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Too many requests; see `Retry-After`.
    #[oai(status = 429)]
    RateLimited(
        Json<ErrorBody>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
    /// Internal error.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency is down (`database_unavailable`, `mint_unavailable`, ...); see `Retry-After`.
    #[oai(status = 503)]
    Unavailable(
        Json<ErrorBody>,
        /// Seconds to wait before trying again, when known.
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
}

impl From<ApiError> for ErrorResponse {
    fn from(e: ApiError) -> Self {
        let body = e.body();
        match e.status.as_u16() {
            401 => Self::Unauthorized(body),
            403 => Self::Forbidden(body),
            404 => Self::NotFound(body),
            409 => Self::Conflict(body),
            410 => Self::Gone(body),
            413 => Self::PayloadTooLarge(body),
            415 => Self::UnsupportedMediaType(body),
            429 => Self::RateLimited(body, e.retry_after),
            503 => Self::Unavailable(body, e.retry_after),
            s if (400..500).contains(&s) => Self::BadRequest(body),
            _ => Self::Internal(body),
        }
    }
}

impl From<sqlx::Error> for ErrorResponse {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from(e).into()
    }
}

impl From<TradeError> for ErrorResponse {
    fn from(e: TradeError) -> Self {
        ApiError::from(e).into()
    }
}

/// The handler result type.
pub type ApiResult<T> = Result<T, ErrorResponse>;

fn code_for_status(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::CONFLICT => "conflict",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "bad_request",
        _ => "internal_error",
    }
}

/// The stable code of a format the schema declares and poem-openapi checks before the handler
/// (which used to check it, with these codes): by (schema, field) for body fields, by name for
/// parameters.
const FORMAT_CODES: &[(&str, &str, &str)] = &[
    ("RegistrationPayload", "pubkey", "malformed_pubkey"),
    ("RegisterRequest", "nonce", "malformed_nonce"),
    ("RegisterRequest", "signature", "malformed_signature"),
    ("", "pubkey", "malformed_pubkey"),
    ("BatBody", "bat", "malformed_bat"),
    ("CreateOffer", "makerPayoutPubkey", "invalid_payout_pubkey"),
    ("CreateOffer", "currency", "unsupported_currency"),
    ("ClaimOffer", "takerPayoutPubkey", "invalid_payout_pubkey"),
    ("PayoutKeyProof", "payoutPubkey", "invalid_payout_pubkey"),
    ("PayoutKeyProof", "signature", "invalid_signature"),
    (
        "ReputationKeyProof",
        "payoutPubkey",
        "invalid_payout_pubkey",
    ),
    ("ReputationKeyProof", "signature", "invalid_signature"),
    ("FundOffer", "token", "invalid_token"),
    ("TokenDestination", "pubkey", "invalid_pubkey"),
    ("TokenDestination", "amountSats", "invalid_amount"),
    ("WithdrawBody", "invoice", "invalid_invoice"),
    ("", "cursor", "invalid_cursor"),
];

/// The code for a poem-openapi validation failure `message`, when it names a field above.
fn format_code(message: &str) -> Option<&'static str> {
    let between = |s: &str, open: &str, close: char| -> Option<String> {
        let rest = &s[s.find(open)? + open.len()..];
        Some(rest[..rest.find(close)?].to_owned())
    };
    let (schema, field) = if let Some(param) = between(message, "failed to parse parameter `", '`')
    {
        (String::new(), param)
    } else {
        let schema = between(message, "failed to parse \"", '"')?;
        let field = between(message, "field `", '`')?;
        (schema, field)
    };
    FORMAT_CODES
        .iter()
        .find(|(s, f, _)| *s == schema && *f == field)
        .map(|(_, _, code)| *code)
}

/// Turns any poem error that escaped the handlers into the envelope.
pub async fn envelope(err: poem::Error) -> poem::Response {
    if let Some(api) = err.downcast_ref::<ApiError>() {
        return api.to_response();
    }
    // A handler's own error response (already an envelope) passes through untouched.
    if err.is_from_response() {
        return err.into_response();
    }
    let status = err.status();
    let message = err.to_string();
    let code = match code_for_status(status) {
        "bad_request" => format_code(&message).unwrap_or("bad_request"),
        other => other,
    };
    let message = if code == "internal_error" {
        tracing::error!(error = %err, "unhandled error");
        "internal error".to_owned()
    } else {
        message
    };
    ApiError::new(status, code, message).to_response()
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
