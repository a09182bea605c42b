//! The marketplace: server-rendered pages (askama) and a JSON API over what the indexer stored.
//!
//! Two kinds of responses, so a CDN carries the weight:
//! - content-addressed (`/docs/sha256:<hex>` and its `.yaml`/`.json`, `/icons/sha256:<hex>`,
//!   `/static/<name>.<hash>.<ext>`): immutable, cached for a year, `ETag` = the digest;
//! - pages that change (home, package, version, search, status, and their JSON twins): a short
//!   `max-age` and an `ETag` of the body, answered `304` when it still matches.
//!
//! Private packages (see `Visibility`) are left out of everything unless the request carries a
//! configured reader token (`Authorization: Bearer <token>` or the `shimmer_token` cookie);
//! responses that may contain them are `Cache-Control: private`.

mod api;
mod assets;
mod db;
mod http;
mod markdown;
mod pages;
mod render;
mod schema;
mod views;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use shimmer_config::Config;
use sqlx::PgPool;
use tower_http::{compression::CompressionLayer, set_header::SetResponseHeaderLayer};

pub use assets::Assets;

/// What every handler reads.
pub struct AppState {
    pub pool: PgPool,
    /// Prefix of immutable URLs: `""` (same host) or a CDN base without a trailing slash.
    pub public_base: String,
    reader_tokens: Vec<String>,
    pub page_max_age: Duration,
    pub page_size: u32,
    /// Longest a request may take before it is answered 503 (`web.request_timeout`).
    pub request_timeout: Duration,
    /// The registry host clients pull from, for the install lines, when `[server] public_url`
    /// names it; otherwise it is taken from each request (see [`AppState::registry_host`]).
    registry_host: Option<String>,
    /// The port the shim listens on, for install lines built from a request's `Host`.
    registry_port: u16,
    pub assets: Assets,
    /// Markdown, schema trees and large YAML, rendered off the runtime and cached.
    pub render: render::Renderer,
}

impl AppState {
    pub fn new(config: &Config, pool: PgPool) -> Self {
        let public_base = config
            .web
            .public_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let registry_host = config.server.public_url.as_ref().map(|u| {
            let host = u.host_str().unwrap_or("localhost");
            match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_owned(),
            }
        });
        Self {
            pool,
            assets: Assets::new(&public_base),
            public_base,
            reader_tokens: config
                .web
                .reader_tokens
                .iter()
                .map(|t| t.expose().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
            page_max_age: config.web.page_max_age,
            page_size: config.web.page_size.clamp(1, 100),
            request_timeout: config.web.request_timeout,
            registry_host,
            registry_port: config.server.listen.port(),
            render: render::Renderer::default(),
        }
    }

    /// The registry host for install lines: `[server] public_url`'s host when set; otherwise
    /// the host name the request was addressed to (its `Host` header, when it is a plain host
    /// name or IP literal) with the shim's listen port, as the shim normally runs beside the
    /// web on the same machine name; `localhost` with that port when the header is absent or
    /// malformed. Never the listen address itself (`0.0.0.0` is no place to pull from).
    pub fn registry_host(&self, headers: &HeaderMap) -> String {
        if let Some(h) = &self.registry_host {
            return h.clone();
        }
        let name = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(host_name)
            .unwrap_or("localhost");
        format!("{name}:{}", self.registry_port)
    }

    /// Whether the request carries a reader token (and may see private packages).
    pub fn is_reader(&self, headers: &HeaderMap) -> bool {
        if self.reader_tokens.is_empty() {
            return false;
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix("shimmer_token="));
        bearer.into_iter().chain(cookie).any(|t| {
            self.reader_tokens
                .iter()
                .any(|r| constant_time_eq(r.as_bytes(), t.as_bytes()))
        })
    }

    /// The URL of an object's docs page (absolute on the CDN host when one is configured).
    pub fn docs_url(&self, digest: &str) -> String {
        format!("{}/docs/{digest}", self.public_base)
    }
}

/// The host name of a `Host` header value (`name`, `name:port`, `[v6]`, `[v6]:port`) when it is
/// a DNS name or IP literal made of the characters those allow.
fn host_name(value: &str) -> Option<&str> {
    let name = if value.starts_with('[') {
        &value[..=value.find(']')?]
    } else {
        value.split(':').next()?
    };
    let rest = &value[name.len()..];
    let port_ok = rest.is_empty()
        || rest.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    let ok = !name.is_empty()
        && name.len() <= 253
        && port_ok
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
        && !name.starts_with(['.', '-']);
    ok.then_some(name)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The content security policy of every response: nothing but this origin's (or the CDN's)
/// styles, scripts and images, no plugins, frames, forms elsewhere or inline code.
fn content_security_policy(public_base: &str) -> String {
    let cdn = if public_base.is_empty() {
        String::new()
    } else {
        format!(" {public_base}")
    };
    format!(
        "default-src 'none'; style-src 'self'{cdn}; script-src 'self'{cdn}; img-src 'self'{cdn}; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// Answers a request that outlasts `web.request_timeout` with a 503 (a page, or the API's JSON
/// error under `/api/v1`) and drops its handler, so a stalled database holds no client forever.
/// PostgreSQL cancels the query it was waiting on a second later (the pool of [`connect`]).
async fn deadline(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    // Cloning the parsed URI shares its bytes (a reference count) instead of copying the path of
    // every request; the path is only read if the deadline passes.
    let uri = request.uri().clone();
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let path = uri.path();
            tracing::warn!(%path, timeout = ?state.request_timeout, "web request timed out");
            let error = http::WebError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "The catalogue took too long to answer. Please try again shortly.".into(),
            };
            error_response(&state, path, error)
        }
    }
}

/// An error as the API's JSON under `/api/v1`, else as a page.
fn error_response(state: &AppState, path: &str, error: http::WebError) -> Response {
    if path == "/api/v1" || path.starts_with("/api/v1/") {
        api::ApiError::from(error).into_response()
    } else {
        pages::error_page(state, error.status, &error.message)
    }
}

/// Every route answers `GET` (and `HEAD`) only: anything else is a 405 that says so, in the
/// `Allow` header RFC 9110 requires and as a page or JSON like every other error.
async fn method_not_allowed(
    State(state): State<Arc<AppState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    let error = http::WebError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not supported here; this address answers GET."),
    };
    let mut response = error_response(&state, uri.path(), error);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// Refuses an address no handler can use, before any does: a NUL (`%00`), which PostgreSQL
/// cannot take in text (it failed the query: a 503 and an error in the log), and a path that
/// does not decode to UTF-8 (axum's own rejection is plain text, neither page nor JSON).
async fn refuse_unreadable_addresses(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let uri = request.uri();
    let message = if uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00")) {
        Some("The address contains a NUL character (%00).")
    } else if percent_encoding::percent_decode_str(uri.path())
        .decode_utf8()
        .is_err()
    {
        Some("The address is not valid UTF-8.")
    } else {
        None
    };
    match message {
        Some(message) => {
            let path = uri.path().to_owned();
            error_response(&state, &path, http::WebError::bad_request(message))
        }
        None => next.run(request).await,
    }
}

/// The marketplace's routes with compression and security headers.
pub fn router(state: Arc<AppState>) -> Router {
    let csp = HeaderValue::from_str(&content_security_policy(&state.public_base))
        .expect("policy is ASCII");
    // Without `[server] public_url`, install lines name the host a request was addressed to: a
    // cache that keys on its own upstream host instead must not serve one host's page for
    // another (set `public_url` wherever the marketplace is cached).
    let vary = HeaderValue::from_static(if state.registry_host.is_some() {
        "Accept-Encoding, Authorization, Cookie"
    } else {
        "Accept-Encoding, Authorization, Cookie, Host"
    });
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/status", get(pages::status))
        .route("/packages", get(pages::packages))
        .route("/packages/", get(pages::packages))
        .route("/packages/{*path}", get(pages::package))
        .route("/docs/{id}", get(pages::docs))
        .route("/icons/{digest}", get(pages::icon))
        .route("/static/{name}", get(assets::serve))
        .route("/api/v1/packages/{*path}", get(api::package))
        .route("/api/v1/packages", get(api::packages))
        .route("/api/v1/search", get(api::search))
        .route("/api/v1/apis", get(api::apis))
        .route("/api/v1/objects/{digest}", get(api::object))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/{*rest}", get(api::not_found))
        .route("/api/v1", get(api::not_found))
        .route("/api/v1/", get(api::not_found))
        .route("/healthz", get(|| async { "ok" }))
        .route("/favicon.ico", get(assets::favicon))
        .route("/robots.txt", get(assets::robots))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_unreadable_addresses,
        ))
        .with_state(state)
        .layer(CompressionLayer::new().gzip(true).br(true))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            csp,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(middleware::map_response(move |mut response: Response| {
            let vary = match response.extensions().get::<assets::SameForEveryone>() {
                Some(_) => HeaderValue::from_static("Accept-Encoding"),
                None => vary.clone(),
            };
            response.headers_mut().insert(header::VARY, vary);
            async move { response }
        }))
}

/// The marketplace's own pool. PostgreSQL cancels any statement of it still running a second
/// after `web.request_timeout`: by then [`router`]'s deadline has answered the request that
/// asked for it, so nothing waits for the result.
pub fn connect(config: &Config) -> Result<PgPool, sqlx::Error> {
    shimmer_store::connect_lazy_capped(
        &config.database,
        Some(config.web.request_timeout + STATEMENT_GRACE),
    )
}

/// How long a statement may outlive its request's deadline, so the deadline's 503 is what a
/// client sees rather than the cancelled query's error.
const STATEMENT_GRACE: Duration = Duration::from_secs(1);

/// Serves the marketplace on a bound listener until `shutdown` completes, then drains; each
/// request head must arrive within `web.header_read_timeout` (see [`shimmer_serve::serve`]).
pub fn serve_on(
    listener: tokio::net::TcpListener,
    config: &Config,
    pool: PgPool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
    let app = router(Arc::new(AppState::new(config, pool)));
    let header_read_timeout = config.web.header_read_timeout;
    async move {
        let addr: SocketAddr = listener.local_addr()?;
        tracing::info!(%addr, "marketplace listening");
        shimmer_serve::serve(listener, app, header_read_timeout, shutdown).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(extra: &str) -> AppState {
        let config = Config::from_toml(&format!(
            "{extra}\n[database]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n\
             [[backend]]\nname = \"b\"\nurl = \"http://127.0.0.1:1\"\n\
             [[route]]\nprefix = \"\"\nbackend = \"b\"\n"
        ))
        .unwrap();
        let pool = shimmer_store::connect_lazy(&config.database).unwrap();
        AppState::new(&config, pool)
    }

    fn host(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(value).unwrap());
        h
    }

    #[tokio::test]
    async fn install_lines_name_the_public_url_else_the_requested_host() {
        let s = state("[server]\nlisten = \"0.0.0.0:5000\"");
        assert_eq!(
            s.registry_host(&host("web.example.com:8080")),
            "web.example.com:5000"
        );
        assert_eq!(s.registry_host(&host("bad_host")), "localhost:5000");
        assert_eq!(s.registry_host(&HeaderMap::new()), "localhost:5000");
        let s = state("[server]\npublic_url = \"https://registry.example.com\"");
        assert_eq!(
            s.registry_host(&host("web.example.com")),
            "registry.example.com"
        );
        let s = state("[server]\npublic_url = \"http://registry.example.com:5443/\"");
        assert_eq!(
            s.registry_host(&HeaderMap::new()),
            "registry.example.com:5443"
        );
    }

    #[test]
    fn host_headers_are_validated() {
        assert_eq!(host_name("example.com"), Some("example.com"));
        assert_eq!(host_name("example.com:8080"), Some("example.com"));
        assert_eq!(host_name("[::1]:8080"), Some("[::1]"));
        assert_eq!(host_name("10.0.0.1"), Some("10.0.0.1"));
        assert_eq!(host_name("bad_host"), None);
        assert_eq!(host_name("a\"><script>"), None);
        assert_eq!(host_name("example.com:http"), None);
        assert_eq!(host_name(""), None);
        assert_eq!(host_name("-x.com"), None);
    }
}
