//! The pull-through cache for upstreams chosen by `ns`.
//!
//! Layout under `[cache] path`: `<upstream>/blobs/sha256/<hex>`, `<upstream>/manifests/sha256/<hex>`
//! (plus `<hex>.type`, the manifest's media type), and `tmp/` for downloads in progress. The
//! upstream is part of every path: a blob one upstream served is never handed out for another.
//!
//! A blob miss is downloaded once, however many clients ask at the same time: the first request
//! starts a download into a temp file and every request (the first included) streams that file as
//! it grows, so the first byte does not wait for the whole blob. The digest is checked at the
//! end; only then is the file renamed into place. On a mismatch the temp file is deleted and
//! every client's transfer is aborted: partial or corrupt files are never served.
//!
//! A cached tag past its TTL is revalidated with a `HEAD` bounded by `revalidate_timeout`; when
//! the upstream is unreachable, failing or slow, the cached copy is served, logged and counted
//! (`shimmer_cache_stale_served_total`). A `HEAD` without `Docker-Content-Digest` cannot
//! revalidate, so a `GET` of the tag does (the copy is never served stale forever).
//!
//! Everything that becomes a path under the cache (upstream names, digests from requests,
//! upstream manifests and imported metadata) goes through `content_path`, which admits only a
//! `sha256:` digest of 64 lowercase hex and a plain upstream name: nothing can name a file
//! outside the cache. Temp files are named after such a path, so they stay in `tmp/`.

use shimmer_registry::ErrorCode;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::Response,
};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use shimmer_config::CacheConfig;
use shimmer_store::PgPool;
use tokio::{
    io::AsyncWriteExt,
    sync::{Notify, watch},
};

use crate::{
    error::OciError, forward::DOCKER_CONTENT_DIGEST, metrics::Metrics, upstream::Upstream,
};

mod blob;
mod evict;
mod fill;
mod manifest;
mod stream;

pub use evict::Evicted;
use stream::{Resume, bounded_body, open_blob, refusal_code, serve_file, tail, upstream_refusal};

const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;
const READ_CHUNK: usize = 256 * 1024;
/// How long a temp file must have gone unwritten to be taken for a crashed process's leftover
/// when the cache opens. Not every file older than this process: another process sharing the
/// directory (`shimmer preload` beside `shimmer serve`) may be writing one, and a live download
/// writes at least once per `read_timeout`.
const STALE_TEMP: Duration = Duration::from_secs(600);
/// Largest upstream error body passed on to a client (an OCI error envelope is small).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Every manifest type the cache keeps. Fills and revalidations always ask for all of them, so
/// what is stored for a tag does not depend on which client happened to ask first; a client
/// that accepts fewer is answered past the cache (see [`Cache::manifest`]).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Where a download stands; every reader of it watches this.
#[derive(Debug, Clone)]
enum Fill {
    Connecting,
    Streaming {
        total: Option<u64>,
        written: u64,
    },
    Done {
        total: u64,
    },
    Failed {
        status: Option<StatusCode>,
        message: String,
        /// The fault is the cache's own (a full or unwritable disk), not the upstream's: the
        /// blob can still be sent straight from the upstream, uncached.
        local: bool,
        /// An upstream refusal a client should see as it is (401, 403, 429 with their OCI
        /// error body): content type and body.
        answer: Option<(Option<HeaderValue>, Bytes)>,
    },
}

impl Fill {
    fn failed(message: impl Into<String>) -> Self {
        Self::Failed {
            status: None,
            message: message.into(),
            local: false,
            answer: None,
        }
    }

    fn local(message: impl std::fmt::Display) -> Self {
        Self::Failed {
            status: None,
            message: format!("cache not writable: {message}"),
            local: true,
            answer: None,
        }
    }
}

struct InFlight {
    tmp: PathBuf,
    progress: watch::Receiver<Fill>,
}

/// The cache, shared by all requests.
pub struct Cache {
    root: PathBuf,
    pub offline: bool,
    tag_ttl: Option<Duration>,
    revalidate_timeout: Duration,
    pool: PgPool,
    /// Downloads in progress by (cache path, repository): a request joins only a download for
    /// its own repository, so an upstream's answer for one repository (a 404, a refusal) is
    /// never handed to a client of another.
    inflight: Mutex<HashMap<(PathBuf, String), InFlight>>,
    /// The shim's counters (`cache_stale_served`).
    metrics: Arc<Metrics>,
    pending: Arc<Pending>,
}

/// Entry writes still running off the request path (see [`Cache::flush`]).
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

impl Cache {
    /// `None` without `[cache] path`.
    pub fn new(
        config: &CacheConfig,
        pool: PgPool,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Option<Arc<Self>>> {
        let Some(root) = &config.path else {
            return Ok(None);
        };
        std::fs::create_dir_all(root.join("tmp"))?;
        remove_stale_temp_files(&root.join("tmp"), std::time::SystemTime::now() - STALE_TEMP);
        Ok(Some(Arc::new(Self {
            root: root.clone(),
            offline: config.offline,
            tag_ttl: config.tag_ttl.0,
            revalidate_timeout: config.revalidate_timeout,
            pool,
            inflight: Mutex::new(HashMap::new()),
            metrics,
            pending: Arc::default(),
        })))
    }

    /// Waits until every cache entry recorded so far is in the database (requests record them
    /// off their path; a short-lived process such as `shimmer preload` must wait before it exits).
    pub async fn flush(&self) {
        loop {
            let idle = self.pending.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.pending.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    fn path(&self, upstream: &str, kind: &str, digest: &str) -> Option<PathBuf> {
        content_path(&self.root, upstream, kind, digest)
    }

    /// A fresh temp file for the content at `path` (a [`content_path`], so its name is hex),
    /// unique across the processes that may share the directory.
    fn temp_for(&self, path: &Path, prefix: &str) -> PathBuf {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("x");
        self.root.join("tmp").join(format!(
            "{prefix}{name}-{}-{:x}",
            std::process::id(),
            rand_suffix()
        ))
    }

    fn touch(&self, upstream: &str, digest: &str, repo: &str, media_type: Option<&str>, size: u64) {
        let (pool, up, d, r, m) = (
            self.pool.clone(),
            upstream.to_owned(),
            digest.to_owned(),
            repo.to_owned(),
            media_type.map(str::to_owned),
        );
        let pending = self.pending.clone();
        pending.count.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Err(error) =
                shimmer_store::cache::touch(&pool, &up, &d, &r, m.as_deref(), size as i64).await
            {
                tracing::debug!(%error, "cache entry not recorded");
            }
            if pending.count.fetch_sub(1, Ordering::SeqCst) == 1 {
                pending.idle.notify_waiters();
            }
        });
    }
}

/// Where `digest` of `upstream` lives under `root`: only for a `sha256:` digest of exactly 64
/// lowercase hex and an upstream name that is one plain path component. Digests and names come
/// from requests, upstream manifests and imported metadata; nothing else may become a path.
pub(crate) fn content_path(
    root: &Path,
    upstream: &str,
    kind: &str,
    digest: &str,
) -> Option<PathBuf> {
    let hex = digest.strip_prefix("sha256:")?;
    let hex_ok = hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let name_ok = !upstream.is_empty()
        && !matches!(upstream, "." | ".." | "tmp")
        && !upstream.contains(['/', '\\', '\0']);
    (hex_ok && name_ok).then(|| root.join(upstream).join(kind).join("sha256").join(hex))
}

/// Removes the temp files in `tmp` last written before `before`: downloads a crashed or killed
/// process left behind.
fn remove_stale_temp_files(tmp: &Path, before: std::time::SystemTime) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let mut removed = 0usize;
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .ok()
            .filter(std::fs::Metadata::is_file)
            .and_then(|m| m.modified().ok())
            .is_some_and(|m| m < before);
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed stale cache temp files");
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ N
        .fetch_add(1, Ordering::Relaxed)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::content_path;

    #[test]
    fn only_plain_names_and_sha256_hex_become_cache_paths() {
        let root = Path::new("/cache");
        let hex = "a".repeat(64);
        assert_eq!(
            content_path(root, "up", "blobs", &format!("sha256:{hex}")),
            Some(root.join("up/blobs/sha256").join(&hex))
        );
        for digest in [
            "sha256:../../etc/passwd".to_owned(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:/{}", "a".repeat(63)),
            format!("sha512:{}", "a".repeat(128)),
            hex.clone(),
        ] {
            assert_eq!(content_path(root, "up", "blobs", &digest), None, "{digest}");
        }
        for upstream in ["", ".", "..", "tmp", "/etc", "a/../..", "a\\b"] {
            let digest = format!("sha256:{hex}");
            assert_eq!(
                content_path(root, upstream, "blobs", &digest),
                None,
                "{upstream}"
            );
        }
    }
}
