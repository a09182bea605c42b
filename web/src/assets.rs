//! The stylesheet and the small script, compiled in and served under names that carry their
//! content hash (`style.3f2a9c1e0b7d4a55.css`), so they are immutable and cached for a year.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use crate::{
    AppState,
    http::{Caching, cached},
    pages::not_found_page,
};

const CSS: &str = include_str!("../static/style.css");
const JS: &str = include_str!("../static/app.js");

/// The hashed URLs of the static assets.
#[derive(Debug, Clone)]
pub struct Assets {
    pub css_url: String,
    pub js_url: String,
    css_name: String,
    js_name: String,
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
            css_url: format!("{public_base}/static/{css_name}"),
            js_url: format!("{public_base}/static/{js_name}"),
            css_name,
            js_name,
        }
    }
}

pub async fn serve(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let a = &state.assets;
    let (content_type, body, etag) = if name == a.css_name {
        ("text/css; charset=utf-8", CSS, &a.css_name)
    } else if name == a.js_name {
        ("text/javascript; charset=utf-8", JS, &a.js_name)
    } else {
        return not_found_page(&state, "No such file.").into_response();
    };
    cached(
        &headers,
        Caching::Immutable { public: true },
        Some(etag),
        content_type,
        body.as_bytes().to_vec(),
    )
}
