//! Answers from the pull-through cache: a caching upstream's manifests and blobs, and a blob of
//! a backend with `cache = true` once the backend has authorised the client.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use shimmer_registry::ErrorCode;

use super::{
    Routed,
    headers::{backend_request, request_headers},
    target::local_answer,
};
use crate::{
    AppState,
    error::OciError,
    path::Endpoint,
    upstream::{self, Upstream},
};

/// A caching upstream's answer from the cache, errors included, naming the upstream it is about
/// (`OCI-Namespace`); `None` sends the request on.
pub(super) async fn mirror_answer(
    state: &AppState,
    up: &Arc<Upstream>,
    ns: &str,
    endpoint: &Endpoint,
    parts: &Parts,
) -> Option<Response> {
    let mut resp = from_cache(state, up, endpoint, &parts.method, &parts.headers)
        .await
        .unwrap_or_else(|e| Some(e.into_response()))?;
    if let Ok(v) = HeaderValue::from_str(ns) {
        resp.headers_mut().insert(upstream::OCI_NAMESPACE, v);
    }
    Some(resp)
}

/// A blob `GET`/`HEAD` on a backend with `cache = true`: the backend first authorises the
/// client (a `HEAD` of the blob with the client's own headers, credentials as the backend's
/// `client_auth` allows); only a `200` lets the cache answer (filling it on a miss). Anything
/// else falls through to the ordinary pass-through, so the client gets the backend's own answer.
pub(super) async fn backend_blob_from_cache(
    state: &AppState,
    routed: &Routed,
    endpoint: &Endpoint,
    parts: &http::request::Parts,
) -> Result<Option<Response>, OciError> {
    let (Endpoint::Blob { digest, .. }, Some(up), Some((_, repo))) = (
        endpoint,
        state.upstreams.backend_cache(&routed.backend.name),
        &routed.repo,
    ) else {
        return Ok(None);
    };
    if state.cache.is_none() || !matches!(parts.method, Method::GET | Method::HEAD) {
        return Ok(None);
    }
    let forward_auth = routed.backend.forwards_client_auth().await;
    let url = routed
        .backend
        .endpoint()
        .api_url(&format!("/v2/{repo}/blobs/{digest}"), None);
    let head = backend_request(
        &Method::HEAD,
        &url,
        request_headers(&parts.headers, forward_auth),
        Body::empty(),
    )?;
    let allowed = routed
        .backend
        .send(head)
        .await
        .map(|r| {
            routed.backend.observe(r.status());
            r.status() == StatusCode::OK
        })
        .unwrap_or(false);
    if !allowed {
        return Ok(None);
    }
    let cached = Endpoint::Blob {
        name: repo.clone(),
        digest: digest.clone(),
    };
    // The backend itself is there and serves the blob: whatever keeps the cache from answering
    // (a full or unwritable disk, a fill that failed, `offline`, which is about upstreams) is no
    // reason to fail the pull, which passes through instead.
    match from_cache(state, up, &cached, &parts.method, &parts.headers).await {
        Ok(answer) => Ok(answer),
        Err(error) => {
            tracing::warn!(backend = %routed.backend.name, %digest, code = %error.code, message = %error.message,
                "cache could not answer a backend blob; passing it through");
            Ok(None)
        }
    }
}

/// Manifests and blobs of a caching upstream come from the cache; `None` sends the request on.
/// With `offline = true` nothing is ever sent upstream, cache or not: what the cache cannot
/// answer gets the spec's 404 (and `/v2/` is answered by the shim itself).
pub(super) async fn from_cache(
    state: &AppState,
    up: &Arc<upstream::Upstream>,
    endpoint: &Endpoint,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Option<Response>, OciError> {
    let cache = state.cache.as_ref().filter(|_| up.cache);
    match (endpoint, cache) {
        (Endpoint::Blob { name, digest }, Some(cache)) => {
            cache.blob(up, name, digest, method, headers).await
        }
        (Endpoint::Manifest { name, reference }, Some(cache)) => cache
            .manifest(up, name, reference.as_str(), method, headers)
            .await
            .map(Some),
        _ if state.config.cache.offline => match endpoint {
            Endpoint::Base => Ok(Some(local_answer(endpoint))),
            Endpoint::Blob { .. } => Err(OciError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::BlobUnknown,
                "offline: blob is not cached",
            )),
            Endpoint::Manifest { .. } => Err(OciError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::ManifestUnknown,
                "offline: manifest is not cached",
            )),
            _ => Err(OciError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NameUnknown,
                "offline: only cached manifests and blobs are served",
            )),
        },
        _ => Ok(None),
    }
}
