//! The one-off commands: `index`, `reconcile`, `preload` and `cache`. Each opens its pool as
//! `serve` would, calls one crate, and prints what that crate's types display.

use std::sync::Arc;

use anyhow::Context;
use shimmer_config::Config;
use shimmer_indexer::{pipeline, reconcile as walk, worker::Indexer};
use shimmer_shim::preload;

use crate::cli::{self, CacheAction};

/// `shimmer reconcile`: queue what the backends hold and the store never heard of.
pub async fn reconcile(config: Arc<Config>, backend: Option<&str>) -> anyhow::Result<()> {
    if let Some(name) = backend.filter(|n| !config.backends.iter().any(|b| b.name == *n)) {
        anyhow::bail!("no backend named {name:?} is configured");
    }
    let indexer = Indexer::new(config.clone(), command_pool(&config).await?)?;
    let failed = walk::all(&indexer, backend, |name, report| {
        println!("{name}: {report}");
        if report.requeued > 0 {
            println!("{name}: {} failed jobs queued again", report.requeued);
        }
        report.errors.iter().for_each(|e| eprintln!("{name}: {e}"));
    })
    .await?;
    // Every repository that could be walked was; say so in the exit status if some could not.
    anyhow::ensure!(
        failed == 0,
        "{failed} repositories or backends could not be reconciled (see above)"
    );
    Ok(())
}

pub async fn index_one(config: Arc<Config>, reference: &str, json: bool) -> anyhow::Result<()> {
    let (repo, reference) = cli::split_reference(reference)?;
    let routes = config.route_table();
    let route = routes
        .route(&repo)
        .with_context(|| format!("no route covers {repo:?}"))?;
    let backend = route.1.backend.clone();
    let pool = command_pool(&config).await?;
    let indexer = Indexer::new(config.clone(), pool.clone())?;
    let options = pipeline::Options {
        force: true,
        visibility: config.visibility(&backend, &repo),
        ..indexer.options().clone()
    };
    let reader = indexer.backend(&backend)?;
    let outcome = pipeline::index(&pool, reader, &repo, &reference, &options).await?;
    match json {
        true => println!("{}", serde_json::to_string(&outcome)?),
        false => println!("{outcome}"),
    }
    Ok(())
}

/// The pool of a one-off command (`index`, `reconcile`, `preload`, `cache`), after applying
/// migrations as `serve` does, unless `database.migrate_on_start` is off: where `shimmer migrate`
/// runs as a step of its own, an older binary's hourly `reconcile` must not touch the schema
/// (nor fail on migrations it does not know).
pub async fn command_pool(config: &Config) -> anyhow::Result<shimmer_store::PgPool> {
    let pool = shimmer_store::connect_lazy(&config.database)?;
    if config.database.migrate_on_start {
        shimmer_store::migrate(&pool)
            .await
            .context("applying migrations (set database.migrate_on_start = false to skip)")?;
    }
    Ok(pool)
}

async fn shim_state(config: &Arc<Config>) -> anyhow::Result<shimmer_shim::AppState> {
    Ok(shimmer_shim::AppState::new(
        config.clone(),
        command_pool(config).await?,
    )?)
}

pub async fn preload_list(
    config: &Arc<Config>,
    list: &std::path::Path,
    platforms: &[String],
    concurrency: usize,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
    let refs = preload::parse_list(&text).map_err(|e| anyhow::anyhow!(e))?;
    let state = shim_state(config).await?;
    let failed = preload::preload_all(&state, &refs, platforms, concurrency, |p| match p.result {
        Ok(_) => println!("{p}"),
        Err(_) => eprintln!("{p}"),
    })
    .await;
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} references failed to preload",
        refs.len()
    );
    Ok(())
}

pub async fn cache(config: &Arc<Config>, action: CacheAction) -> anyhow::Result<()> {
    let state = shim_state(config).await?;
    match action {
        CacheAction::Ls => {
            println!("{}", preload::Listed::HEADER);
            preload::list(&state)
                .await?
                .iter()
                .for_each(|l| println!("{l}"));
        }
        CacheAction::Export { dir } => {
            let bytes = preload::export(&state, &dir).await?;
            println!("exported {bytes} bytes to {}", dir.display());
        }
        CacheAction::Import { dir } => {
            let bytes = preload::import(&state, &dir).await?;
            println!("imported {bytes} bytes from {}", dir.display());
        }
    }
    Ok(())
}
