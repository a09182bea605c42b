//! Blobs through the cache: a hit served from disk, a miss downloaded once however many
//! clients ask at the same time (the first request starts the download into a temp file, every
//! request streams that file as it grows), the digest checked at the end before the file is
//! renamed into place.

use std::sync::Arc;

use super::*;

impl Cache {
    /// Answers a blob `GET`/`HEAD` from the cache, filling it on a miss. `None`: not for the cache
    /// (a ranged request or a `HEAD` on a miss), forward it as usual.
    ///
    /// Kept whole: one join-or-start decision for a download, under the lock that makes it atomic.
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
