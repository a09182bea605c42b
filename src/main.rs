//! `shimmer`: parses the command line and configuration, then composes the crates. Each
//! service runs with one shutdown token; what a command prints is its types' `Display`.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::exit,
    reason = "the command line prints its results and exits with its status"
)]

mod cli;
mod commands;
mod diff;
mod diff_input;
mod services;
mod telemetry;

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::Parser;
use cli::{Cli, Command};
use commands::{cache, index_one, preload_list};
use shimmer_config::Config;

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
    if let Err(e) = telemetry::init(&config.log) {
        eprintln!("shimmer: {e}");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(config, cli.command.unwrap_or_default()))
}

async fn run(config: Arc<Config>, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            preload,
            preload_platforms,
            preload_concurrency,
        } => {
            if let Some(list) = preload {
                preload_list(&config, &list, &preload_platforms, preload_concurrency).await?;
            }
            services::serve(config, true).await
        }
        Command::Shim => services::serve(config, false).await,
        Command::Preload {
            list,
            platforms,
            concurrency,
        } => preload_list(&config, &list, &platforms, concurrency).await,
        Command::Cache { action } => cache(&config, action).await,
        Command::Indexer => services::indexer(config).await,
        Command::Web => services::web(config).await,
        Command::Index { reference, json } => index_one(config, &reference, json).await,
        Command::Reconcile { backend } => commands::reconcile(config, backend.as_deref()).await,
        Command::Diff {
            old,
            new,
            json,
            format,
            rules,
        } => {
            let format = if json { cli::DiffFormat::Json } else { format };
            let status = diff::run(&config, &old, &new, format, rules.as_deref()).await;
            std::process::exit(status)
        }
        Command::Migrate => {
            let pool = shimmer_store::connect_lazy(&config.database)?;
            shimmer_store::migrate(&pool)
                .await
                .context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
