//! shimmer's one piece of state: PostgreSQL.
//!
//! Every write lives in this crate, one module per table or aggregate, next to the function that
//! runs it, and so do the reads the shim and the indexer make. The marketplace's reads are its
//! own read model (`web/src/db/`), which never writes. Queries are runtime-checked
//! (`sqlx::query`), and every one is exercised by the integration tests against a real
//! PostgreSQL.

pub mod diffs;
pub mod jobs;
pub mod kinds;
pub mod leases;
pub mod packages;
pub mod pulls;
pub mod text;

pub use kinds::{JobState, VersionKind};

use std::time::Duration;

use shimmer_config::DatabaseConfig;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub use sqlx::PgPool;

/// Seconds since the Unix epoch: when a registry or upstream was asked something. Records that
/// keep such a time (`tags.resolved_at`, `packages.visibility_checked_at`, `cache_tags.checked_at`)
/// take the later answer, whichever writer commits last.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The migrations in the workspace's `migrations/`, embedded in the binary. Applied migrations
/// it does not know are ignored: during a rolling deploy the new release migrates first (its
/// migrations are additive, forward-only) while the old one keeps running and restarting.
pub static MIGRATOR: std::sync::LazyLock<sqlx::migrate::Migrator> =
    std::sync::LazyLock::new(|| {
        let mut migrator = sqlx::migrate!("../migrations");
        migrator.set_ignore_missing(true);
        migrator
    });

/// A pool that connects lazily: a process starts (and the registry path keeps working) while
/// the database is down.
pub fn connect_lazy(config: &DatabaseConfig) -> Result<PgPool, sqlx::Error> {
    connect_lazy_capped(config, None)
}

/// [`connect_lazy`], with every statement on the pool's connections cancelled by PostgreSQL
/// after `statement_timeout` (set at connection start, after any `options` in the URL, so it
/// wins over one there).
pub fn connect_lazy_capped(
    config: &DatabaseConfig,
    statement_timeout: Option<Duration>,
) -> Result<PgPool, sqlx::Error> {
    let mut options: PgConnectOptions = config.url.expose().parse()?;
    if let Some(timeout) = statement_timeout {
        let ms = timeout.as_millis().max(1).to_string();
        options = options.options([("statement_timeout", ms.as_str())]);
    }
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(config.acquire_timeout)
        .idle_timeout(Duration::from_secs(300))
        .connect_lazy_with(options.application_name("shimmer")))
}

/// Applies every pending migration, and logs the applied ones this binary does not know (a
/// newer release's).
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await?;
    let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    let newer: Vec<i64> =
        sqlx::query_scalar("select version from _sqlx_migrations where version <> all($1)")
            .bind(&known)
            .fetch_all(pool)
            .await
            .map_err(sqlx::migrate::MigrateError::Execute)?;
    if !newer.is_empty() {
        tracing::warn!(
            ?newer,
            "the database has migrations this release does not know (a newer release applied \
             them); going on"
        );
    }
    packages::fix_latest_versions_once(pool)
        .await
        .map_err(sqlx::migrate::MigrateError::Execute)
}
pub mod cache;

/// Whether the database answers a trivial query (readiness checks).
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar::<_, i32>("select 1")
        .fetch_one(pool)
        .await
        .map(drop)
}
