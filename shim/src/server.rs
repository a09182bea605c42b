//! Serving the shim: `/v2` straight to [`forward::handle`] with a request id and a span, the
//! operational endpoints through a router, on one thread or one single-threaded runtime per
//! core, with the background loops (queue retries, pull counts, cache eviction) beside them.

use std::{future::Future, time::Duration};

use axum::{Router, routing::get};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tower_http::{
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::Instrument;

use crate::{AppState, forward, health, path, request_id, token};

/// The shim's operational endpoints, with request ids (from `ids`) and a span per request.
/// `/v2` is not among them: [`service`] answers it without a router in between.
fn router(state: AppState, ids: request_id::ProcessCounter) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route(
            "/token/{backend}",
            get(token::handle)
                .post(token::handle)
                .layer(axum::extract::DefaultBodyLimit::max(token::FORM_LIMIT)),
        )
        .with_state(state)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(ids))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// The span every request is served in, `/v2` or not: its method, the endpoint it is for
/// (`manifest`, `blob`, `upload`..., or the matched route of the others; never the raw path,
/// which can carry a signed upload session), and its `x-request-id`.
fn request_span<B>(req: &http::Request<B>) -> tracing::Span {
    let path = req.uri().path();
    let endpoint = match req.extensions().get::<axum::extract::MatchedPath>() {
        Some(matched) => matched.as_str(),
        None if path == "/v2" || path.starts_with("/v2/") => path::endpoint_kind(path),
        None => "",
    };
    tracing::info_span!(
        "shim",
        method = %req.method(),
        endpoint,
        request_id = %req
            .headers()
            .get(request_id::X_REQUEST_ID)
            .and_then(|id| id.to_str().ok())
            .unwrap_or(""),
    )
}

/// The shim as a hyper service: `/v2` and everything under it straight to [`forward::handle`],
/// with a request id and a span as `router`'s layers give its endpoints; the rest through
/// `router`. Every registry request skips the router's matching, the extensions its extractors
/// insert and the layers' boxed futures and bodies, about 20 allocations of a proxied manifest
/// request (see the README's Benchmarks).
pub fn service(
    state: AppState,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone
+ Send
+ 'static {
    let ids = request_id::ProcessCounter::new();
    let router = router(state.clone(), ids.clone());
    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let (state, router, ids) = (state.clone(), router.clone(), ids.clone());
        async move {
            let req = req.map(axum::body::Body::new);
            let path = req.uri().path();
            if path == "/v2" || path.starts_with("/v2/") {
                Ok(v2(state, &ids, req).await)
            } else {
                router.oneshot(req).await
            }
        }
    })
}

/// A `/v2` request: its `x-request-id` (the client's, or a new one, sent on to the backend and
/// returned), its span, and the events tower-http's trace layer would log: the start and end at
/// debug, a 5xx answer at error.
async fn v2(
    state: AppState,
    ids: &request_id::ProcessCounter,
    mut req: http::Request<axum::body::Body>,
) -> axum::response::Response {
    let id = match req.headers().get(request_id::X_REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = ids.next_id();
            req.headers_mut()
                .insert(request_id::X_REQUEST_ID, id.clone());
            id
        }
    };
    let span = request_span(&req);
    let start = std::time::Instant::now();
    let mut resp = async move {
        tracing::debug!("started processing request");
        let resp = forward::handle(axum::extract::State(state), req).await;
        let latency = start.elapsed();
        let status = resp.status();
        if status.is_server_error() {
            tracing::error!(?latency, %status, "response failed");
        } else {
            tracing::debug!(?latency, %status, "finished processing request");
        }
        resp
    }
    .instrument(span)
    .await;
    resp.headers_mut()
        .entry(request_id::X_REQUEST_ID)
        .or_insert(id);
    resp
}

/// Serves the shim on `listener` until `shutdown` is cancelled, then drains in-flight requests, all
/// on the current runtime (tests, and `threads = 1` in effect).
pub async fn run(listener: TcpListener, state: AppState, shutdown: CancellationToken) {
    let background = Background::start(&state);
    serve(listener, state.clone(), shutdown.cancelled_owned()).await;
    background.stop(&state).await;
}

/// Serves the shim's [`service`] on `listener` until `shutdown` resolves, then drains (see
/// [`shimmer_serve::serve_service`]); each request head must arrive within `server.header_read_timeout`.
async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()>) {
    let timeout = state.config.server.header_read_timeout;
    shimmer_serve::serve_service(listener, service(state), timeout, shutdown).await;
}

/// [`run`] on `threads` threads (0: one per core), each accepting from the same listener on a
/// single-threaded runtime of its own, as nginx's workers do: a request, its backend exchange
/// (each thread has its own backend pools) and its answer never hop threads, which a work-stealing
/// runtime makes them do at a measured 7 us or so of CPU a request. Background work (the retry
/// and pull-count loops, eviction) stays on the caller's runtime.
///
/// A serving thread never exits once it has drained: its runtime stays up until the process ends,
/// because database connections it opened may sit in the shared pool and are driven by it.
pub async fn run_threaded(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
    threads: usize,
) -> std::io::Result<()> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // One handle on the listening socket per thread; the socket closes (new connections are
    // refused) once every thread has stopped accepting, so none is kept here.
    let mut listeners = vec![listener.into_std()?];
    for _ in 1..threads {
        let clone = listeners[0].try_clone()?;
        listeners.push(clone);
    }
    let mut done = Vec::with_capacity(threads);
    for (i, listener) in listeners.into_iter().enumerate() {
        let (state, shutdown) = (state.clone(), shutdown.clone());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(format!("shim-{i}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let served = async {
                        let listener = TcpListener::from_std(listener)?;
                        serve(listener, state, shutdown.cancelled_owned()).await;
                        Ok::<_, std::io::Error>(())
                    };
                    let _ = tx.send(served.await);
                    std::future::pending::<()>().await
                })
            })?;
        done.push(rx);
    }
    let background = Background::start(&state);
    let mut result = Ok(());
    for rx in done {
        if let Ok(Err(e)) = rx.await {
            result = Err(e);
        }
    }
    background.stop(&state).await;
    result
}

/// Longest a stop spends writing the queue's held jobs (each try waits up to the pool's
/// `acquire_timeout` while the database is away).
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// The shim's loops that run beside request handling.
struct Background {
    retry: tokio::task::JoinHandle<()>,
    pulls: tokio::task::JoinHandle<()>,
    eviction: Option<tokio::task::JoinHandle<()>>,
}

impl Background {
    fn start(state: &AppState) -> Self {
        let c = &state.config.cache;
        Self {
            retry: state.enqueuer.spawn_retry_loop(),
            pulls: state.pulls.spawn_flush_loop(state.pool.clone()),
            eviction: state
                .cache
                .as_ref()
                .filter(|_| c.max_bytes > 0 || c.max_age.is_some())
                .map(|cache| cache.spawn_eviction(c.max_bytes, c.max_age, c.eviction_interval)),
        }
    }

    /// Stops the loops, then writes the queue's held jobs and the pull counts not yet flushed.
    async fn stop(self, state: &AppState) {
        self.retry.abort();
        self.pulls.abort();
        if let Some(e) = self.eviction {
            e.abort();
        }
        let deadline = state.config.server.shutdown_timeout.min(DRAIN_DEADLINE);
        state.enqueuer.drain(deadline).await;
        state.pulls.flush(&state.pool).await;
    }
}
