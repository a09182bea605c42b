//! The two caching regimes of every successful answer (immutable content-addressed responses,
//! and short-lived pages with an `ETag`) and conditional requests (`304 Not Modified`). Errors
//! are never cached: see [`crate::error`].

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// How a response may be cached.
#[derive(Debug, Clone, Copy)]
pub enum Caching {
    /// Content-addressed: never changes. `public` is false when only a reader may see it.
    Immutable { public: bool },
    /// A page that changes: cached for `max_age` seconds, revalidated by `ETag`.
    Page { max_age: u64, public: bool },
}

/// A body answered with caching headers, or `304 Not Modified` when the client's
/// `If-None-Match` names its `ETag`. `etag` is the entity tag without quotes; for pages it is
/// derived from the body.
pub fn cached(
    request: &HeaderMap,
    caching: Caching,
    etag: Option<&str>,
    content_type: &'static str,
    body: impl Into<Vec<u8>>,
) -> Response {
    let body: Vec<u8> = body.into();
    let etag = match (etag, caching) {
        (Some(e), _) => Some(format!("\"{e}\"")),
        (None, Caching::Page { .. }) => {
            Some(format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]))
        }
        (None, Caching::Immutable { .. }) => None,
    };
    let cache_control = match caching {
        Caching::Immutable { public: true } => IMMUTABLE.to_owned(),
        Caching::Immutable { public: false } => "private, max-age=31536000, immutable".to_owned(),
        Caching::Page {
            max_age,
            public: true,
        } => format!("public, max-age={max_age}"),
        Caching::Page { public: false, .. } => "private, no-cache".to_owned(),
    };
    let not_modified = etag.as_ref().is_some_and(|tag| if_none_match(request, tag));
    let mut resp = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache_control).expect("ascii"),
    );
    if let Some(tag) = etag
        && let Ok(v) = HeaderValue::from_str(&tag)
    {
        h.insert(header::ETAG, v);
    }
    resp
}

/// Whether `If-None-Match` lists `etag` (or is `*`); weak comparison, as RFC 9110 asks for it.
fn if_none_match(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// A rendered page with its caching headers (or `304` when the client has it).
pub fn html(headers: &HeaderMap, caching: Caching, etag: Option<&str>, body: String) -> Response {
    cached(headers, caching, etag, "text/html; charset=utf-8", body)
}
