//! The API's one error type and its one mapping to HTTP.
//!
//! Every failure leaves as `{"error":{"code","message"}}` with a stable, machine-readable
//! `code`. Internal errors are logged with their cause and answered with a generic message.

use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// Stable error codes. Clients switch on these; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request is malformed or fails validation.
    BadRequest,
    /// No such resource (or the caller may not know it exists).
    NotFound,
    /// Authentication is missing or invalid.
    Unauthorized,
    /// Authenticated, but not allowed.
    Forbidden,
    /// The request conflicts with the current state.
    Conflict,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The body is too large.
    PayloadTooLarge,
    /// The body's media type is not accepted.
    UnsupportedMediaType,
    /// Too many requests in the window.
    RateLimited,
    /// A dependency (database, mint) is unavailable.
    Unavailable,
    /// A bug or an unexpected failure on our side.
    Internal,
}

impl ErrorCode {
    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::NotFound => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::Conflict => "conflict",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal_error",
        }
    }

    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Conflict => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::CONFLICT => Self::Conflict,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            s if s.is_client_error() => Self::BadRequest,
            _ => Self::Internal,
        }
    }
}

/// The error body's inner object.
#[derive(Debug, Clone, Object)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `bad_request`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// The error envelope every endpoint uses.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An API failure: a code and a message safe to show the caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// A failure with a caller-facing message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// An internal failure: the cause is logged, the caller gets a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "internal error")
    }

    fn body(&self) -> Json<ErrorBody> {
        Json(ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message.clone(),
            },
        })
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

/// How an [`ApiError`] appears in the OpenAPI document and on the wire.
#[derive(Debug, ApiResponse)]
pub enum ErrorResponse {
    /// Malformed input or failed validation.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or invalid credentials.
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
    /// Too many requests.
    #[oai(status = 429)]
    RateLimited(Json<ErrorBody>),
    /// Internal error.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl From<ApiError> for ErrorResponse {
    fn from(e: ApiError) -> Self {
        let body = e.body();
        match e.code {
            ErrorCode::BadRequest
            | ErrorCode::MethodNotAllowed
            | ErrorCode::PayloadTooLarge
            | ErrorCode::UnsupportedMediaType => Self::BadRequest(body),
            ErrorCode::Unauthorized => Self::Unauthorized(body),
            ErrorCode::Forbidden => Self::Forbidden(body),
            ErrorCode::NotFound => Self::NotFound(body),
            ErrorCode::Conflict => Self::Conflict(body),
            ErrorCode::RateLimited => Self::RateLimited(body),
            ErrorCode::Internal => Self::Internal(body),
            ErrorCode::Unavailable => Self::Unavailable(body),
        }
    }
}

/// The handler result type.
pub type ApiResult<T> = Result<T, ErrorResponse>;

/// Turns any poem error that escaped the handlers (unknown route, unparsable JSON, failed
/// validation, oversized body) into the same envelope.
pub async fn envelope(err: poem::Error) -> poem::Response {
    let status = err.status();
    let code = ErrorCode::from_status(status);
    let message = if code == ErrorCode::Internal {
        tracing::error!(error = %err, "unhandled error");
        "internal error".to_owned()
    } else {
        err.to_string()
    };
    let body = serde_json::json!({"error": {"code": code.as_str(), "message": message}});
    poem::Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}
