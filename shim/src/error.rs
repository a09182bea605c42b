//! Errors the shim itself answers with, in the distribution spec's envelope:
//! `{"errors":[{"code","message","detail"}]}`.
//!
//! Policy: a client sees a spec error code and a message about *its* request. Internal causes
//! (a backend's connection error, a database failure) are logged with the request's span and
//! reach the client only as a generic message.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use shimmer_registry::ErrorCode;

/// Why the shim could not start, or one of its commands (`preload`, `cache ls/export/import`)
/// could not finish: the crate's one error at its boundary. (Errors a `/v2` client sees are
/// [`OciError`]s.)
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Registry(#[from] shimmer_registry::RegistryError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
    /// A refusal with its own sentence (an import that does not check out, a missing setting).
    #[error("{0}")]
    Invalid(String),
}

/// The `Docker-Distribution-API-Version` header every `/v2` response carries.
pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";
pub const API_VERSION: HeaderValue = HeaderValue::from_static("registry/2.0");

/// An error produced by the shim (not passed through from a backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// The methods a `405` names in its `Allow` header (RFC 9110 §15.5.6 requires one).
    pub allow: Option<String>,
}

impl OciError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    pub fn name_invalid(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::NameInvalid,
            format!("invalid repository name {name:?}"),
        )
    }

    pub fn name_unknown(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NameUnknown,
            format!("repository name {name:?} is not routed to any backend"),
        )
    }

    pub fn digest_invalid(digest: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::DigestInvalid,
            format!("invalid digest {digest:?}"),
        )
    }

    /// `405 UNSUPPORTED`, with the methods the endpoint does allow.
    pub fn unsupported(message: impl Into<String>, allow: &[http::Method]) -> Self {
        let allow = allow.iter().map(http::Method::as_str).collect::<Vec<_>>();
        Self {
            allow: Some(allow.join(", ")),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::Unsupported,
                message,
            )
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn manifest_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::ManifestInvalid, message)
    }

    /// The backend could not be reached or failed mid-answer; details are logged, not shown.
    pub fn backend_unavailable(backend: &str) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            ErrorCode::Unavailable,
            format!("backend {backend:?} is unavailable"),
        )
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let body = json!({
            "errors": [{ "code": self.code.as_str(), "message": self.message, "detail": null }]
        });
        let mut resp = (self.status, Json(body)).into_response();
        resp.headers_mut().insert(API_VERSION_HEADER, API_VERSION);
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            resp.headers_mut().insert(header::ALLOW, allow);
        }
        resp
    }
}
