//! Pull counts: the shim counts pulls in memory and adds them to `package_pulls` in batches.
//!
//! A pull is a `GET` of a manifest (by tag or digest) that the backend answered `200`, whose
//! media type is not an image index or manifest list: every client fetches exactly one such
//! manifest per image it pulls (docker and containerd resolve an index to one platform's
//! manifest, skopeo and Crossplane fetch the manifest), so a multi-platform pull counts once
//! and a `HEAD` (a client checking a tag) not at all. Pulls served by a pull-through upstream
//! are not counted.
//!
//! Counting costs a mutex and a hash-map update on the request path; a background task swaps
//! the map out every few seconds and writes it in one statement. A failed write puts the counts
//! back for the next round, so an outage of PostgreSQL loses nothing while the process lives
//! (and never fails a request); a crash loses at most one interval's counts.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::http::{HeaderMap, Method, StatusCode, header};
use shimmer_store::{PgPool, pulls::PullCount};

/// How often counts are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// Most distinct repositories held between flushes; beyond it new ones wait for the next round.
const CAPACITY: usize = 100_000;

/// Pulls counted since the last flush, by backend, then repository (nested, so counting a
/// repository already in the map looks it up by `&str` and allocates nothing).
#[derive(Default)]
pub struct Pulls {
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    by_backend: HashMap<String, HashMap<String, i64>>,
    /// Distinct (backend, repository) pairs held.
    len: usize,
}

impl Counts {
    /// Adds `n` pulls; a pair not yet held is dropped when `CAPACITY` pairs are (unless `force`).
    fn add(&mut self, backend: &str, repository: &str, n: i64, force: bool) {
        if let Some(c) = self
            .by_backend
            .get_mut(backend)
            .and_then(|r| r.get_mut(repository))
        {
            *c += n;
            return;
        }
        if self.len >= CAPACITY && !force {
            return;
        }
        self.len += 1;
        self.by_backend
            .entry(backend.to_owned())
            .or_default()
            .insert(repository.to_owned(), n);
    }
}

impl Pulls {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts the backend's response to a manifest request, if it is a pull (see the module
    /// doc). `repo` is the repository's (shim name, backend name).
    pub fn observe<B>(
        &self,
        backend: &str,
        repo: Option<&(String, String)>,
        method: &Method,
        resp: &http::Response<B>,
    ) {
        let repository = repo.map(|(name, _)| name.as_str());
        self.count(backend, repository, method, resp.status(), resp.headers());
    }

    fn count(
        &self,
        backend: &str,
        repository: Option<&str>,
        method: &Method,
        status: StatusCode,
        headers: &HeaderMap,
    ) {
        let Some(repository) = repository else {
            return;
        };
        if method != Method::GET || status != StatusCode::OK || is_index(headers) {
            return;
        }
        self.counts
            .lock()
            .expect("pull counts poisoned")
            .add(backend, repository, 1, false);
    }

    fn take(&self) -> Vec<PullCount> {
        let counts = std::mem::take(&mut *self.counts.lock().expect("pull counts poisoned"));
        counts
            .by_backend
            .into_iter()
            .flat_map(|(backend, repos)| {
                repos.into_iter().map(move |(repository, count)| PullCount {
                    backend: backend.clone(),
                    repository,
                    count,
                })
            })
            .collect()
    }

    /// Counts a failed write could not record; kept whatever the capacity (they were counted).
    fn put_back(&self, batch: Vec<PullCount>) {
        let mut counts = self.counts.lock().expect("pull counts poisoned");
        for c in batch {
            counts.add(&c.backend, &c.repository, c.count, true);
        }
    }

    /// Writes the counts gathered so far (putting them back if the database refuses).
    pub async fn flush(&self, pool: &PgPool) {
        let batch = self.take();
        if batch.is_empty() {
            return;
        }
        if let Err(error) = shimmer_store::pulls::add(pool, &batch).await {
            tracing::warn!(%error, repositories = batch.len(), "could not record pull counts; will retry");
            self.put_back(batch);
        }
    }

    /// Flushes every [`FLUSH_INTERVAL`] until aborted.
    pub fn spawn_flush_loop(self: &Arc<Self>, pool: PgPool) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.flush(&pool).await;
            }
        })
    }
}

/// Whether a manifest response is an image index (OCI) or a manifest list (Docker).
fn is_index(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.contains("application/vnd.oci.image.index.v1+json")
                || t.contains("application/vnd.docker.distribution.manifest.list.v2+json")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, content_type.parse().unwrap());
        h
    }

    #[test]
    fn only_successful_gets_of_single_manifests_count() {
        let p = Pulls::default();
        let manifest = headers("application/vnd.oci.image.manifest.v1+json");
        let index = headers("application/vnd.oci.image.index.v1+json");
        let list = headers("application/vnd.docker.distribution.manifest.list.v2+json");
        p.count("b", Some("r"), &Method::GET, StatusCode::OK, &manifest);
        p.count("b", Some("r"), &Method::GET, StatusCode::OK, &manifest);
        p.count("b", Some("r"), &Method::HEAD, StatusCode::OK, &manifest);
        p.count(
            "b",
            Some("r"),
            &Method::GET,
            StatusCode::NOT_FOUND,
            &manifest,
        );
        p.count("b", Some("r"), &Method::GET, StatusCode::OK, &index);
        p.count("b", Some("r"), &Method::GET, StatusCode::OK, &list);
        p.count("b", None, &Method::GET, StatusCode::OK, &manifest);
        p.count("b", Some("s"), &Method::GET, StatusCode::OK, &manifest);
        let mut batch = p.take();
        batch.sort_by(|a, b| a.repository.cmp(&b.repository));
        assert_eq!(
            batch
                .iter()
                .map(|c| (c.repository.as_str(), c.count))
                .collect::<Vec<_>>(),
            [("r", 2), ("s", 1)]
        );
        assert!(p.take().is_empty(), "taking empties the counts");
        p.put_back(batch);
        assert_eq!(p.take().iter().map(|c| c.count).sum::<i64>(), 3);
    }
}
