//! Finds manifests the queue never heard of: pushed while the database was down, lost with a
//! shim that crashed before it could write, or pushed straight to a backend. Walks the
//! backend's catalog and tags and queues a job for every (tag, digest) pair the store does not
//! record (a new digest, a second tag of a known one, a tag moved to a known digest), and queues
//! again the failed jobs whose manifest was never stored.

use shimmer_store::{
    PgPool,
    jobs::{self, JobSource, NewJob},
};

use shimmer_registry::{Client, RegistryError};

use crate::worker::Indexer;

/// What a reconcile pass found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub repositories: usize,
    pub tags: usize,
    pub enqueued: usize,
    /// Failed jobs queued again (their manifest has no stored version).
    pub requeued: usize,
    /// Repositories that could not be walked (logged; the pass went on without them).
    pub failed: usize,
    /// The first errors, `repository: error`, for the caller to show.
    pub errors: Vec<String>,
}

/// What `shimmer reconcile` prints of one backend's pass (the backend's name goes before it).
impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} repositories, {} tags, {} manifests queued, {} repositories failed",
            self.repositories, self.tags, self.enqueued, self.failed
        )
    }
}

/// Why a reconcile run stopped: a backend's catalog could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the catalog of backend {backend}: {source}")]
pub struct CatalogError {
    pub backend: String,
    #[source]
    pub source: RegistryError,
}

/// Walks every configured backend (or only `only`) over the repositories the configuration
/// routes to it, handing each backend's report to `report` as it finishes; returns how many
/// repositories could not be walked. A catalog that cannot be read ends the run.
pub async fn all(
    indexer: &Indexer,
    only: Option<&str>,
    mut report: impl FnMut(&str, &Report),
) -> Result<usize, CatalogError> {
    let config = indexer.config();
    let routes = config.route_table();
    let mut failed = 0;
    for b in config
        .backends
        .iter()
        .filter(|b| only.is_none_or(|o| o == b.name))
    {
        let backend = indexer
            .backend(&b.name)
            .expect("every configured backend has a reader");
        let routed_here = |repo: &str| routes.route(repo).is_some_and(|(_, r)| r.backend == b.name);
        let pass = reconcile(indexer.pool(), backend, routed_here)
            .await
            .map_err(|source| CatalogError {
                backend: b.name.clone(),
                source,
            })?;
        report(&b.name, &pass);
        failed += pass.failed;
    }
    Ok(failed)
}

/// Walks one backend; `route` says whether the shim routes a repository name to this backend
/// (a backend may hold repositories the shim does not serve from it). Only a failure to read the
/// catalog ends the pass; a repository that fails (its tags or a manifest unreadable, the
/// database refusing a write) is logged, counted in [`Report::failed`], and skipped.
pub async fn reconcile(
    pool: &PgPool,
    backend: &Client,
    route: impl Fn(&str) -> bool,
) -> Result<Report, RegistryError> {
    let mut report = Report::default();
    for repo in backend.catalog().await? {
        if !route(&repo) {
            continue;
        }
        report.repositories += 1;
        if let Err(error) = repository(pool, backend, &repo, &mut report).await {
            tracing::warn!(backend = %backend.name(), repository = %repo, %error, "reconcile: repository skipped");
            report.failed += 1;
            if report.errors.len() < 20 {
                report.errors.push(format!("{repo}: {error}"));
            }
        }
    }
    Ok(report)
}

async fn repository(
    pool: &PgPool,
    backend: &Client,
    repo: &str,
    report: &mut Report,
) -> Result<(), RegistryError> {
    let db = |e: sqlx::Error| RegistryError::Io(std::io::Error::other(e));
    // First, so the requeued jobs count as open below and are not queued twice.
    let requeued = jobs::requeue_failed(pool, backend.name(), repo)
        .await
        .map_err(db)?;
    report.requeued += requeued as usize;
    // Keyed by (tag, digest), not digest: a digest the store knows may have gained a tag, or a
    // tag moved to it, and only a job records a tag. A job for a stored digest costs one
    // manifest read: the pipeline finds the version and only moves the tag.
    let mut known = jobs::known_tags(pool, backend.name(), repo)
        .await
        .map_err(db)?;
    for tag in backend.tags(repo).await? {
        // A referrers fallback index (the shim's or a client's) is no version of anything.
        if shimmer_registry::is_fallback_tag(&tag) {
            continue;
        }
        report.tags += 1;
        let (_, digest) = backend.manifest(repo, &tag).await?;
        if !known.insert((tag.clone(), digest.clone())) {
            continue;
        }
        let job = NewJob {
            backend: backend.name().to_owned(),
            repository: repo.to_owned(),
            reference: tag,
            digest,
            media_type: None,
            source: JobSource::Reconcile,
            at: std::time::SystemTime::now(),
        };
        jobs::enqueue(pool, &job).await.map_err(db)?;
        report.enqueued += 1;
    }
    Ok(())
}
