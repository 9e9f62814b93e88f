//! Errors: [`Error`] for the server's own failures, [`ApiError`] for what a
//! client is told — `{"detail": "…"}` with the status the real Open
//! Wearables server uses.

use std::path::PathBuf;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the server database {path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen: {0}")]
    Listen(std::io::Error),
    #[error("a background task failed: {0}")]
    Task(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "{path} holds {found} bytes, not a 32-byte token signing key: it is damaged. Move it aside (or delete it) and start the server again; a new key is made, everyone logs in again, API keys keep working"
    )]
    SigningKey { path: PathBuf, found: usize },
}

/// What a request gets back when it fails.
#[derive(Debug)]
pub enum ApiError {
    Unauthorized(&'static str),
    BadRequest(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    PayloadTooLarge(String),
    Unavailable(String),
    /// 429 with `Retry-After` (seconds).
    TooManyRequests(String, u64),
    /// 503 with `Retry-After` (seconds).
    Busy(String, u64),
    Internal,
}

pub const NO_CREDENTIALS: &str = "Authentication required: provide JWT token or API key";
pub const BAD_API_KEY: &str = "Invalid or missing API key";
pub const BAD_TOKEN: &str = "Could not validate credentials";
pub const BAD_LOGIN: &str = "Incorrect email or password";

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        tracing::error!(error = %e, "request failed");
        ApiError::Internal
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::TooManyRequests(_, secs) | ApiError::Busy(_, secs) => Some(*secs),
            _ => None,
        };
        let (status, detail) = match self {
            ApiError::Unauthorized(detail) => (StatusCode::UNAUTHORIZED, detail.to_string()),
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, d),
            ApiError::Forbidden(d) => (StatusCode::FORBIDDEN, d),
            ApiError::NotFound(d) => (StatusCode::NOT_FOUND, d),
            ApiError::Conflict(d) => (StatusCode::CONFLICT, d),
            ApiError::PayloadTooLarge(d) => (StatusCode::PAYLOAD_TOO_LARGE, d),
            ApiError::Unavailable(d) | ApiError::Busy(d, _) => (StatusCode::SERVICE_UNAVAILABLE, d),
            ApiError::TooManyRequests(d, _) => (StatusCode::TOO_MANY_REQUESTS, d),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error".to_string(),
            ),
        };
        let mut response = (status, Json(serde_json::json!({ "detail": detail }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}
