//! Asking an upstream for a manifest and keeping what it answers: the request (with the
//! upstream's credentials), the size-capped and digest-verified read, and the records and files
//! of the cache. [`super::manifest`] decides when; this is how.

use axum::{
    http::{HeaderMap, Method, StatusCode, header},
    response::Response,
};
use bytes::Bytes;
use sha2::{Digest, Sha256, Sha512};
use shimmer_registry::ErrorCode;

use super::{Cache, MANIFEST_ACCEPT, MANIFEST_LIMIT, manifest::manifest_response, refusal_code};
use crate::{error::OciError, upstream::Upstream};

impl Cache {
    /// Records what `tag` resolved to when the upstream was asked at `asked_at` and answers
    /// with it (storing it by digest).
    pub(super) async fn store_tag(
        &self,
        (upstream, repo, tag): (&str, &str, &str),
        (bytes, media_type): (Bytes, Option<String>),
        asked_at: f64,
        method: &Method,
    ) -> Response {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let _ = shimmer_store::cache::set_tag(
            &self.pool,
            upstream,
            repo,
            tag,
            (&digest, media_type.as_deref()),
            asked_at,
        )
        .await;
        self.store_and_answer(upstream, repo, &digest, bytes, media_type, method)
            .await
    }

    pub(super) async fn has_manifest(&self, upstream: &str, digest: &str) -> bool {
        match self.path(upstream, "manifests", digest) {
            Some(p) => tokio::fs::try_exists(p).await.unwrap_or(false),
            None => false,
        }
    }

    /// Sends a manifest request upstream with its credentials (token exchange included), with
    /// the client's `Accept` (`client`) or else every type the cache keeps.
    pub(super) async fn upstream_send(
        &self,
        up: &Upstream,
        method: Method,
        repo: &str,
        reference: &str,
        client: Option<&HeaderMap>,
    ) -> reqwest::Result<reqwest::Response> {
        let url = up
            .backend
            .endpoint()
            .url(&format!("/v2/{repo}/manifests/{reference}"), None);
        up.client
            .send(repo, |http| {
                let mut req = http.request(method.clone(), url.clone());
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
    pub(super) async fn fetch_manifest(
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
                    ErrorCode::ManifestUnknown,
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

    pub(super) async fn store_and_answer(
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
}
