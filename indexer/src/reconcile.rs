//! Finds manifests the queue never heard of: pushed while the database was down, lost with a
//! shim that crashed before it could write, or pushed straight to a backend. Walks the
//! backend's catalog and tags and queues every digest the store has not seen.

use shimmer_store::{
    PgPool,
    jobs::{self, JobSource, NewJob},
};

use crate::registry::{BackendReader, RegistryError};

/// What a reconcile pass found.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Report {
    pub repositories: usize,
    pub tags: usize,
    pub enqueued: usize,
}

/// Walks one backend; `route` says whether the shim routes a repository name to this backend
/// (a backend may hold repositories the shim does not serve from it).
pub async fn reconcile(
    pool: &PgPool,
    backend: &BackendReader,
    route: impl Fn(&str) -> bool,
) -> Result<Report, RegistryError> {
    let mut report = Report::default();
    for repo in backend.catalog().await? {
        if !route(&repo) {
            continue;
        }
        report.repositories += 1;
        let known = jobs::known_digests(pool, &backend.name, &repo)
            .await
            .map_err(|e| RegistryError::Io(std::io::Error::other(e)))?;
        for tag in backend.tags(&repo).await? {
            report.tags += 1;
            let (_, digest) = backend.manifest(&repo, &tag).await?;
            if known.contains(&digest) {
                continue;
            }
            let job = NewJob {
                backend: backend.name.clone(),
                repository: repo.clone(),
                reference: tag,
                digest,
                media_type: None,
                source: JobSource::Reconcile,
            };
            if jobs::enqueue_if_unseen(pool, &job)
                .await
                .map_err(|e| RegistryError::Io(std::io::Error::other(e)))?
            {
                report.enqueued += 1;
            }
        }
    }
    Ok(report)
}
