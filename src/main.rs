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
    /// Configuration file (TOML). Every key can be overridden by `SHIMMER_<SECTION>__<KEY>`.
    #[arg(long, global = true, env = "SHIMMER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run every component in one process (the default).
    Serve {
        /// Fill the cache from this list of image references before serving.
        #[arg(long)]
        preload: Option<PathBuf>,
        /// With `--preload`: only these platforms of an index (`os/arch[/variant]`,
        /// repeatable; default all).
        #[arg(long = "preload-platform")]
        preload_platforms: Vec<String>,
        /// With `--preload`: blobs fetched at once per image.
        #[arg(long, default_value_t = 4)]
        preload_concurrency: usize,
    },
    /// Run only the OCI endpoint.
    Shim,
    /// Apply database migrations and exit.
    Migrate,
    /// Run only indexer workers.
    Indexer,
    /// Run only the marketplace web server (`[web] listen`).
    Web,
    /// Index one reference now (`REPO:TAG` or `REPO@sha256:...`) and print what was found.
    Index {
        reference: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Fill the pull-through cache from a file of image references (`host/repo:tag` or
    /// `host/repo@sha256:...`, one per line; `#` comments).
    Preload {
        list: PathBuf,
        /// Only these platforms of an index (`os/arch[/variant]`, repeatable; default all).
        #[arg(long = "platform")]
        platforms: Vec<String>,
        /// Blobs fetched at once per image.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
    /// Inspect or move the pull-through cache.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Queue every manifest a backend holds that the store has not seen.
    Reconcile {
        /// Only this backend (default: all).
        #[arg(long)]
        backend: Option<String>,
    },
}

#[derive(Subcommand)]
enum CacheAction {
    /// What is cached per upstream, with sizes.
    Ls,
    /// Copy the cache and its metadata into DIR (for an air-gapped site).
    Export { dir: PathBuf },
    /// Load a cache exported with `cache export`.
    Import { dir: PathBuf },
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
    if let Err(e) = telemetry::init(&config.log) {
        eprintln!("shimmer: {e}");
        std::process::exit(2);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let command = cli.command.unwrap_or(Command::Serve {
                preload: None,
                preload_platforms: Vec::new(),
                preload_concurrency: 4,
            });
            match command {
                Command::Serve {
                    preload: list,
                    preload_platforms,
                    preload_concurrency,
                } => {
                    if let Some(list) = list {
                        preload(
                            config.clone(),
                            &list,
                            &preload_platforms,
                            preload_concurrency,
                        )
                        .await?;
                    }
                    serve(config, true).await
                }
                Command::Shim => serve(config, false).await,
                Command::Preload {
                    list,
                    platforms,
                    concurrency,
                } => preload(config, &list, &platforms, concurrency).await,
                Command::Cache { action } => cache(config, action).await,
                Command::Indexer => indexer_only(config).await,
                Command::Web => web_only(config).await,
                Command::Index { reference, json } => index_one(config, &reference, json).await,
                Command::Reconcile { backend } => reconcile(config, backend.as_deref()).await,
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
    let shim = tokio::spawn(shimmer_shim::run_threaded(
        listener,
        state.clone(),
        rx.clone(),
        config.server.threads,
    ));
    let workers = if all && config.indexer.enabled {
        let indexer = shimmer_indexer::worker::Indexer::new(config.clone(), state.pool.clone())?;
        Some(tokio::spawn(
            indexer.run(config.indexer.workers, rx.clone()),
        ))
    } else {
        None
    };
    let web = if all && config.web.enabled {
        let listener = TcpListener::bind(config.web.listen)
            .await
            .with_context(|| format!("binding web.listen {}", config.web.listen))?;
        println!("shimmer: marketplace at http://{}/", listener.local_addr()?);
        Some(tokio::spawn(shimmer_web::serve_on(
            listener,
            &config,
            shimmer_web::connect(&config)?,
            wait_for(rx.clone()),
        )))
    } else {
        None
    };
    shutdown_signal().await;
    tracing::info!(?drain, "shutting down: draining in-flight requests");
    let _ = tx.send(true);
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

async fn web_only(config: Arc<Config>) -> anyhow::Result<()> {
    let pool = shimmer_web::connect(&config)?;
    let listener = TcpListener::bind(config.web.listen)
        .await
        .with_context(|| format!("binding web.listen {}", config.web.listen))?;
    println!("shimmer: marketplace at http://{}/", listener.local_addr()?);
    shimmer_web::serve_on(listener, &config, pool, shutdown_signal())
        .await
        .map_err(Into::into)
}

async fn indexer_only(config: Arc<Config>) -> anyhow::Result<()> {
    let pool = shimmer_store::connect_lazy(&config.database)?;
    let indexer = shimmer_indexer::worker::Indexer::new(config.clone(), pool)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(indexer.run(config.indexer.workers, rx));
    tracing::info!(workers = config.indexer.workers, "indexer running");
    shutdown_signal().await;
    let _ = tx.send(true);
    let _ = tokio::time::timeout(config.server.shutdown_timeout, run).await;
    Ok(())
}

/// `REPO:TAG`, `REPO@DIGEST`, optionally behind a registry host (`host:port/REPO:TAG`).
fn split_reference(reference: &str) -> anyhow::Result<(String, String)> {
    let mut r = reference.trim_start_matches("docker://");
    if let Some((first, rest)) = r.split_once('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        r = rest;
    }
    let (repo, reference) = match r.split_once('@') {
        Some((repo, digest)) => (repo, digest),
        None => match r.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => (r, "latest"),
        },
    };
    anyhow::ensure!(
        shimmer_shim::path::is_valid_name(repo),
        "invalid repository name {repo:?}"
    );
    Ok((repo.to_owned(), reference.to_owned()))
}

async fn index_one(config: Arc<Config>, reference: &str, json: bool) -> anyhow::Result<()> {
    let (repo, reference) = split_reference(reference)?;
    let routes = config.route_table();
    let backend = routes
        .route(&repo)
        .with_context(|| format!("no route covers {repo:?}"))?
        .1
        .backend
        .clone();
    let pool = command_pool(&config).await?;
    let indexer = shimmer_indexer::worker::Indexer::new(config.clone(), pool.clone())?;
    let reader = indexer.backend(&backend)?;
    let options = shimmer_indexer::pipeline::Options {
        force: true,
        visibility: config.visibility(&backend, &repo),
        ..indexer.options().clone()
    };
    let outcome =
        shimmer_indexer::pipeline::index(&pool, reader, &repo, &reference, &options).await?;
    if json {
        println!("{}", serde_json::to_string(&outcome)?);
    } else {
        println!(
            "{} {} ({})",
            outcome.repository, outcome.reference, outcome.manifest_digest
        );
        println!("  kind: {}", outcome.kind);
        if let Some(t) = &outcome.package_type {
            println!("  package: {t} {}", outcome.name.as_deref().unwrap_or("?"));
        }
        if let Some(r) = &outcome.rejection {
            println!("  rejected: {r}");
        }
        println!("  apis: {}", outcome.apis.len());
        for a in &outcome.apis {
            println!("    {}.{} {}", a.kind, a.group, a.versions.join(","));
        }
        println!(
            "  objects: {} ({} new)",
            outcome.objects, outcome.objects_new
        );
        println!(
            "  downloaded {} of {} image bytes",
            outcome.bytes_downloaded, outcome.image_bytes
        );
    }
    Ok(())
}

/// The pool of a one-off command (`index`, `reconcile`, `preload`, `cache`), after applying
/// migrations as `serve` does, unless `database.migrate_on_start` is off: where `shimmer migrate`
/// runs as a step of its own, an older binary's hourly `reconcile` must not touch the schema
/// (nor fail on migrations it does not know).
async fn command_pool(config: &Config) -> anyhow::Result<shimmer_store::PgPool> {
    let pool = shimmer_store::connect_lazy(&config.database)?;
    if config.database.migrate_on_start {
        shimmer_store::migrate(&pool)
            .await
            .context("applying migrations (set database.migrate_on_start = false to skip)")?;
    }
    Ok(pool)
}

async fn shim_state(config: &Arc<Config>) -> anyhow::Result<shimmer_shim::AppState> {
    let pool = command_pool(config).await?;
    shimmer_shim::AppState::new(config.clone(), pool)
}

async fn preload(
    config: Arc<Config>,
    list: &std::path::Path,
    platforms: &[String],
    concurrency: usize,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
    let refs = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(shimmer_shim::preload::ImageRef::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!(e))?;
    let state = shim_state(&config).await?;
    let total = refs.len();
    let mut failed = 0;
    for (i, r) in refs.iter().enumerate() {
        match shimmer_shim::preload::preload(&state, r, platforms, concurrency).await {
            Ok(l) => println!(
                "[{}/{total}] {}/{}:{}  {} manifests, {} blobs, {} bytes",
                i + 1,
                r.host,
                r.repository,
                r.reference,
                l.manifests,
                l.blobs,
                l.bytes
            ),
            Err(e) => {
                failed += 1;
                eprintln!(
                    "[{}/{total}] {}/{}:{}  failed: {e}",
                    i + 1,
                    r.host,
                    r.repository,
                    r.reference
                );
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {total} references failed to preload"
    );
    Ok(())
}

async fn cache(config: Arc<Config>, action: CacheAction) -> anyhow::Result<()> {
    let state = shim_state(&config).await?;
    match action {
        CacheAction::Ls => {
            println!(
                "{:<20} {:>10} {:>10} {:>16}",
                "UPSTREAM", "MANIFESTS", "BLOBS", "BYTES"
            );
            for l in shimmer_shim::preload::list(&state).await? {
                println!(
                    "{:<20} {:>10} {:>10} {:>16}",
                    l.upstream, l.manifests, l.blobs, l.bytes
                );
            }
        }
        CacheAction::Export { dir } => {
            let bytes = shimmer_shim::preload::export(&state, &dir).await?;
            println!("exported {bytes} bytes to {}", dir.display());
        }
        CacheAction::Import { dir } => {
            let bytes = shimmer_shim::preload::import(&state, &dir).await?;
            println!("imported {bytes} bytes from {}", dir.display());
        }
    }
    Ok(())
}

async fn reconcile(config: Arc<Config>, only: Option<&str>) -> anyhow::Result<()> {
    if let Some(name) = only
        && !config.backends.iter().any(|b| b.name == name)
    {
        anyhow::bail!("no backend named {name:?} is configured");
    }
    let pool = command_pool(&config).await?;
    let routes = config.route_table();
    let indexer = shimmer_indexer::worker::Indexer::new(config.clone(), pool.clone())?;
    let mut failed = 0;
    for b in &config.backends {
        if only.is_some_and(|o| o != b.name) {
            continue;
        }
        let reader = match indexer.backend(&b.name) {
            Ok(reader) => reader,
            Err(e) => {
                // Another backend's catalog is still worth walking.
                eprintln!("{e}");
                failed += 1;
                continue;
            }
        };
        let report = shimmer_indexer::reconcile::reconcile(&pool, reader, |repo| {
            routes.route(repo).is_some_and(|(_, r)| r.backend == b.name)
        })
        .await
        .with_context(|| format!("reading the catalog of backend {}", b.name))?;
        println!(
            "{}: {} repositories, {} tags, {} manifests queued, {} repositories failed",
            b.name, report.repositories, report.tags, report.enqueued, report.failed
        );
        if report.requeued > 0 {
            println!("{}: {} failed jobs queued again", b.name, report.requeued);
        }
        for e in &report.errors {
            eprintln!("{}: {e}", b.name);
        }
        failed += report.failed;
    }
    // Every repository that could be walked was; say so in the exit status if some could not.
    if failed > 0 {
        anyhow::bail!("{failed} repositories or backends could not be reconciled (see above)");
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
