//! The long-running services: everything in one process (`serve`), or the shim, the indexer or
//! the marketplace alone; each runs until SIGTERM or CTRL-C, then drains within
//! `server.shutdown_timeout`, all stopped by one cancellation token.

use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use shimmer_config::Config;
use shimmer_indexer::worker::Indexer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// `shimmer indexer`: workers only.
pub async fn indexer(config: Arc<Config>) -> anyhow::Result<()> {
    let indexer = Indexer::new(
        config.clone(),
        shimmer_store::connect_lazy(&config.database)?,
    )?;
    tracing::info!(workers = config.indexer.workers, "indexer running");
    until_signal(&config, |stop| indexer.run(config.indexer.workers, stop)).await
}

/// `shimmer web`: the marketplace only.
pub async fn web(config: Arc<Config>) -> anyhow::Result<()> {
    let listener = bind(config.web.listen, "web.listen", "marketplace at http://{}/").await?;
    let pool = shimmer_web::connect(&config)?;
    until_signal(&config, |stop| {
        shimmer_web::run(listener, &config, pool, stop)
    })
    .await
}

/// Every component in one process (`all`), or the shim alone; until SIGTERM or CTRL-C, then
/// each drains within `server.shutdown_timeout`.
pub async fn serve(config: Arc<Config>, all: bool) -> anyhow::Result<()> {
    let pool = shimmer_store::connect_lazy(&config.database)?;
    if all && config.database.migrate_on_start {
        shimmer_store::migrate(&pool).await.context(
            "applying migrations at start (set database.migrate_on_start = false to skip)",
        )?;
    }
    let state = shimmer_shim::AppState::new(config.clone(), pool.clone())?;
    let listener = bind(
        config.server.listen,
        "server.listen",
        "OCI endpoint at http://{}/v2/",
    )
    .await?;
    let stop = CancellationToken::new();
    let shim = shimmer_shim::run_threaded(listener, state, stop.clone(), config.server.threads);
    let shim = tokio::spawn(shim);
    let workers = match all && config.indexer.enabled {
        true => Some(tokio::spawn(
            Indexer::new(config.clone(), pool)?.run(config.indexer.workers, stop.clone()),
        )),
        false => None,
    };
    let web = match all && config.web.enabled {
        true => {
            let listener =
                bind(config.web.listen, "web.listen", "marketplace at http://{}/").await?;
            let pool = shimmer_web::connect(&config)?;
            Some(tokio::spawn(shimmer_web::run(
                listener,
                &config,
                pool,
                stop.clone(),
            )))
        }
        false => None,
    };
    shutdown_signal().await;
    let drain = config.server.shutdown_timeout;
    tracing::info!(?drain, "shutting down: draining in-flight requests");
    stop.cancel();
    match tokio::time::timeout(drain, shim).await {
        Ok(joined) => joined??,
        Err(_) => tracing::warn!("drain timed out; exiting with requests in flight"),
    }
    if let Some(w) = web {
        let _ = tokio::time::timeout(drain, w).await;
    }
    if let Some(w) = workers {
        let _ = tokio::time::timeout(drain, w).await;
    }
    Ok(())
}

/// Runs the service `start` makes until a signal, then gives it `server.shutdown_timeout`.
async fn until_signal<F, T>(
    config: &Config,
    start: impl FnOnce(CancellationToken) -> F,
) -> anyhow::Result<()>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let stop = CancellationToken::new();
    let task = tokio::spawn(start(stop.clone()));
    shutdown_signal().await;
    stop.cancel();
    let _ = tokio::time::timeout(config.server.shutdown_timeout, task).await;
    Ok(())
}

async fn bind(addr: SocketAddr, key: &str, announce: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {key} {addr}"))?;
    println!(
        "shimmer: {}",
        announce.replace("{}", &listener.local_addr()?.to_string())
    );
    Ok(listener)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
