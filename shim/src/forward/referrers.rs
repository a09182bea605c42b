//! The referrers API (distribution spec 1.1) served by the shim for a backend without it, from
//! the spec's fallback: an image index tagged `sha256-<hex>` of the subject, kept on the backend
//! itself. Every request here is the client's own, to the backend its repository routes to, with
//! the client's credentials as the pass-through forwards them: nobody reads or writes referrers
//! they could not read or write on the backend.
//! - `GET /v2/<name>/referrers/<digest>`: the fallback index (an empty one when there is none),
//!   filtered by `artifactType` with `OCI-Filters-Applied`.
//! - A manifest `PUT` with a `subject` that the backend accepted without `OCI-Subject`: the
//!   manifest's descriptor is added to its subject's fallback index, one update of a subject at a
//!   time (`turns`: in this shim, then across the shims sharing the database); the index is read
//!   again just before the write (a changed one is merged afresh) and after it (the update
//!   retried when another writer replaced it); then `OCI-Subject`.
//! - A referrer's manifest `DELETE`: its descriptor leaves the fallback index the same way.
//! - Through the pull-through cache (`?ns=`), an upstream without the API: its fallback tag
//!   read with the upstream's own credentials.
//!
//! Whether a backend has the API is configured (`referrers`) or, under `auto`, learnt from its
//! answers (a referrers route that does not exist answers a non-JSON 404).

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use serde_json::{Value, json};
use shimmer_registry::fallback_tag;

use super::{Routed, headers, lists, turns, url::backend_url};
use crate::{
    AppState,
    error::OciError,
    metrics::Metrics,
    path::{Endpoint, Reference, check_digest},
    upstream::Upstream,
};

pub(super) const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_SUBJECT: &str = "oci-subject";
/// Largest fallback index read.
const INDEX_LIMIT: usize = 4 * 1024 * 1024;
/// Attempts at an index update before giving up on a subject that keeps changing.
const ATTEMPTS: usize = 5;

/// Whether a backend's answer to a referrers request shows it has no such route: a 404 that is
/// not the API's JSON error.
pub(super) fn route_missing(resp: &http::Response<Body>) -> bool {
    resp.status() == StatusCode::NOT_FOUND
        && !resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains("json"))
}

/// The client's repository's manifest `reference` (a tag, or a digest), as an endpoint.
fn manifest(routed: &Routed, reference: &str) -> Endpoint {
    let name = routed
        .repo
        .as_ref()
        .map(|(s, _)| s.clone())
        .unwrap_or_default();
    let reference = match reference.contains(':') {
        true => Reference::Digest(reference.to_owned()),
        false => Reference::Tag(reference.to_owned()),
    };
    Endpoint::Manifest { name, reference }
}

/// One request to the backend about the client's repository, with the client's headers, read
/// uncompressed; `body` (an index) is sent as one.
async fn call(
    state: &AppState,
    routed: &Routed,
    parts: &Parts,
    method: Method,
    endpoint: &Endpoint,
    body: Option<Bytes>,
) -> Result<http::Response<Body>, OciError> {
    let url = backend_url(state, routed, endpoint, None)?;
    let forward_auth = routed.backend.forwards_client_auth().await;
    let mut h = headers::request_headers(&parts.headers, forward_auth);
    h.remove(header::CONTENT_TYPE);
    // The shim reads these bodies itself and decompresses nothing.
    h.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static(
            "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        ),
    );
    let body = match body {
        Some(b) => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(INDEX));
            h.insert(header::CONTENT_LENGTH, b.len().into());
            Body::from(b)
        }
        None => Body::empty(),
    };
    let req = headers::backend_request(&method, &url, h, body)?;
    routed.backend.send(req).await.map_err(|e| {
        tracing::warn!(backend = %routed.backend.name, error = %e, "referrers request failed");
        OciError::backend_unavailable(&routed.backend.name)
    })
}

/// The descriptors of `subject`'s fallback index, `None` when there is none; an answer that is
/// neither (a 401, say) comes back as the error response to give the client.
async fn read_index(
    state: &AppState,
    routed: &Routed,
    parts: &Parts,
    subject: &str,
) -> Result<Result<Vec<Value>, http::Response<Body>>, OciError> {
    let resp = call(
        state,
        routed,
        parts,
        Method::GET,
        &manifest(routed, &fallback_tag(subject)),
        None,
    )
    .await?;
    match resp.status() {
        StatusCode::NOT_FOUND => Ok(Ok(Vec::new())),
        StatusCode::OK => {
            let bytes =
                lists::read_limited(resp.into_body(), INDEX_LIMIT, &routed.backend.name).await?;
            let index: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok(Ok(index["manifests"]
                .as_array()
                .cloned()
                .unwrap_or_default()))
        }
        _ => Ok(Err(resp)),
    }
}

/// `GET referrers/<digest>` answered from the fallback index.
pub(super) async fn list(
    state: &AppState,
    routed: &Routed,
    parts: &Parts,
    subject: &str,
) -> Result<Result<Response, http::Response<Body>>, OciError> {
    Metrics::inc(&state.metrics.referrers_emulated);
    let manifests = match read_index(state, routed, parts, subject).await? {
        Ok(m) => m,
        Err(resp) => return Ok(Err(resp)),
    };
    Ok(Ok(index_response(manifests, parts)))
}

/// A referrers answer listing `manifests`, filtered by the request's `artifactType` (and then
/// saying so in `OCI-Filters-Applied`).
fn index_response(mut manifests: Vec<Value>, parts: &Parts) -> Response {
    let wanted = url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "artifactType")
        .map(|(_, v)| v.into_owned());
    if let Some(t) = &wanted {
        manifests.retain(|m| m["artifactType"] == t.as_str());
    }
    let body = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
    let mut resp = (
        [(header::CONTENT_TYPE, INDEX)],
        serde_json::to_vec(&body).expect("a JSON value serialises"),
    )
        .into_response();
    if wanted.is_some() {
        resp.headers_mut().insert(
            "oci-filters-applied",
            HeaderValue::from_static("artifactType"),
        );
    }
    resp
}

/// `GET referrers/<digest>` through the pull-through cache, for an upstream without the API:
/// its fallback tag read with the upstream's own credentials (never the client's).
pub(super) async fn from_upstream(
    state: &AppState,
    upstream: &Upstream,
    repository: &str,
    subject: &str,
    parts: &Parts,
) -> Result<Response, OciError> {
    Metrics::inc(&state.metrics.referrers_emulated);
    let manifests = upstream
        .client
        .referrers(repository, subject)
        .await
        .map_err(|e| {
            tracing::warn!(upstream = %upstream.backend.name, error = %e,
                "referrers fallback read failed");
            OciError::backend_unavailable(&upstream.backend.name)
        })?;
    Ok(index_response(manifests, parts))
}

/// The subject a manifest names, and the descriptor its subject's index lists it by.
pub(super) fn referrer(manifest: &[u8], digest: &str) -> Option<(String, Value)> {
    let m: Value = serde_json::from_slice(manifest).ok()?;
    let subject = m["subject"]["digest"].as_str()?.to_owned();
    // The subject names a tag and a path on the backend: only a well-formed digest may.
    check_digest(&subject).ok()?;
    let artifact_type = m["artifactType"]
        .as_str()
        .or_else(|| m["config"]["mediaType"].as_str());
    let mut d = json!({
        "mediaType": m["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json"),
        "digest": digest,
        "size": manifest.len(),
    });
    if let Some(t) = artifact_type {
        d["artifactType"] = Value::from(t);
    }
    if m["annotations"].is_object() {
        d["annotations"] = m["annotations"].clone();
    }
    Some((subject, d))
}

/// Adds (`add`) or removes the referrer `descriptor` in `subject`'s fallback index: one update
/// of a subject at a time, in this shim and then across the shims sharing the database.
pub(super) async fn update(
    state: &AppState,
    routed: &Routed,
    parts: &Parts,
    subject: &str,
    descriptor: &Value,
    add: bool,
) -> Result<bool, OciError> {
    let backend = &routed.backend.name;
    let _here = state.referrer_locks.stripe(backend, subject).lock().await;
    let key = format!("referrers {backend} {subject}");
    let leased = turns::take_lease(state, &key).await;
    // The update itself: the index read again after each write and the write retried when
    // another writer's index replaced this one (the re-reads are what a shim without the
    // database has).
    let updated: Result<bool, OciError> = async {
        let digest = &descriptor["digest"];
        // Each round reads the index; a round after a write checks that write held.
        for round in 0..=ATTEMPTS {
            let Ok(seen) = read_index(state, routed, parts, subject).await? else {
                return Ok(false);
            };
            let present = seen.iter().any(|m| m["digest"] == *digest);
            if present == add {
                return Ok(true);
            }
            if round == ATTEMPTS {
                break;
            }
            if round > 0 {
                // The last write did not hold: another writer's index replaced it.
                Metrics::inc(&state.metrics.referrers_conflicts);
            }
            let mut manifests = seen.clone();
            match add {
                true => manifests.push(descriptor.clone()),
                false => manifests.retain(|m| m["digest"] != *digest),
            }
            // Read again just before writing: an index another writer changed meanwhile is read
            // afresh rather than overwritten.
            match read_index(state, routed, parts, subject).await? {
                Ok(now) if now == seen => {}
                Ok(_) => {
                    Metrics::inc(&state.metrics.referrers_conflicts);
                    continue;
                }
                Err(_) => return Ok(false),
            }
            let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
            let bytes = Bytes::from(serde_json::to_vec(&index).expect("a JSON value serialises"));
            let tag = fallback_tag(subject);
            let resp = call(
                state,
                routed,
                parts,
                Method::PUT,
                &manifest(routed, &tag),
                Some(bytes),
            )
            .await?;
            if !resp.status().is_success() {
                tracing::warn!(backend = %routed.backend.name, status = %resp.status(),
                    "the backend refused a fallback referrers index");
                return Ok(false);
            }
        }
        Ok(false)
    }
    .await;
    if leased {
        turns::give_back(state, &key).await;
    }
    updated
}

/// After the backend accepted `manifest` (pushed as `digest`) without `OCI-Subject`: records it
/// in its subject's fallback index and answers `OCI-Subject`, as a 1.1 registry does.
pub(super) async fn record_push(
    state: &AppState,
    routed: &Routed,
    parts: &Parts,
    manifest: &[u8],
    digest: &str,
    answer: &mut HeaderMap,
) -> Result<(), OciError> {
    let Some((subject, descriptor)) = referrer(manifest, digest) else {
        return Ok(());
    };
    if update(state, routed, parts, &subject, &descriptor, true).await?
        && let Ok(v) = HeaderValue::from_str(&subject)
    {
        answer.insert(OCI_SUBJECT, v);
    }
    Ok(())
}

/// Whether the backend lacks the referrers API, asked with a referrers request for `subject`
/// (and remembered on the backend).
pub(super) async fn lacks_api(
    state: &AppState,
    routed: &Routed,
    parts: &Parts,
    subject: &str,
) -> Result<bool, OciError> {
    let name = routed
        .repo
        .as_ref()
        .map(|(s, _)| s.clone())
        .unwrap_or_default();
    let endpoint = Endpoint::Referrers {
        name,
        digest: subject.to_owned(),
    };
    let resp = call(state, routed, parts, Method::GET, &endpoint, None).await?;
    let missing = route_missing(&resp);
    if missing || resp.status() == StatusCode::OK {
        routed.backend.learn_referrers(!missing);
    }
    Ok(missing)
}

/// Before a manifest `DELETE` by digest: the manifest's subject and descriptor, if it is a
/// referrer (read with the client's credentials).
pub(super) async fn before_delete(
    state: &AppState,
    routed: &Routed,
    parts: &Parts,
    digest: &str,
) -> Result<Option<(String, Value)>, OciError> {
    let resp = call(
        state,
        routed,
        parts,
        Method::GET,
        &manifest(routed, digest),
        None,
    )
    .await?;
    if resp.status() != StatusCode::OK {
        return Ok(None);
    }
    let bytes = lists::read_limited(resp.into_body(), INDEX_LIMIT, &routed.backend.name).await?;
    Ok(referrer(&bytes, digest))
}
