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
//!
//! Modules, from the edge inwards: [`router`] lists every route, and `layers` wraps them (request
//! id and span, refusals, deadline, headers, and every error's page or JSON body); `pages` and
//! `api` answer, with `params` reading their query strings; `views` shapes what `db` (the read
//! model) reads; `schema`, `markdown` and `render` turn publisher content into HTML off the
//! runtime; `error` (the one error type), `state`, `text`, `http`, `layout`, `icon` and `assets`
//! are the pieces they share. No module imports one that imports it back.

mod api;
mod assets;
mod compare;
mod db;
mod error;
mod http;
mod icon;
mod layers;
mod layout;
mod lookup;
mod markdown;
mod pages;
mod params;
mod render;
mod schema;
mod state;
mod text;
mod views;

use std::{net::SocketAddr, sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

use axum::{
    Router,
    http::{HeaderName, HeaderValue, header},
    middleware,
    routing::get,
};
use shimmer_config::Config;
use sqlx::PgPool;
use tower_http::{
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

pub use assets::Assets;
pub use error::{Error, Result};
pub use state::AppState;

/// The marketplace's routes with their layers (see `layers`), in the order a request meets
/// them: its request id and span; `Vary` and security headers; compression; errors given their
/// page or JSON body; unreadable addresses refused; the deadline; the handler.
pub fn router(state: Arc<AppState>) -> Router {
    let csp = layers::content_security_policy(&state.public_base);
    let vary = layers::vary(state.fixed_registry_host());
    let x_request_id = HeaderName::from_static(layers::X_REQUEST_ID);
    Router::new()
        .route("/", get(pages::home))
        .route("/search", get(pages::search))
        .route("/status", get(pages::status))
        .route("/packages", get(pages::packages))
        .route("/packages/", get(pages::packages))
        .route("/packages/{*path}", get(pages::package))
        .route("/docs/{id}", get(pages::docs))
        .route("/icons/{digest}", get(icon::serve))
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
        .method_not_allowed_fallback(layers::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layers::deadline,
        ))
        .layer(middleware::from_fn(layers::refuse_unreadable_addresses))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            layers::render_errors,
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
        .layer(middleware::map_response(vary))
        // Layers added last run first: the id is set, then the span opened with it, and the id
        // copied onto the response on its way out. A UUID costs the marketplace nothing it
        // would notice (the shim counts instead: see `shimmer_shim::request_id`).
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(layers::request_span))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
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

/// Serves the marketplace on a bound listener until `shutdown` is cancelled, then drains; each
/// request head must arrive within `web.header_read_timeout` (see [`shimmer_serve::serve`]).
/// The listener is the caller's, so tests bind port 0 and read the address first.
pub fn run(
    listener: tokio::net::TcpListener,
    config: &Config,
    pool: PgPool,
    shutdown: CancellationToken,
) -> impl std::future::Future<Output = Result<()>> + Send + 'static {
    let app = router(Arc::new(AppState::new(config, pool)));
    let header_read_timeout = config.web.header_read_timeout;
    async move {
        let addr: SocketAddr = listener.local_addr()?;
        tracing::info!(%addr, "marketplace listening");
        let stop = shutdown.cancelled_owned();
        shimmer_serve::serve(listener, app, header_read_timeout, stop).await;
        Ok(())
    }
}
