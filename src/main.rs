//! `shimmer`: parses the command line and configuration, then hands off to the crates.

mod telemetry;

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand};
use shimmer_config::Config;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(version, about = "An OCI registry front door for Crossplane packages")]
struct Cli {
    /// Configuration file (TOML). Every key can be overridden by SHIMMER_<SECTION>__<KEY>.
    #[arg(long, global = true, env = "SHIMMER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every component in one process (the default).
    Serve,
    /// Run only the OCI endpoint.
    Shim,
    /// Apply database migrations and exit.
    Migrate,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (path, explicit) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("shimmer.toml"), false),
    };
    let config = match Config::load(&path, explicit) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("shimmer: {e}");
            std::process::exit(2);
        }
    };
    telemetry::init(&config.log);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            match cli.command.unwrap_or(Command::Serve) {
                Command::Serve => serve(config, true).await,
                Command::Shim => serve(config, false).await,
                Command::Migrate => {
                    let pool = shimmer_store::connect_lazy(&config.database)?;
                    shimmer_store::migrate(&pool)
                        .await
                        .context("applying migrations")?;
                    tracing::info!("migrations applied");
                    Ok(())
                }
            }
        })
}

async fn serve(config: Arc<Config>, all: bool) -> anyhow::Result<()> {
    let pool = shimmer_store::connect_lazy(&config.database)?;
    if all && config.database.migrate_on_start {
        shimmer_store::migrate(&pool).await.context(
            "applying migrations at start (set database.migrate_on_start = false to skip)",
        )?;
    }
    let state = shimmer_shim::AppState::new(config.clone(), pool)?;
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("binding server.listen {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "shim listening");
    println!("shimmer: OCI endpoint at http://{addr}/v2/");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let drain = config.server.shutdown_timeout;
    let shim = tokio::spawn(shimmer_shim::run(listener, state, wait_for(rx.clone())));
    shutdown_signal().await;
    tracing::info!(?drain, "shutting down: draining in-flight requests");
    let _ = tx.send(true);
    match tokio::time::timeout(drain, shim).await {
        Ok(joined) => joined??,
        Err(_) => tracing::warn!("drain timed out; exiting with requests in flight"),
    }
    Ok(())
}

async fn wait_for(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
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
