//! The stylesheet and the small script, compiled in and served under names that carry their
//! content hash (`style.3f2a9c1e0b7d4a55.css`), so they are immutable and cached for a year.
//!
//! Docs pages are immutable too, and keep naming the assets of the release that rendered them.
//! After an upgrade such a name (same stem, another hash) gets this release's asset rather than
//! a 404, so an old page never loses its styling; only as a page (short max-age), since that URL
//! promised other bytes.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use crate::{
    error::Error,
    http::{Caching, cached},
};

const CSS: &str = include_str!("../static/style.css");
const JS: &str = include_str!("../static/app.js");

/// The hashed URLs of the static assets (cloned for every page and asset request: a reference
/// count each).
#[derive(Debug, Clone)]
pub struct Assets {
    pub css_url: Arc<str>,
    pub js_url: Arc<str>,
    css_name: Arc<str>,
    js_name: Arc<str>,
}

fn hashed(stem: &str, ext: &str, content: &str) -> String {
    let hash = hex::encode(Sha256::digest(content.as_bytes()));
    format!("{stem}.{}.{ext}", &hash[..16])
}

impl Assets {
    pub fn new(public_base: &str) -> Self {
        let css_name = hashed("style", "css", CSS);
        let js_name = hashed("app", "js", JS);
        Self {
            css_url: format!("{public_base}/static/{css_name}").into(),
            js_url: format!("{public_base}/static/{js_name}").into(),
            css_name: css_name.into(),
            js_name: js_name.into(),
        }
    }
}

/// `/favicon.ico`: none (204, cached a day), so browsers stop asking on every page view instead
/// of getting the 404 page each time.
pub async fn favicon() -> Response {
    let mut r = (
        axum::http::StatusCode::NO_CONTENT,
        [(axum::http::header::CACHE_CONTROL, "public, max-age=86400")],
    )
        .into_response();
    r.extensions_mut().insert(SameForEveryone);
    r
}

/// `/robots.txt`: everything may be crawled but searches and the API, which are endless.
pub async fn robots() -> Response {
    let mut r = (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/plain; charset=utf-8",
            ),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        "User-agent: *\nDisallow: /search\nDisallow: /api/\n",
    )
        .into_response();
    r.extensions_mut().insert(SameForEveryone);
    r
}

/// Marks a response that is the same for every requester, whatever its credentials: the router
/// then sends `Vary: Accept-Encoding` alone, which CDNs cache, instead of adding
/// `Authorization, Cookie`, on which some decline to.
#[derive(Debug, Clone, Copy)]
pub struct SameForEveryone;

/// `/static/<name>`: the stylesheet or the script, by its hashed name.
pub async fn serve(
    State(assets): State<Assets>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut response = serve_asset(&assets, &name, &headers);
    if response.status().is_success() || response.status() == axum::http::StatusCode::NOT_MODIFIED {
        response.extensions_mut().insert(SameForEveryone);
    }
    response
}

fn serve_asset(a: &Assets, name: &str, headers: &HeaderMap) -> Response {
    let (content_type, body, etag) = if name == &*a.css_name {
        ("text/css; charset=utf-8", CSS, &a.css_name)
    } else if name == &*a.js_name {
        ("text/javascript; charset=utf-8", JS, &a.js_name)
    } else {
        let earlier = if is_hashed(name, "style", "css") {
            Some(("text/css; charset=utf-8", CSS))
        } else if is_hashed(name, "app", "js") {
            Some(("text/javascript; charset=utf-8", JS))
        } else {
            None
        };
        return match earlier {
            Some((content_type, body)) => cached(
                headers,
                Caching::Page {
                    max_age: EARLIER_ASSET_MAX_AGE,
                    public: true,
                },
                None,
                content_type,
                body.as_bytes().to_vec(),
            ),
            None => Error::not_found("No such file.").into_response(),
        };
    };
    cached(
        headers,
        Caching::Immutable { public: true },
        Some(etag),
        content_type,
        body.as_bytes().to_vec(),
    )
}

/// How long an earlier release's asset name may be cached with this release's content.
const EARLIER_ASSET_MAX_AGE: u64 = 3600;

/// Whether `name` is `<stem>.<16 lowercase hex digits>.<ext>`, the form [`hashed`] makes.
fn is_hashed(name: &str, stem: &str, ext: &str) -> bool {
    let hash = name
        .strip_prefix(stem)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(ext))
        .and_then(|r| r.strip_suffix('.'));
    hash.is_some_and(|h| {
        h.len() == 16
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_recognised_by_form() {
        let current = hashed("style", "css", CSS);
        assert!(is_hashed(&current, "style", "css"));
        assert!(is_hashed("style.0123456789abcdef.css", "style", "css"));
        assert!(is_hashed("app.0123456789abcdef.js", "app", "js"));
        for name in [
            "style.0000.css",
            "style.0123456789ABCDEF.css",
            "style.0123456789abcdef.js",
            "app.0123456789abcdef.css",
            "style..css",
            "style.0123456789abcdef0.css",
            "../style.0123456789abcdef.css",
        ] {
            assert!(
                !is_hashed(name, "style", "css") && !is_hashed(name, "app", "js"),
                "{name}"
            );
        }
    }
}
