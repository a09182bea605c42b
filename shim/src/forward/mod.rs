//! The `/v2` handler: validate, pick the target once (`target`: a mirror, a backend or the
//! shim itself), forward, stream the answer back.
//!
//! Bodies are never buffered except a manifest on `PUT` (bounded by `max_manifest_bytes`, so
//! its digest can be checked and the push queued) and a tag or catalog list whose repository
//! names must be translated for a backend with a repository prefix (bounded by
//! `lists::LIST_LIMIT`).

mod cached;
mod headers;
mod lists;
mod manifests;
mod paging;
mod referrers;
mod target;
pub(crate) mod turns;
mod url;

use std::sync::Arc;

use ::url::Url;
use axum::{
    body::Body,
    extract::State,
    http::{HeaderName, HeaderValue, Method, Request, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use bytes::Bytes;

use self::target::Target;
use crate::{
    AppState,
    backend::Backend,
    error::{API_VERSION, API_VERSION_HEADER, OciError},
    metrics::Metrics,
    path::Endpoint,
    rewrite, token,
    upstream::{self, Upstream},
};

pub const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

/// Entry point for every `/v2` request.
pub async fn handle(State(state): State<AppState>, req: Request<Body>) -> Response {
    Metrics::inc(&state.metrics.requests);
    let mut resp = forward(&state, req)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    resp.headers_mut().insert(API_VERSION_HEADER, API_VERSION);
    resp
}

/// A request after validation and routing.
struct Routed {
    backend: Arc<Backend>,
    /// (shim name, backend name) of the repository, for endpoints that have one.
    repo: Option<(String, String)>,
}

async fn forward(state: &AppState, req: Request<Body>) -> Result<Response, OciError> {
    let (parts, body) = req.into_parts();
    let (endpoint, ns, query) = target::parse(state, &parts)?;
    let (routed, upstream) = match target::target(state, &endpoint, ns.as_deref(), &parts.method)? {
        Target::Local => return Ok(target::local_answer(&endpoint)),
        Target::Mirror(up) => {
            let ns = ns.as_deref().unwrap_or_default();
            if let Some(resp) = cached::mirror_answer(state, &up, ns, &endpoint, &parts).await {
                return Ok(resp);
            }
            let repo = endpoint.name().map(|n| (n.to_owned(), n.to_owned()));
            let backend = up.backend.clone();
            (Routed { backend, repo }, Some(up))
        }
        Target::Backend(routed) => {
            let cached = cached::backend_blob_from_cache(state, &routed, &endpoint, &parts).await?;
            if let Some(resp) = cached {
                return Ok(resp);
            }
            (routed, None)
        }
    };
    let query = match &endpoint {
        Endpoint::Catalog if !routed.backend.endpoint().prefix.is_empty() => {
            Some(lists::catalog_query(&routed.backend, query.as_deref()))
        }
        _ => query,
    };
    let url = url::backend_url(state, &routed, &endpoint, query.as_deref())?;
    let ctx = rewrite::Context {
        backend: &routed.backend,
        sessions: &state.sessions,
        ns: ns.as_deref(),
        request_url: &url,
        repo: routed.repo.as_ref().map(|(s, b)| (s.as_str(), b.as_str())),
        public_base: state.public_base(),
    };
    let emulate = upstream.is_none() && routed.backend.emulates_referrers() == Some(true);
    if let (Endpoint::Referrers { digest, .. }, true, &Method::GET | &Method::HEAD) =
        (&endpoint, emulate, &parts.method)
    {
        return match referrers::list(state, &routed, &parts, digest).await? {
            Ok(list) if parts.method == Method::HEAD => {
                let (head, _) = list.into_parts();
                Ok(Response::from_parts(head, Body::empty()))
            }
            Ok(list) => Ok(list),
            Err(refused) => respond(state, &routed, false, &endpoint, &parts, &ctx, refused).await,
        };
    }
    let deleted_referrer = match (&endpoint, &parts.method) {
        (
            Endpoint::Manifest {
                reference: crate::path::Reference::Digest(d),
                ..
            },
            &Method::DELETE,
            // What the referrer was is asked first; failing that, the DELETE still goes ahead.
        ) if emulate => referrers::before_delete(state, &routed, &parts, d)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    let (mut resp, pushed) = send(
        state,
        &routed,
        upstream.as_deref(),
        &endpoint,
        &parts,
        body,
        &url,
    )
    .await?;
    if let (Some(up), Endpoint::Referrers { digest, .. }, &Method::GET) =
        (&upstream, &endpoint, &parts.method)
        && referrers::route_missing(&resp)
    {
        let repo = routed.repo.as_ref().map_or("", |(_, r)| r.as_str());
        let mut list = referrers::from_upstream(state, up, repo, digest, &parts).await?;
        if let Some(v) = ns.as_deref().and_then(|ns| HeaderValue::from_str(ns).ok()) {
            list.headers_mut().insert(upstream::OCI_NAMESPACE, v);
        }
        return Ok(list);
    }
    if upstream.is_none() {
        let emulated = referrers_after(
            state,
            &routed,
            &endpoint,
            &parts,
            &mut resp,
            &pushed,
            deleted_referrer,
        )
        .await?;
        if let Some(list) = emulated {
            return Ok(list);
        }
    }
    if let (Endpoint::Manifest { reference, .. }, None) = (&endpoint, &upstream) {
        let pushed = pushed.map(|(_, digest)| digest);
        manifests::enqueue(state, &routed, reference, &parts, &resp, pushed);
        let repo = routed.repo.as_ref();
        state
            .pulls
            .observe(&routed.backend.name, repo, &parts.method, &resp);
    }
    respond(
        state,
        &routed,
        upstream.is_some(),
        &endpoint,
        &parts,
        &ctx,
        resp,
    )
    .await
}

/// Sends the request to its target: a mirror with the upstream's own credentials (its requests
/// have no body, so a challenged one is simply sent again), a backend through the pass-through
/// with the client's body. A manifest push is read and checked first: everything about the
/// request is checked before the backend is contacted at all. Returns the answer (a blob
/// redirect followed when configured) and a pushed manifest with its digest.
async fn send(
    state: &AppState,
    routed: &Routed,
    upstream: Option<&Upstream>,
    endpoint: &Endpoint,
    parts: &Parts,
    body: Body,
    url: &Url,
) -> Result<(http::Response<Body>, Option<(Bytes, String)>), OciError> {
    let (manifest, body) = match (endpoint, &parts.method) {
        (Endpoint::Manifest { reference, .. }, &Method::PUT) => {
            let limit = state.config.server.max_manifest_bytes;
            let m = manifests::read_manifest(body, &parts.headers, reference, limit).await?;
            (Some(m), None)
        }
        _ => (None, Some(body)),
    };
    let pushed = manifest.clone();
    let backend = &routed.backend;
    let sent = match (upstream, &routed.repo) {
        (Some(up), Some((_, repo))) => {
            let headers = headers::request_headers(&parts.headers, false);
            let method = &parts.method;
            up.client
                .send(repo, |http| {
                    http.request(method.clone(), url.clone())
                        .headers(headers.clone())
                })
                .await
                .map(|r| http::Response::from(r).map(Body::new))
                .map_err(|e| e.to_string())
        }
        _ => {
            let forward_auth = backend.forwards_client_auth().await;
            let mut headers = headers::request_headers(&parts.headers, forward_auth);
            let body = if let Some((bytes, _)) = manifest {
                headers.insert(header::CONTENT_LENGTH, bytes.len().into());
                Body::from(bytes)
            } else if let Some(body) = body.filter(|_| headers::has_body(&parts.headers)) {
                if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
                    headers.insert(header::CONTENT_LENGTH, len.clone());
                }
                body
            } else {
                Body::empty()
            };
            let req = headers::backend_request(&parts.method, url, headers, body)?;
            backend.send(req).await.map_err(|e| e.to_string())
        }
    };
    let unavailable = |error: String, what: &str| {
        Metrics::inc(&state.metrics.backend_errors);
        tracing::warn!(backend = %backend.name, %error, "{what}");
        OciError::backend_unavailable(&backend.name)
    };
    let resp = sent.map_err(|e| unavailable(e, "backend request failed"))?;
    backend.observe(resp.status());
    let resp = match endpoint {
        Endpoint::Blob { digest, .. }
            if state.config.server.follow_redirects && resp.status().is_redirection() =>
        {
            manifests::follow_redirects(backend, resp, url, &parts.method, &parts.headers, digest)
                .await
                .map_err(|e| unavailable(e, "following blob redirect failed"))?
        }
        _ => resp,
    };
    Ok((resp, pushed))
}

/// What the referrers API asks of a request the backend answered (for a backend, not a mirror):
/// learn whether the backend has the API from a referrers answer, and answer from the fallback
/// index where it has not; record a pushed referrer in its subject's fallback index (and answer
/// `OCI-Subject`) where the backend did not; drop a deleted referrer from it.
async fn referrers_after(
    state: &AppState,
    routed: &Routed,
    endpoint: &Endpoint,
    parts: &Parts,
    resp: &mut http::Response<Body>,
    pushed: &Option<(Bytes, String)>,
    deleted: Option<(String, serde_json::Value)>,
) -> Result<Option<Response>, OciError> {
    let backend = &routed.backend;
    match (endpoint, &parts.method) {
        (Endpoint::Referrers { digest, .. }, &Method::GET) => {
            if backend.emulates_referrers().is_none() && referrers::route_missing(resp) {
                backend.learn_referrers(false);
                if let Ok(list) = referrers::list(state, routed, parts, digest).await? {
                    return Ok(Some(list));
                }
            } else {
                if resp.status() == StatusCode::OK {
                    backend.learn_referrers(true);
                }
                Metrics::inc(&state.metrics.referrers_passed);
            }
        }
        (Endpoint::Manifest { .. }, &Method::PUT)
            if resp.status() == StatusCode::CREATED
                && !resp.headers().contains_key("oci-subject") =>
        {
            let Some((bytes, digest)) = pushed else {
                return Ok(None);
            };
            let Some((subject, _)) = referrers::referrer(bytes, digest) else {
                return Ok(None);
            };
            let emulate = match backend.emulates_referrers() {
                Some(e) => Ok(e),
                None => referrers::lacks_api(state, routed, parts, &subject).await,
            };
            // The push has succeeded: what goes wrong here costs its OCI-Subject, not the push.
            let recorded = match emulate {
                Ok(true) => {
                    referrers::record_push(state, routed, parts, bytes, digest, resp.headers_mut())
                        .await
                }
                other => other.map(|_| ()),
            };
            if let Err(e) = recorded {
                tracing::warn!(backend = %backend.name, error = %e.message, "referrer not recorded");
            }
        }
        (Endpoint::Manifest { .. }, &Method::DELETE) if resp.status().is_success() => {
            if let Some((subject, descriptor)) = deleted
                && let Err(e) =
                    referrers::update(state, routed, parts, &subject, &descriptor, false).await
            {
                tracing::warn!(backend = %backend.name, error = %e.message, "referrer not removed");
            }
        }
        _ => {}
    }
    Ok(None)
}

/// The backend's answer as the client gets it: status and headers as they came, edited for the
/// client (the version is the client connection's, the backend client's extensions stay
/// behind), challenges pointed at the shim's token relay, lists renamed into shim names.
async fn respond(
    state: &AppState,
    routed: &Routed,
    mirrored: bool,
    endpoint: &Endpoint,
    parts: &Parts,
    ctx: &rewrite::Context<'_>,
    resp: http::Response<Body>,
) -> Result<Response, OciError> {
    let backend = &routed.backend;
    let (mut head, body) = resp.into_parts();
    head.version = http::Version::default();
    head.extensions.clear();
    headers::rewrite_response_headers(&mut head.headers, ctx);
    // The token service of a prefixed backend (or one with `relay_tokens`) is asked through the
    // shim, which renames the scopes.
    if backend.relay_tokens
        && !mirrored
        && head.headers.contains_key(header::WWW_AUTHENTICATE)
        && let Some(url) = token::endpoint_url(state.public_base(), &parts.headers, backend)
    {
        token::rewrite_challenges(&mut head.headers, backend, &url);
    }
    // Tag lists of a prefixed backend are renamed; every catalog keeps only the repositories
    // the shim routes to its backend.
    let prefixed = !backend.endpoint().prefix.is_empty();
    let translate_list = head.status == StatusCode::OK
        && parts.method != Method::HEAD
        && match endpoint {
            Endpoint::Tags { .. } => prefixed,
            Endpoint::Catalog => true,
            _ => false,
        };
    // Tag lists the client pages: paged here where the backend does not (a backend that has
    // sent a `Link` pages, and is passed through untouched).
    let paging = match endpoint {
        Endpoint::Tags { .. }
            if head.status == StatusCode::OK
                && parts.method == Method::GET
                && !backend.pages_tags(&head.headers) =>
        {
            paging::requested(parts.uri.query())?
        }
        _ => None,
    };
    let mut next = None;
    let body = if translate_list || paging.is_some() {
        head.headers.remove(header::CONTENT_LENGTH);
        let list = lists::read_limited(body, lists::LIST_LIMIT, &backend.name).await?;
        let list = match translate_list {
            true => lists::translate_names(state, routed, endpoint, &list)?,
            false => list.to_vec(),
        };
        match &paging {
            Some(page) => {
                let (list, link) = lists::page_tags(&list, page, routed, parts)?;
                next = link;
                Body::from(list)
            }
            None => Body::from(list),
        }
    } else {
        body
    };
    let mut response = Response::from_parts(head, body);
    if let Some(link) = next.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    if matches!(endpoint, Endpoint::Catalog) && prefixed {
        let link = response.headers_mut().remove(header::LINK);
        let next = link
            .as_ref()
            .and_then(|l| l.to_str().ok())
            .and_then(|l| lists::catalog_link(backend, l))
            .and_then(|l| HeaderValue::from_str(&l).ok());
        if let Some(next) = next {
            response.headers_mut().insert(header::LINK, next);
        }
    }
    if let Some(v) = ctx.ns.and_then(|ns| HeaderValue::from_str(ns).ok()) {
        response.headers_mut().insert(upstream::OCI_NAMESPACE, v);
    }
    Ok(response)
}
