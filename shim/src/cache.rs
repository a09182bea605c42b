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

use std::{
    collections::HashMap,
    io::SeekFrom,
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
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256, Sha512};
use shimmer_config::CacheConfig;
use shimmer_store::PgPool;
use tokio::{
    io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt},
    sync::{Notify, watch},
};

use crate::{
    error::OciError, forward::DOCKER_CONTENT_DIGEST, metrics::Metrics, upstream::Upstream,
};

const MANIFEST_LIMIT: usize = 4 * 1024 * 1024;
const READ_CHUNK: usize = 256 * 1024;
/// Most redirects a blob fill follows (object storage, a CDN).
const MAX_REDIRECTS: usize = 5;
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
                "BLOB_UNKNOWN",
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
                    "BLOB_UNKNOWN",
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
                    "UNAVAILABLE",
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
            up.connect_timeout + up.read_timeout,
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

    /// Answers a manifest `GET`/`HEAD` from the cache, filling it on a miss and revalidating
    /// tags after the TTL. An unreachable or failing upstream is answered from the cache.
    ///
    /// The cache holds what the upstream serves for [`MANIFEST_ACCEPT`]. A client whose
    /// `Accept` names types but not the cached one is answered past the cache, with what the
    /// upstream negotiates for it (uncached). Digests other than `sha256:` are verified and
    /// passed through uncached (the cache's layout has no place for them, and a digest is
    /// never a tag).
    pub async fn manifest(
        &self,
        up: &Upstream,
        repo: &str,
        reference: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Response, OciError> {
        let is_digest = reference.contains(':');
        if is_digest
            && self
                .path(&up.backend.name, "manifests", reference)
                .is_none()
        {
            if self.offline {
                return Err(manifest_unknown());
            }
            return self
                .pass_through(up, repo, reference, method, headers)
                .await;
        }
        let resp = if is_digest {
            self.digest_manifest(up, repo, reference, method).await?
        } else {
            self.tag_manifest(up, repo, reference, method).await?
        };
        let media_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if is_digest || self.offline || accepts(headers, media_type) {
            return Ok(resp);
        }
        self.pass_through(up, repo, reference, method, headers)
            .await
    }

    /// Fetches a manifest with the client's own `Accept` and answers with it, storing nothing.
    async fn pass_through(
        &self,
        up: &Upstream,
        repo: &str,
        reference: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Response, OciError> {
        let (bytes, media_type) = self
            .fetch_manifest(up, repo, reference, Some(headers))
            .await?;
        let digest = if reference.contains(':') {
            reference.to_owned()
        } else {
            format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))
        };
        Ok(manifest_response(
            &digest,
            media_type.as_deref(),
            bytes,
            method,
        ))
    }

    async fn digest_manifest(
        &self,
        up: &Upstream,
        repo: &str,
        digest: &str,
        method: &Method,
    ) -> Result<Response, OciError> {
        let upstream = up.backend.name.as_str();
        if let Some(r) = self.cached_manifest(upstream, repo, digest, method).await {
            return Ok(r);
        }
        if self.offline {
            return Err(manifest_unknown());
        }
        let (bytes, media_type) = self.fetch_manifest(up, repo, digest, None).await?;
        Ok(self
            .store_and_answer(upstream, repo, digest, bytes, media_type, method)
            .await)
    }

    async fn tag_manifest(
        &self,
        up: &Upstream,
        repo: &str,
        reference: &str,
        method: &Method,
    ) -> Result<Response, OciError> {
        let upstream = up.backend.name.as_str();
        let unknown = manifest_unknown;

        let cached = shimmer_store::cache::tag(&self.pool, upstream, repo, reference)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "cache tags unavailable");
                None
            });
        let fresh = cached.as_ref().is_some_and(|c| {
            self.offline
                || self
                    .tag_ttl
                    .is_none_or(|ttl| c.age_secs < ttl.as_secs_f64())
        });
        if fresh
            && let Some(c) = &cached
            && let Some(r) = self
                .cached_manifest(upstream, repo, &c.digest, method)
                .await
        {
            return Ok(r);
        }
        if self.offline {
            return Err(unknown());
        }
        let stale = match cached {
            Some(c) if self.has_manifest(upstream, &c.digest).await => c,
            // Nothing to compare with or fall back on: fetch the tag.
            _ => {
                let fetched = self.fetch_manifest(up, repo, reference, None).await?;
                return Ok(self
                    .store_tag(upstream, repo, reference, fetched, method)
                    .await);
            }
        };
        // Revalidate with a HEAD (registries count GETs against rate limits), bounded so a
        // slow upstream cannot stall the pull for its whole read timeout.
        let head = tokio::time::timeout(
            self.revalidate_timeout,
            self.upstream_send(up, Method::HEAD, repo, reference, None),
        )
        .await;
        let failure = match head {
            Ok(Ok(r)) if r.status() == StatusCode::OK => {
                let digest = r
                    .headers()
                    .get(&DOCKER_CONTENT_DIGEST)
                    .and_then(|v| v.to_str().ok());
                match digest {
                    Some(d) if d == stale.digest => {
                        let _ = shimmer_store::cache::set_tag(
                            &self.pool,
                            upstream,
                            repo,
                            reference,
                            &stale.digest,
                            stale.media_type.as_deref(),
                        )
                        .await;
                        if let Some(r) = self
                            .cached_manifest(upstream, repo, &stale.digest, method)
                            .await
                        {
                            return Ok(r);
                        }
                        None
                    }
                    Some(_) => None,
                    None => {
                        tracing::debug!(%upstream, %repo, %reference, "HEAD without Docker-Content-Digest; revalidating with a GET");
                        None
                    }
                }
            }
            Ok(Ok(r)) if r.status() == StatusCode::NOT_FOUND => return Err(unknown()),
            Ok(Ok(r)) => Some(format!("upstream answered {}", r.status())),
            Ok(Err(error)) => Some(format!("upstream unreachable: {error}")),
            Err(_) => Some(format!(
                "no answer within revalidate_timeout ({:?})",
                self.revalidate_timeout
            )),
        };
        if let Some(reason) = failure {
            return self
                .serve_stale(upstream, repo, reference, &stale.digest, method, &reason)
                .await;
        }
        // The tag moved, or the HEAD did not say: the manifest by tag decides.
        match tokio::time::timeout(
            self.revalidate_timeout,
            self.fetch_manifest(up, repo, reference, None),
        )
        .await
        {
            Ok(Ok(fetched)) => Ok(self
                .store_tag(upstream, repo, reference, fetched, method)
                .await),
            Ok(Err(e)) if e.status == StatusCode::NOT_FOUND => Err(e),
            Ok(Err(e)) => {
                self.serve_stale(upstream, repo, reference, &stale.digest, method, &e.message)
                    .await
            }
            Err(_) => {
                let reason = format!(
                    "no manifest within revalidate_timeout ({:?})",
                    self.revalidate_timeout
                );
                self.serve_stale(upstream, repo, reference, &stale.digest, method, &reason)
                    .await
            }
        }
    }

    /// Answers with the cached copy of a tag the upstream could not revalidate; logged and
    /// counted.
    async fn serve_stale(
        &self,
        upstream: &str,
        repo: &str,
        reference: &str,
        digest: &str,
        method: &Method,
        reason: &str,
    ) -> Result<Response, OciError> {
        Metrics::inc(&self.metrics.cache_stale_served);
        tracing::warn!(%upstream, %repo, %reference, %digest, %reason, "cannot revalidate the tag; serving the cached copy");
        self.cached_manifest(upstream, repo, digest, method)
            .await
            .ok_or_else(|| OciError::backend_unavailable(upstream))
    }

    /// Records what `tag` resolves to now and answers with it (storing it by digest).
    async fn store_tag(
        &self,
        upstream: &str,
        repo: &str,
        tag: &str,
        (bytes, media_type): (Bytes, Option<String>),
        method: &Method,
    ) -> Response {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let _ = shimmer_store::cache::set_tag(
            &self.pool,
            upstream,
            repo,
            tag,
            &digest,
            media_type.as_deref(),
        )
        .await;
        self.store_and_answer(upstream, repo, &digest, bytes, media_type, method)
            .await
    }

    async fn has_manifest(&self, upstream: &str, digest: &str) -> bool {
        match self.path(upstream, "manifests", digest) {
            Some(p) => tokio::fs::try_exists(p).await.unwrap_or(false),
            None => false,
        }
    }

    /// Sends a manifest request upstream with its credentials (token exchange included), with
    /// the client's `Accept` (`client`) or else every type the cache keeps.
    async fn upstream_send(
        &self,
        up: &Upstream,
        method: Method,
        repo: &str,
        reference: &str,
        client: Option<&HeaderMap>,
    ) -> reqwest::Result<reqwest::Response> {
        let url = up
            .backend
            .url(&format!("/v2/{repo}/manifests/{reference}"), None);
        up.send(repo, || {
            let mut req = up.backend.client.request(method.clone(), url.clone());
            match client {
                Some(headers) => {
                    for v in headers.get_all(header::ACCEPT) {
                        req = req.header(header::ACCEPT, v.clone());
                    }
                }
                None => req = req.header(header::ACCEPT, MANIFEST_ACCEPT),
            }
            req
        })
        .await
    }

    /// A manifest from the upstream, checked against `reference` when that is a digest.
    async fn fetch_manifest(
        &self,
        up: &Upstream,
        repo: &str,
        reference: &str,
        client: Option<&HeaderMap>,
    ) -> Result<(Bytes, Option<String>), OciError> {
        let name = &up.backend.name;
        let resp = self
            .upstream_send(up, Method::GET, repo, reference, client)
            .await
            .map_err(|error| {
                tracing::warn!(upstream = %name, %error, "upstream unreachable");
                OciError::backend_unavailable(name)
            })?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => {
                return Err(OciError::new(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                ));
            }
            s @ (StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
            | StatusCode::TOO_MANY_REQUESTS) => {
                tracing::warn!(upstream = %name, status = %s, "upstream refused a manifest GET");
                return Err(OciError::new(
                    s,
                    refusal_code(s),
                    format!("upstream {name:?} answered {s}"),
                ));
            }
            s => {
                tracing::warn!(upstream = %name, status = %s, "upstream failed a manifest GET");
                return Err(OciError::backend_unavailable(name));
            }
        }
        let media_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if resp
            .content_length()
            .is_some_and(|n| n > MANIFEST_LIMIT as u64)
        {
            return Err(OciError::backend_unavailable(name));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|_| OciError::backend_unavailable(name))?;
        if bytes.len() > MANIFEST_LIMIT {
            return Err(OciError::backend_unavailable(name));
        }
        if let Some((algorithm, _)) = reference.split_once(':') {
            let actual = match algorithm {
                "sha256" => format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
                "sha512" => format!("sha512:{}", hex::encode(Sha512::digest(&bytes))),
                _ => format!("{algorithm}:(not computable)"),
            };
            if actual != reference {
                tracing::warn!(upstream = %name, %reference, %actual, "upstream manifest does not match its digest");
                return Err(OciError::backend_unavailable(name));
            }
        }
        Ok((bytes, media_type))
    }

    async fn store_and_answer(
        &self,
        upstream: &str,
        repo: &str,
        digest: &str,
        bytes: Bytes,
        media_type: Option<String>,
        method: &Method,
    ) -> Response {
        if let Some(path) = self.path(upstream, "manifests", digest) {
            let tmp = self.temp_for(&path, "m-");
            let stored = async {
                tokio::fs::create_dir_all(path.parent().expect("cache paths have parents")).await?;
                tokio::fs::write(&tmp, &bytes).await?;
                tokio::fs::write(
                    path.with_extension("type"),
                    media_type.as_deref().unwrap_or(""),
                )
                .await?;
                tokio::fs::rename(&tmp, &path).await
            }
            .await;
            // Recorded only once on disk: an entry without its file would count against
            // `max_bytes` and list as cached.
            match stored {
                Ok(()) => self.touch(
                    upstream,
                    digest,
                    repo,
                    media_type.as_deref(),
                    bytes.len() as u64,
                ),
                Err(error) => {
                    let _ = tokio::fs::remove_file(&tmp).await;
                    tracing::warn!(%error, "manifest not cached");
                }
            }
        }
        manifest_response(digest, media_type.as_deref(), bytes, method)
    }

    async fn cached_manifest(
        &self,
        upstream: &str,
        repo: &str,
        digest: &str,
        method: &Method,
    ) -> Option<Response> {
        let path = self.path(upstream, "manifests", digest)?;
        let bytes = tokio::fs::read(&path).await.ok()?;
        let media_type = tokio::fs::read_to_string(path.with_extension("type"))
            .await
            .ok()
            .filter(|m| !m.is_empty());
        self.touch(
            upstream,
            digest,
            repo,
            media_type.as_deref(),
            bytes.len() as u64,
        );
        Some(manifest_response(
            digest,
            media_type.as_deref(),
            Bytes::from(bytes),
            method,
        ))
    }
}

/// What one eviction pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub entries: usize,
    pub bytes: u64,
}

impl Cache {
    /// Runs [`Cache::evict_once`] every `interval`, forever.
    pub fn spawn_eviction(
        self: &Arc<Self>,
        max_bytes: u64,
        max_age: Option<Duration>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                match this.evict_once(max_bytes, max_age).await {
                    Ok(e) if e.entries > 0 => {
                        tracing::info!(entries = e.entries, bytes = e.bytes, "cache evicted")
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "cache eviction failed"),
                }
            }
        })
    }

    /// Removes what is older than `max_age`, then the least recently used content until the
    /// cache holds at most `max_bytes` (0: no limit), in last-use order. Removing a manifest
    /// removes the blobs only it needed; a blob a kept manifest refers to is never removed.
    pub async fn evict_once(
        &self,
        max_bytes: u64,
        max_age: Option<Duration>,
    ) -> Result<Evicted, sqlx::Error> {
        use std::collections::{HashMap, HashSet};
        let entries = shimmer_store::cache::entries(&self.pool).await?;
        let key = |e: &shimmer_store::cache::Entry| (e.upstream.clone(), e.digest.clone());
        let size: HashMap<_, u64> = entries
            .iter()
            .map(|e| (key(e), e.size_bytes.max(0) as u64))
            .collect();
        // What each cached manifest refers to, and how many kept manifests need each blob.
        let mut refs: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
        for e in &entries {
            if let Some(r) = self.references(e).await {
                refs.insert(key(e), r);
            }
        }
        let mut needed: HashMap<(String, String), usize> = HashMap::new();
        for r in refs.values().flatten() {
            *needed.entry(r.clone()).or_default() += 1;
        }
        let mut total: u64 = size.values().sum();
        let mut gone: HashSet<(String, String)> = HashSet::new();
        for e in &entries {
            let k = key(e);
            if gone.contains(&k) {
                continue;
            }
            let too_old = max_age.is_some_and(|age| e.idle_secs > age.as_secs_f64());
            let over = max_bytes > 0 && total > max_bytes;
            if !(too_old || over) || needed.get(&k).copied().unwrap_or(0) > 0 {
                continue;
            }
            gone.insert(k.clone());
            total = total.saturating_sub(size[&k]);
            for blob in refs.get(&k).into_iter().flatten() {
                let n = needed.entry(blob.clone()).or_default();
                *n = n.saturating_sub(1);
                if *n == 0 && size.contains_key(blob) && gone.insert(blob.clone()) {
                    total = total.saturating_sub(size[blob]);
                }
            }
        }
        let mut evicted = Evicted::default();
        for (upstream, digest) in gone {
            for kind in ["manifests", "blobs"] {
                if let Some(p) = self.path(&upstream, kind, &digest) {
                    let _ = tokio::fs::remove_file(p.with_extension("type")).await;
                    let _ = tokio::fs::remove_file(&p).await;
                }
            }
            shimmer_store::cache::forget(&self.pool, &upstream, &digest).await?;
            evicted.entries += 1;
            evicted.bytes += size[&(upstream, digest)];
        }
        Ok(evicted)
    }

    /// The (upstream, digest) pairs a cached manifest refers to; `None` if `e` is no manifest.
    async fn references(&self, e: &shimmer_store::cache::Entry) -> Option<Vec<(String, String)>> {
        let path = self.path(&e.upstream, "manifests", &e.digest)?;
        let bytes = tokio::fs::read(&path).await.ok()?;
        let v = serde_json::from_slice::<serde_json::Value>(&bytes).ok()?;
        let descriptors = std::iter::once(&v["config"])
            .chain(v["layers"].as_array().into_iter().flatten())
            .chain(v["manifests"].as_array().into_iter().flatten());
        Some(
            descriptors
                .filter_map(|d| Some((e.upstream.clone(), d["digest"].as_str()?.to_owned())))
                .collect(),
        )
    }
}

fn manifest_response(
    digest: &str,
    media_type: Option<&str>,
    bytes: Bytes,
    method: &Method,
) -> Response {
    let len = bytes.len();
    let mut resp = Response::new(if *method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, len.into());
    if let Some(v) = media_type.and_then(|m| HeaderValue::from_str(m).ok()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(digest) {
        h.insert(DOCKER_CONTENT_DIGEST, v.clone());
        h.insert(header::ETAG, v);
    }
    resp
}

/// What a reader of a download needs to go on straight from the upstream when the cache
/// cannot keep the blob (a disk that fills up mid-download).
struct Resume {
    up: Arc<Upstream>,
    repo: String,
    digest: String,
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Streams a download as it grows: reads what has been written, waits for more, ends when it is
/// done, and fails (aborting the client's transfer) if the download fails. If the cache could
/// not write the download, the rest comes straight from the upstream (a `Range` from where the
/// client is), uncached.
fn tail(
    tmp: PathBuf,
    done_path: PathBuf,
    progress: watch::Receiver<Fill>,
    resume: Resume,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    struct State {
        tmp: PathBuf,
        done_path: PathBuf,
        progress: watch::Receiver<Fill>,
        file: Option<tokio::fs::File>,
        pos: u64,
        finished: bool,
        resume: Resume,
        direct: Option<ByteStream>,
    }
    let state = State {
        tmp,
        done_path,
        progress,
        file: None,
        pos: 0,
        finished: false,
        resume,
        direct: None,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        if let Some(direct) = st.direct.as_mut() {
            let next = direct.next().await;
            st.finished = !matches!(next, Some(Ok(_)));
            return next.map(|item| (item, st));
        }
        loop {
            let fill = st.progress.borrow_and_update().clone();
            let available = match &fill {
                // The last byte is held back until the digest is checked, so a client that
                // counts bytes against Content-Length cannot mistake a corrupt blob for a whole one.
                Fill::Streaming { written, .. } => written.saturating_sub(1),
                Fill::Done { total } => *total,
                Fill::Failed {
                    local: true,
                    message,
                    ..
                } => {
                    tracing::warn!(upstream = %st.resume.up.backend.name, digest = %st.resume.digest,
                        %message, "blob not cached; sending the rest straight from the upstream");
                    match resume_direct(&st.resume, st.pos).await {
                        Ok(mut direct) => {
                            let next = direct.next().await;
                            st.finished = !matches!(next, Some(Ok(_)));
                            st.direct = Some(direct);
                            return next.map(|item| (item, st));
                        }
                        Err(message) => {
                            st.finished = true;
                            return Some((Err(std::io::Error::other(message)), st));
                        }
                    }
                }
                Fill::Failed { message, .. } => {
                    st.finished = true;
                    return Some((Err(std::io::Error::other(message.clone())), st));
                }
                Fill::Connecting => 0,
            };
            if st.pos < available {
                if st.file.is_none() {
                    // The download may have been renamed into place already.
                    let opened = match tokio::fs::File::open(&st.tmp).await {
                        Ok(f) => Ok(f),
                        Err(_) => tokio::fs::File::open(&st.done_path).await,
                    };
                    match opened {
                        Ok(mut f) => {
                            if let Err(e) = f.seek(SeekFrom::Start(st.pos)).await {
                                st.finished = true;
                                return Some((Err(e), st));
                            }
                            st.file = Some(f);
                        }
                        Err(e) => {
                            st.finished = true;
                            return Some((Err(e), st));
                        }
                    }
                }
                let want = (available - st.pos).min(READ_CHUNK as u64) as usize;
                let mut buf = vec![0u8; want];
                let file = st.file.as_mut().expect("opened above");
                match file.read(&mut buf).await {
                    Ok(0) => {}
                    Ok(n) => {
                        buf.truncate(n);
                        st.pos += n as u64;
                        return Some((Ok(Bytes::from(buf)), st));
                    }
                    Err(e) => {
                        st.finished = true;
                        return Some((Err(e), st));
                    }
                }
            }
            if matches!(fill, Fill::Done { .. }) && st.pos >= available {
                return None;
            }
            if st.progress.changed().await.is_err() {
                // The download task ended; its last state decides (a local failure resumes).
                let last = st.progress.borrow().clone();
                if !matches!(last, Fill::Done { .. } | Fill::Failed { local: true, .. }) {
                    st.finished = true;
                    return Some((Err(std::io::Error::other("download ended early")), st));
                }
            }
        }
    })
}

/// The blob from byte `from` on, straight from the upstream (asked with a `Range`; an upstream
/// that ignores it has the bytes before `from` skipped).
async fn resume_direct(r: &Resume, from: u64) -> Result<ByteStream, String> {
    let resp = tokio::time::timeout(
        r.up.connect_timeout + r.up.read_timeout,
        open_blob(&r.up, &r.repo, &r.digest, from),
    )
    .await
    .map_err(|_| "no answer from the upstream in time".to_owned())??;
    let mut skip = match resp.status() {
        StatusCode::PARTIAL_CONTENT if from > 0 => 0,
        StatusCode::OK => from,
        s => return Err(format!("upstream answered {s} to the rest of the blob")),
    };
    Ok(Box::pin(resp.bytes_stream().filter_map(move |chunk| {
        let out = match chunk {
            Ok(b) if skip >= b.len() as u64 => {
                skip -= b.len() as u64;
                None
            }
            Ok(b) => {
                let rest = b.slice(skip as usize..);
                skip = 0;
                Some(Ok(rest))
            }
            Err(e) => Some(Err(std::io::Error::other(e))),
        };
        std::future::ready(out)
    })))
}

/// Sends a blob `GET` upstream (with a `Range` from `from` when it is not 0) and follows its
/// redirects, at most [`MAX_REDIRECTS`], with the upstream's redirect client: object storage
/// gets no credentials.
async fn open_blob(
    up: &Upstream,
    repo: &str,
    digest: &str,
    from: u64,
) -> Result<reqwest::Response, String> {
    let range = (from > 0).then(|| format!("bytes={from}-"));
    let with_range = |mut req: reqwest::RequestBuilder| {
        if let Some(r) = &range {
            req = req.header(header::RANGE, r);
        }
        req
    };
    let url = up.backend.url(&format!("/v2/{repo}/blobs/{digest}"), None);
    let mut resp = up
        .send(repo, || with_range(up.backend.client.get(url.clone())))
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..MAX_REDIRECTS {
        if !resp.status().is_redirection() {
            return Ok(resp);
        }
        let next = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| resp.url().join(l).ok())
            .ok_or("redirect without a location")?;
        resp = with_range(up.redirect_client.get(next))
            .send()
            .await
            .map_err(|e| e.to_string())?;
    }
    if resp.status().is_redirection() {
        return Err("too many redirects".into());
    }
    Ok(resp)
}

/// At most `limit` bytes of an answer's body (an upstream's error envelope).
async fn bounded_body(resp: reqwest::Response, limit: usize) -> Bytes {
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]);
        if out.len() >= limit {
            break;
        }
    }
    Bytes::from(out)
}

/// The OCI error code of an upstream's refusal.
fn refusal_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::TOO_MANY_REQUESTS => "TOOMANYREQUESTS",
        _ => "DENIED",
    }
}

/// An upstream's refusal of a blob (401, 403, 429) passed on as it came, its OCI error body
/// included, so a client sees `TOOMANYREQUESTS` or `DENIED` rather than a gateway error. No
/// `WWW-Authenticate` goes along: the client cannot answer a challenge meant for the shim.
fn upstream_refusal(
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
) -> Response {
    if body.is_empty() {
        return OciError::new(
            status,
            refusal_code(status),
            format!("upstream answered {status}"),
        )
        .into_response();
    }
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    if let Some(v) = content_type {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// The spec's 404 for a manifest.
fn manifest_unknown() -> OciError {
    OciError::new(
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
        "manifest unknown",
    )
}

/// Whether a client's `Accept` admits `media_type`. No `Accept` (or no type to compare) admits
/// anything; otherwise the type, `*/*` or `application/*` must be named.
fn accepts(headers: &HeaderMap, media_type: Option<&str>) -> bool {
    let Some(media_type) = media_type else {
        return true;
    };
    let mut named = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .filter(|t| !t.is_empty())
        .peekable();
    if named.peek().is_none() {
        return true;
    }
    named.any(|t| t == "*/*" || t == "application/*" || t.eq_ignore_ascii_case(media_type.trim()))
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

/// Serves a cached file, honouring one `Range: bytes=a-b` (or `a-`, `-n`); any other `Range`
/// is ignored and the whole file sent (RFC 9110, 14.2).
async fn serve_file(
    path: &Path,
    size: u64,
    headers: &HeaderMap,
    method: &Method,
    digest: &str,
    content_type: &'static str,
) -> Result<Response, OciError> {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Range::Ignored, |r| parse_range(r, size));
    let (status, start, len) = match range {
        Range::Ignored => (StatusCode::OK, 0, size),
        Range::Bytes(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Range::Unsatisfiable => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            return Ok(resp);
        }
    };
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|_| OciError::not_found("cached blob vanished"))?;
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|_| OciError::not_found("cached blob vanished"))?;
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(len),
            READ_CHUNK,
        ))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(digest) {
        h.insert(DOCKER_CONTENT_DIGEST, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1))
                .expect("ascii"),
        );
    }
    Ok(resp)
}

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// First and last byte, inclusive.
    Bytes(u64, u64),
    /// One byte range that starts past the end: 416.
    Unsatisfiable,
    /// Several ranges, another unit, or not parseable: the whole file is sent (200), as RFC
    /// 9110 lets a server that does not support them do.
    Ignored,
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against `size`.
fn parse_range(value: &str, size: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Ignored;
    };
    let Some((a, b)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return Range::Ignored;
    };
    let number = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => match number(n) {
            Some(0) => return Range::Unsatisfiable,
            Some(n) if size > 0 => (size.saturating_sub(n), size - 1),
            Some(_) => return Range::Unsatisfiable,
            None => return Range::Ignored,
        },
        (a, "") => match number(a) {
            Some(a) => (a, u64::MAX),
            None => return Range::Ignored,
        },
        (a, b) => match (number(a), number(b)) {
            (Some(a), Some(b)) if a <= b => (a, b),
            _ => return Range::Ignored,
        },
    };
    if start >= size {
        return Range::Unsatisfiable;
    }
    Range::Bytes(start, end.min(size - 1))
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

    use super::{Range, accepts, content_path, parse_range};

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Range::Bytes(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Range::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Range::Bytes(90, 99));
        assert_eq!(parse_range("bytes=95-200", 100), Range::Bytes(95, 99));
        assert_eq!(parse_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), Range::Unsatisfiable);
        // Several ranges, other units and nonsense are ignored (200 with the whole file).
        assert_eq!(parse_range("bytes=5-2", 100), Range::Ignored);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), Range::Ignored);
        assert_eq!(parse_range("items=0-1", 100), Range::Ignored);
        assert_eq!(parse_range("bytes=x-", 100), Range::Ignored);
    }

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

    #[test]
    fn accept_is_matched_by_type_ignoring_parameters() {
        let h = |v: &str| {
            let mut m = axum::http::HeaderMap::new();
            m.insert(axum::http::header::ACCEPT, v.parse().unwrap());
            m
        };
        let oci = "application/vnd.oci.image.manifest.v1+json";
        assert!(accepts(&axum::http::HeaderMap::new(), Some(oci)));
        assert!(accepts(&h(&format!("text/plain, {oci};q=0.5")), Some(oci)));
        assert!(accepts(&h("*/*"), Some(oci)));
        assert!(!accepts(
            &h("application/vnd.docker.distribution.manifest.v2+json"),
            Some(oci)
        ));
        assert!(accepts(&h("text/plain"), None));
    }
}
