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

    /// Answers a blob `GET`/`HEAD` from the cache, filling it on a miss. `None`: not for the cache
    /// (a ranged request or a `HEAD` on a miss), forward it as usual.
    pub async fn blob(
        self: &Arc<Self>,
        up: &Arc<Upstream>,
        repo: &str,
        digest: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Option<Response>, OciError> {
        let Some(path) = self.path(&up.backend.name, "blobs", digest) else {
            return Ok(None);
        };
        if let Ok(meta) = tokio::fs::metadata(&path).await {
            self.touch(&up.backend.name, digest, repo, None, meta.len());
            return serve_file(
                &path,
                meta.len(),
                headers,
                method,
                digest,
                "application/octet-stream",
            )
            .await
            .map(Some);
        }
        if self.offline {
            return Err(OciError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::BlobUnknown,
                "blob is not cached and this registry is offline",
            ));
        }
        if *method != Method::GET || headers.contains_key(header::RANGE) {
            return Ok(None);
        }
        let (tmp, mut progress) = self.join_or_start(up, repo, digest, &path);
        let fill = progress
            .wait_for(|f| !matches!(f, Fill::Connecting))
            .await
            .map(|f| f.clone())
            .unwrap_or_else(|_| Fill::failed("download ended"));
        let total = match fill {
            Fill::Failed {
                status: Some(StatusCode::NOT_FOUND),
                ..
            } => {
                return Err(OciError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::BlobUnknown,
                    "blob unknown to the upstream",
                ));
            }
            // The upstream serves the blob; only the cache cannot keep it: the request passes
            // through to the upstream, uncached.
            Fill::Failed {
                local: true,
                message,
                ..
            } => {
                tracing::warn!(upstream = %up.backend.name, %digest, %message, "blob not cached; passing it through");
                return Ok(None);
            }
            Fill::Failed {
                status: Some(status),
                answer: Some((content_type, body)),
                ..
            } => return Ok(Some(upstream_refusal(status, content_type, body))),
            // Failed before the first byte went out (a small blob can be fetched, found corrupt
            // and dropped before this request looks): the client gets an error, not the bytes.
            Fill::Failed { message, .. } => {
                tracing::warn!(upstream = %up.backend.name, %digest, %message, "blob fill failed");
                return Err(OciError::new(
                    StatusCode::BAD_GATEWAY,
                    ErrorCode::Unavailable,
                    format!(
                        "upstream {:?} did not deliver a verified copy of {digest}",
                        up.backend.name
                    ),
                ));
            }
            Fill::Streaming { total, .. } => total,
            Fill::Done { total } => Some(total),
            Fill::Connecting => None,
        };
        let resume = Resume {
            up: up.clone(),
            repo: repo.to_owned(),
            digest: digest.to_owned(),
        };
        let mut resp = Response::new(Body::from_stream(tail(tmp, path, progress, resume)));
        let h = resp.headers_mut();
        if let Some(total) = total {
            h.insert(header::CONTENT_LENGTH, total.into());
        }
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Ok(v) = HeaderValue::from_str(digest) {
            h.insert(DOCKER_CONTENT_DIGEST, v);
        }
        Ok(Some(resp))
    }

    /// The download of `path` in progress, or a new one.
    fn join_or_start(
        self: &Arc<Self>,
        up: &Arc<Upstream>,
        repo: &str,
        digest: &str,
        path: &Path,
    ) -> (PathBuf, watch::Receiver<Fill>) {
        let key = (path.to_owned(), repo.to_owned());
        let mut inflight = self.inflight.lock().expect("inflight map poisoned");
        if let Some(f) = inflight.get(&key) {
            return (f.tmp.clone(), f.progress.clone());
        }
        let tmp = self.temp_for(path, "");
        let (tx, rx) = watch::channel(Fill::Connecting);
        inflight.insert(
            key.clone(),
            InFlight {
                tmp: tmp.clone(),
                progress: rx.clone(),
            },
        );
        let (this, up, repo, digest, path, t) = (
            self.clone(),
            up.clone(),
            repo.to_owned(),
            digest.to_owned(),
            path.to_owned(),
            tmp.clone(),
        );
        tokio::spawn(async move {
            let result = this.download(&up, &repo, &digest, &t, &path, &tx).await;
            if let Err(failed) = result {
                let _ = tokio::fs::remove_file(&t).await;
                tx.send_replace(failed);
            }
            this.inflight
                .lock()
                .expect("inflight map poisoned")
                .remove(&key);
        });
        (tmp, rx)
    }

    /// Fills `path` from the upstream through `tmp`. The answer's head (redirects included)
    /// must come within the upstream's `connect_timeout` + `read_timeout`, and the body never
    /// stalls longer than `read_timeout` (the clients' own timeouts), so a stalled upstream or
    /// object store fails the fill: every joined client is released with an error and the temp
    /// file is removed.
    async fn download(
        &self,
        up: &Upstream,
        repo: &str,
        digest: &str,
        tmp: &Path,
        path: &Path,
        tx: &watch::Sender<Fill>,
    ) -> Result<(), Fill> {
        let mut file = tokio::fs::File::create(tmp).await.map_err(Fill::local)?;
        let resp = tokio::time::timeout(
            up.client.conn().connect_timeout + up.client.conn().read_timeout,
            open_blob(up, repo, digest, 0),
        )
        .await
        .map_err(|_| Fill::failed("no answer from the upstream in time"))?
        .map_err(Fill::failed)?;
        let status = resp.status();
        if status != StatusCode::OK {
            let refused = matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
            );
            let answer = if refused {
                let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
                Some((content_type, bounded_body(resp, ERROR_BODY_LIMIT).await))
            } else {
                None
            };
            return Err(Fill::Failed {
                status: Some(status),
                message: format!("upstream answered {status}"),
                local: false,
                answer,
            });
        }
        let total = resp.content_length();
        tx.send_replace(Fill::Streaming { total, written: 0 });
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| Fill::failed(e.to_string()))?;
            file.write_all(&chunk).await.map_err(Fill::local)?;
            hasher.update(&chunk);
            written += chunk.len() as u64;
            tx.send_replace(Fill::Streaming { total, written });
        }
        file.flush().await.map_err(Fill::local)?;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest || total.is_some_and(|t| t != written) {
            return Err(Fill::failed(format!(
                "upstream sent {actual} ({written} bytes) for {digest}: not cached"
            )));
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(Fill::local)?;
        }
        tokio::fs::rename(tmp, path).await.map_err(Fill::local)?;
        self.touch(&up.backend.name, digest, repo, None, written);
        tx.send_replace(Fill::Done { total: written });
        Ok(())
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
