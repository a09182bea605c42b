//! Manifests on their way through: a push read (bounded) and checked before the backend sees
//! it, every manifest pushed or pulled queued for the indexer, and blob redirects followed for
//! clients that cannot reach object storage.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use sha2::{Digest, Sha256, Sha512};
use shimmer_registry::{ErrorCode, redirect};
use shimmer_store::jobs::{JobSource, NewJob};
use url::Url;

use super::{DOCKER_CONTENT_DIGEST, Routed};
use crate::{
    AppState,
    backend::Backend,
    error::OciError,
    path::{self, Reference},
};

/// Reads a pushed manifest, bounded, and checks it before the backend sees it: the size, that
/// it is JSON, and that it matches the digest it is pushed under.
pub(super) async fn read_manifest(
    body: Body,
    headers: &HeaderMap,
    reference: &Reference,
    limit: u64,
) -> Result<(Bytes, String), OciError> {
    let too_large = || {
        OciError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::SizeInvalid,
            format!("manifest is larger than the {limit} bytes this registry accepts"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = Limited::new(body, limit as usize)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                OciError::manifest_invalid("could not read the manifest body")
            }
        })?
        .to_bytes();
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
        return Err(OciError::manifest_invalid("manifest is not valid JSON"));
    }
    let sha256 = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    if let Reference::Digest(d) = reference {
        let actual = match d.split_once(':').map(|(alg, _)| alg) {
            Some("sha256") => Some(sha256.clone()),
            Some("sha512") => Some(format!("sha512:{}", hex::encode(Sha512::digest(&bytes)))),
            _ => None,
        };
        if actual.as_ref().is_some_and(|a| a != d) {
            return Err(OciError::digest_invalid(d));
        }
        return Ok((bytes, d.clone()));
    }
    Ok((bytes, sha256))
}

/// Queues the manifest of a successful push, or of a pull the store may not know.
pub(super) fn enqueue(
    state: &AppState,
    routed: &Routed,
    reference: &Reference,
    parts: &http::request::Parts,
    resp: &http::Response<Body>,
    pushed: Option<String>,
) {
    let Some((name, _)) = &routed.repo else {
        return;
    };
    // A referrers fallback index a client keeps itself is no version of anything.
    if shimmer_registry::is_fallback_tag(reference.as_str()) {
        return;
    }
    let header_str = |h: &HeaderMap, n: &HeaderName| -> Option<String> {
        h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned)
    };
    let job = |digest: String, media_type: Option<String>, source| NewJob {
        backend: routed.backend.name.clone(),
        repository: name.clone(),
        reference: reference.as_str().to_owned(),
        digest,
        media_type,
        source,
        at: std::time::SystemTime::now(),
    };
    let status = resp.status();
    match (&parts.method, pushed) {
        (&Method::PUT, Some(digest)) if status.is_success() => {
            let media_type = header_str(&parts.headers, &header::CONTENT_TYPE);
            state
                .enqueuer
                .pushed(job(digest, media_type, JobSource::Push));
        }
        (&Method::GET | &Method::HEAD, _) if status == StatusCode::OK => {
            let digest = resp
                .headers()
                .get(&DOCKER_CONTENT_DIGEST)
                .and_then(|v| v.to_str().ok())
                .filter(|d| path::check_digest(d).is_ok())
                .or(match reference {
                    Reference::Digest(d) => Some(d.as_str()),
                    Reference::Tag(_) => None,
                });
            if let Some(digest) = digest {
                state
                    .enqueuer
                    .pulled(&routed.backend.name, name, digest, || {
                        let media_type = header_str(resp.headers(), &header::CONTENT_TYPE);
                        job(digest.to_owned(), media_type, JobSource::Pull)
                    });
            }
        }
        _ => {}
    }
}

/// Follows a backend's blob redirect (to object storage or a CDN) for clients that cannot reach
/// it ([`shimmer_registry::redirect`]: bounded, never with credentials). Only the client's
/// headers that shape the answer go along.
pub(super) async fn follow_redirects(
    backend: &Backend,
    resp: http::Response<Body>,
    url: &Url,
    method: &Method,
    client_headers: &HeaderMap,
    digest: &str,
) -> Result<http::Response<Body>, String> {
    let Some(next) = redirect::location(resp.status(), resp.headers(), url) else {
        return Ok(resp);
    };
    let mut headers = HeaderMap::new();
    for name in [
        header::RANGE,
        header::ACCEPT,
        header::IF_NONE_MATCH,
        header::IF_RANGE,
    ] {
        for v in client_headers.get_all(&name) {
            headers.append(name.clone(), v.clone());
        }
    }
    let followed = redirect::follow(&backend.conn, method, next, &headers)
        .await
        .map_err(|e| e.to_string())?;
    let mut resp = http::Response::from(followed).map(Body::new);
    if resp.status().is_success()
        && !resp.headers().contains_key(&DOCKER_CONTENT_DIGEST)
        && let Ok(v) = HeaderValue::from_str(digest)
    {
        resp.headers_mut().insert(DOCKER_CONTENT_DIGEST, v);
    }
    Ok(resp)
}
