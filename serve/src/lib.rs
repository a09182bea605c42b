//! The HTTP serving loop the shim and the marketplace share: `axum::serve`'s (graceful drain),
//! plus what it lacks for a server facing the internet: a timeout on reading each request head,
//! so connections that trickle their headers (slowloris) or idle between requests are closed
//! instead of held forever; and HTTP/1.1 only, since HTTP/2 in plain text (h2c) would escape
//! that timeout.

use std::{future::Future, time::Duration};

use axum::{
    Router,
    http::{Request, Response},
    serve::Listener,
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;

/// Serves `router` on `listener` until `shutdown` resolves; then stops accepting, lets each
/// connection finish the request it is in (idle ones close at once) and returns once all have
/// closed. A client connection must send each request head within `header_read_timeout` of the
/// server starting to wait for it (a zero timeout is the caller's to refuse: hyper would cut
/// every connection at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let service = TowerToHyperService::new(router);
    serve_service(listener, service, header_read_timeout, shutdown).await;
}

/// [`serve`] for any hyper service: the shim answers `/v2` without a router in between.
pub async fn serve_service<S, B>(
    mut listener: TcpListener,
    service: S,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // HTTP/1.1 only. Registry clients speak it in plain text (HTTP/2 only over TLS, which a load
    // balancer in front terminates), and hyper's HTTP/2 server has no head or idle timeout: an
    // h2c connection could sit idle for ever, around `header_read_timeout`.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = GracefulShutdown::new();
    let keeper = tokio::spawn(keep_next_wake_near());
    tokio::pin!(shutdown);
    loop {
        // `Listener::accept` retries by itself on errors (it waits out a lack of descriptors).
        let (tcp, _) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        // Answers leave as soon as they are written, as nginx does on the connections it proxies
        // unbuffered: with Nagle's algorithm, a streamed body's short tail would wait for the
        // client's acknowledgement of the piece before it.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY on a client connection");
        }
        let conn = builder
            .serve_connection(TokioIo::new(tcp), service.clone())
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    keeper.abort();
}

/// Keeps a timer of this runtime always due within a second, so the timers each request arms
/// (the head's `header_read_timeout`, the backend's read timeout) are never the earliest one.
/// tokio wakes its driver (a write to its eventfd) whenever a timer is registered ahead of the
/// driver's next wake, even from the driver's own thread while it is busy polling
/// (tokio-rs/tokio#5207): without this, 0.4 such writes a request on a loaded shim.
async fn keep_next_wake_near() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}
