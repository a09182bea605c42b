//! The shim: an OCI Distribution endpoint that forwards every request to the backend registry
//! its repository routes to, streaming bodies both ways, storing nothing itself, and queueing
//! every manifest it sees pushed (or pulled for the first time) for the indexer.
//!
//! Layers: `path` parses and validates, `routing` picks the backend, `forward` talks to it and
//! `rewrite` maps its URLs back onto the shim; `enqueue` is the only code that writes to the
//! database, and it never makes a client wait.

pub mod backend;
pub mod cache;
pub mod enqueue;
pub mod error;
pub mod forward;
pub mod health;
pub mod metrics;
pub mod path;
pub mod preload;
pub mod pulls;
pub mod request_id;
pub mod rewrite;
pub mod routing;
pub mod tls;
pub mod upstream;

use std::{future::Future, sync::Arc, time::Duration};

use axum::{Router, routing::any, routing::get};
use shimmer_config::Config;
use shimmer_store::PgPool;
use tokio::net::TcpListener;
use tower_http::{
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use crate::{enqueue::Enqueuer, metrics::Metrics, routing::Routes, upstream::Upstreams};

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub routes: Routes,
    pub upstreams: Upstreams,
    /// The pull-through cache of upstream content, with `[cache] path`.
    pub cache: Option<Arc<cache::Cache>>,
    pub pool: PgPool,
    pub enqueuer: Arc<Enqueuer>,
    pub metrics: Arc<Metrics>,
    /// Pull counts, flushed to `package_pulls` in the background.
    pub pulls: Arc<pulls::Pulls>,
    /// Follows blob redirects to object storage: no credentials, system trust roots.
    pub redirect_client: reqwest::Client,
    public_base: String,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state from configuration; fails on a backend whose TLS files cannot be read.
    pub fn new(config: Arc<Config>, pool: PgPool) -> anyhow::Result<Self> {
        backend::install_crypto_provider();
        let routes = Routes::from_config(&config)?;
        let upstreams = Upstreams::from_config(&config)?;
        let metrics = Arc::new(Metrics::default());
        let cache = cache::Cache::new(&config.cache, pool.clone(), metrics.clone())?;
        let enqueuer = Enqueuer::new(pool.clone(), config.server.seen_cache_size, metrics.clone());
        let redirect_client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()?;
        let public_base = config
            .server
            .public_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(Self(Arc::new(Inner {
            config,
            routes,
            upstreams,
            cache,
            pool,
            enqueuer,
            metrics,
            pulls: pulls::Pulls::new(),
            redirect_client,
            public_base,
        })))
    }

    /// Base for rewritten URLs: `public_url` without its trailing slash, or empty.
    pub fn public_base(&self) -> &str {
        &self.public_base
    }
}

/// The shim's routes: `/v2` and the operational endpoints.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v2", any(forward::handle))
        .route("/v2/", any(forward::handle))
        .route("/v2/{*rest}", any(forward::handle))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(state)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(
                    request_id::ProcessCounter::new(),
                ))
                .layer(
                    TraceLayer::new_for_http().make_span_with(|req: &http::Request<_>| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!("shim", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    }),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// Serves the shim on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let retry = state.enqueuer.spawn_retry_loop();
    let pulls = state.pulls.spawn_flush_loop(state.pool.clone());
    let (pull_counts, pool) = (state.pulls.clone(), state.pool.clone());
    let c = &state.config.cache;
    let eviction = state
        .cache
        .as_ref()
        .filter(|_| c.max_bytes > 0 || c.max_age.is_some())
        .map(|cache| cache.spawn_eviction(c.max_bytes, c.max_age, c.eviction_interval));
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    retry.abort();
    pulls.abort();
    pull_counts.flush(&pool).await;
    if let Some(e) = eviction {
        e.abort();
    }
    result
}
