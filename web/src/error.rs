//! The web's one error type and its one policy.
//!
//! Every handler, middleware and helper of the marketplace fails with an [`Error`]. What a client
//! sees of it is decided in one place, `render_errors` (in `layers`), by the address it
//! answers: under `/api/v1` the
//! JSON API's envelope `{"error": {"status": 404, "message": "..."}}`, anywhere else the HTML
//! error page; both `Cache-Control: no-store`. The message is always one that is safe to show:
//! an internal cause (the database, a template, a rendering, the listener) is logged when the
//! error becomes a response, inside the request's span and so with its request id, and the
//! client gets a sentence that names no internals.

use std::borrow::Cow;

use axum::{
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};

/// A result whose error is the marketplace's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A request that failed, or a server that could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing at this address; the message says what was looked for.
    #[error("{0}")]
    NotFound(String),
    /// The address or its query string is not one the marketplace can answer; the message says
    /// what is wrong with it.
    #[error("{0}")]
    BadRequest(String),
    /// Every route answers `GET` (and `HEAD`) only.
    #[error("{0} is not supported here; this address answers GET.")]
    MethodNotAllowed(Method),
    /// The request outlasted `web.request_timeout`.
    #[error("the request outlasted web.request_timeout")]
    Timeout,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("template: {0}")]
    Template(#[from] askama::Error),
    /// A rendering task panicked or was cancelled.
    #[error("rendering: {0}")]
    Render(#[from] tokio::task::JoinError),
    #[error("the renderer is shut down")]
    RendererClosed,
    /// A stored definition that could not be compared (its JSON did not parse).
    #[error("diff: {0}")]
    Diff(#[from] shimmer_diff::DiffError),
    /// The listener failed (only when a server starts; never a request's answer).
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn bad_request(what: impl Into<String>) -> Self {
        Self::BadRequest(what.into())
    }

    /// The response's status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Timeout | Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Template(_)
            | Self::Render(_)
            | Self::RendererClosed
            | Self::Diff(_)
            | Self::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told: the error itself where it is the client's to know, a sentence
    /// naming no internals where it is ours.
    fn public_message(&self) -> Cow<'_, str> {
        match self {
            Self::NotFound(m) | Self::BadRequest(m) => Cow::Borrowed(m),
            Self::MethodNotAllowed(_) | Self::RendererClosed => Cow::Owned(self.to_string()),
            Self::Timeout => {
                "The catalogue took too long to answer. Please try again shortly.".into()
            }
            Self::Database(_) => {
                "The catalogue is unavailable right now. Please try again shortly.".into()
            }
            Self::Template(_) | Self::Io(_) => {
                "Something went wrong while rendering this page.".into()
            }
            Self::Render(_) => "This page could not be rendered.".into(),
            Self::Diff(_) => "These versions could not be compared.".into(),
        }
    }

    /// Logs an internal cause (the request's span gives the event its request id).
    fn log(&self) {
        match self {
            Self::Database(e) => {
                tracing::error!(error = %e, "database error while answering a web request");
            }
            Self::Template(e) => tracing::error!(error = %e, "template error"),
            Self::Render(e) => tracing::error!(error = %e, "rendering failed"),
            Self::Io(e) => tracing::error!(error = %e, "listener error"),
            Self::Diff(e) => tracing::error!(error = %e, "comparing versions failed"),
            Self::NotFound(_)
            | Self::BadRequest(_)
            | Self::MethodNotAllowed(_)
            | Self::Timeout
            | Self::RendererClosed => {}
        }
    }
}

/// The safe message of a failed response, for `render_errors` (in `layers`) to put in a page
/// or the JSON envelope.
#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
}

/// A bare response (status, `no-store`, the message as text, `Allow` on a 405) marked for
/// `render_errors` (in `layers`), which gives it its page or JSON body.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let message = self.public_message().into_owned();
        let mut response = (status, message.clone()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Self::MethodNotAllowed(_) = self {
            // RFC 9110 requires it on a 405.
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        response.extensions_mut().insert(Failure { message });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_causes_are_not_shown() {
        let e = Error::from(sqlx::Error::PoolTimedOut);
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            !e.public_message().contains("pool"),
            "{}",
            e.public_message()
        );
        let e = Error::MethodNotAllowed(Method::POST);
        assert_eq!(
            e.public_message(),
            "POST is not supported here; this address answers GET."
        );
    }
}
