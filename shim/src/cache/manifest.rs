//! Manifests from the cache: by digest, by tag with revalidation after the TTL, and served
//! stale when the upstream cannot answer.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::Response,
};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use shimmer_registry::ErrorCode;

use super::Cache;
use crate::{
    error::OciError, forward::DOCKER_CONTENT_DIGEST, metrics::Metrics, upstream::Upstream,
};

impl Cache {
    /// Answers a manifest `GET`/`HEAD` from the cache, filling it on a miss and revalidating
    /// tags after the TTL. An unreachable or failing upstream is answered from the cache.
    ///
    /// The cache holds what the upstream serves for [`MANIFEST_ACCEPT`](super::MANIFEST_ACCEPT). A client whose
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

    /// Kept whole: one revalidation decision (fresh, stale, offline, moved upstream) read top to bottom.
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
                let asked_at = shimmer_store::unix_now();
                let fetched = self.fetch_manifest(up, repo, reference, None).await?;
                return Ok(self
                    .store_tag((upstream, repo, reference), fetched, asked_at, method)
                    .await);
            }
        };
        // Revalidate with a HEAD (registries count GETs against rate limits), bounded so a
        // slow upstream cannot stall the pull for its whole read timeout.
        let asked_at = shimmer_store::unix_now();
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
                            (&stale.digest, stale.media_type.as_deref()),
                            asked_at,
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
        let asked_at = shimmer_store::unix_now();
        match tokio::time::timeout(
            self.revalidate_timeout,
            self.fetch_manifest(up, repo, reference, None),
        )
        .await
        {
            Ok(Ok(fetched)) => Ok(self
                .store_tag((upstream, repo, reference), fetched, asked_at, method)
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

pub(super) fn manifest_response(
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

/// The spec's 404 for a manifest.
fn manifest_unknown() -> OciError {
    OciError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::ManifestUnknown,
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

#[cfg(test)]
mod tests {
    use super::accepts;

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
