//! The `/v2` handler: validate, route, forward to the backend, stream the answer back.
//!
//! Bodies are never buffered except a manifest on `PUT` (bounded by `max_manifest_bytes`, so
//! its digest can be checked and the push queued) and a tag or catalog list whose repository
//! names must be translated for a backend with a repository prefix (bounded by `LIST_LIMIT`).

use std::sync::Arc;

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use sha2::{Digest, Sha256, Sha512};
use shimmer_registry::redirect;
use shimmer_store::jobs::{JobSource, NewJob};
use url::Url;

use crate::{
    AppState,
    backend::Backend,
    error::{API_VERSION, API_VERSION_HEADER, OciError},
    metrics::Metrics,
    path::{self, Endpoint, Reference},
    rewrite, token, upstream,
};

/// Largest tag or catalog list the shim rewrites in memory.
const LIST_LIMIT: usize = 16 * 1024 * 1024;

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
    let endpoint = parse_endpoint(parts.uri.path()).map_err(|e| {
        // A tag that breaks the grammar cannot name a manifest: a read or delete of one is
        // answered as for any tag the repository lacks; only a push is an invalid manifest.
        if e.code == "MANIFEST_INVALID" && parts.method != Method::PUT {
            OciError::new(StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", e.message)
        } else {
            e
        }
    })?;
    check_method(&endpoint, &parts.method)?;
    let (mut ns, query) = upstream::take_ns(parts.uri.query());
    // The host-in-path form for clients that cannot send `ns`:
    // `/v2/registry.k8s.io/pause/manifests/3.9`, for configured upstream hosts only.
    let endpoint = match (&ns, endpoint.name().and_then(|n| n.split_once('/'))) {
        (None, Some((host, rest))) if state.upstreams.get(host).is_some() => {
            ns = Some(host.to_owned());
            endpoint.renamed(rest.to_owned())
        }
        _ => endpoint,
    };
    // Docker Hub keeps its official images under `library/`: `docker.io/busybox` is
    // `library/busybox` there, whichever form named it (containerd adds it itself).
    let endpoint = match (&ns, endpoint.name()) {
        (Some(ns), Some(name)) if !name.contains('/') && upstream::is_docker_hub(ns) => {
            endpoint.renamed(format!("library/{name}"))
        }
        _ => endpoint,
    };
    let (routed, upstream) = match &ns {
        Some(ns) => {
            let up = state.upstreams.get(ns).ok_or_else(|| {
                OciError::new(
                    StatusCode::NOT_FOUND,
                    "NAME_UNKNOWN",
                    format!("ns {ns:?} names no upstream this registry mirrors"),
                )
            })?;
            // A mirror is read through the pull API only: no uploads (whose sessions could name
            // any path on the upstream's host, sent with the configured credentials) and no
            // catalog of the upstream's whole content.
            if !matches!(
                endpoint,
                Endpoint::Base
                    | Endpoint::Manifest { .. }
                    | Endpoint::Blob { .. }
                    | Endpoint::Tags { .. }
                    | Endpoint::Referrers { .. }
            ) {
                return Err(OciError::unsupported(
                    format!(
                        "upstream {ns:?} is a read-only mirror: no {} endpoint",
                        endpoint.kind()
                    ),
                    &[],
                ));
            }
            if !matches!(parts.method, Method::GET | Method::HEAD) {
                return Err(OciError::unsupported(
                    format!("upstream {ns:?} is read-only"),
                    &[Method::GET, Method::HEAD],
                ));
            }
            // The cache's own answers, errors included, name the upstream they are about.
            let cached = from_cache(state, up, &endpoint, &parts.method, &parts.headers)
                .await
                .unwrap_or_else(|e| Some(e.into_response()));
            if let Some(mut resp) = cached {
                if let Ok(v) = HeaderValue::from_str(ns) {
                    resp.headers_mut().insert(upstream::OCI_NAMESPACE, v);
                }
                return Ok(resp);
            }
            let repo = endpoint.name().map(|n| (n.to_owned(), n.to_owned()));
            (
                Routed {
                    backend: up.backend.clone(),
                    repo,
                },
                Some(up.clone()),
            )
        }
        None => match resolve(state, &endpoint)? {
            Some(routed) => {
                if let Some(resp) =
                    backend_blob_from_cache(state, &routed, &endpoint, &parts).await?
                {
                    return Ok(resp);
                }
                (routed, None)
            }
            None => return Ok(local_answer(&endpoint)),
        },
    };
    let query = match &endpoint {
        Endpoint::Catalog if !routed.backend.endpoint().prefix.is_empty() => {
            Some(catalog_query(&routed.backend, query.as_deref()))
        }
        _ => query,
    };
    let url = backend_url(state, &routed, &endpoint, query.as_deref())?;

    // Everything about the request is checked before the backend is contacted at all.
    let (manifest, body) = match (&endpoint, &parts.method) {
        (Endpoint::Manifest { reference, .. }, &Method::PUT) => {
            let limit = state.config.server.max_manifest_bytes;
            let m = read_manifest(body, &parts.headers, reference, limit).await?;
            (Some(m), None)
        }
        _ => (None, Some(body)),
    };
    let forward_auth = upstream.is_none() && routed.backend.forwards_client_auth().await;
    let mut pushed = None;
    let sent = match (&upstream, &routed.repo) {
        // Upstreams get configured credentials only, exchanged for a Bearer token when they
        // ask for one; their requests have no body, so a challenged one is simply sent again.
        (Some(up), Some((_, repo))) => {
            let headers = request_headers(&parts.headers, false);
            up.client
                .send(repo, |http| {
                    http.request(parts.method.clone(), url.clone())
                        .headers(headers.clone())
                })
                .await
                .map(|r| http::Response::from(r).map(Body::new))
                .map_err(|e| e.to_string())
        }
        _ => {
            let mut headers = request_headers(&parts.headers, forward_auth);
            let body = if let Some((bytes, digest)) = manifest {
                headers.insert(header::CONTENT_LENGTH, bytes.len().into());
                pushed = Some(digest);
                Body::from(bytes)
            } else if let Some(body) = body.filter(|_| has_body(&parts.headers)) {
                if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
                    headers.insert(header::CONTENT_LENGTH, len.clone());
                }
                body
            } else {
                Body::empty()
            };
            let req = backend_request(&parts.method, &url, headers, body)?;
            routed.backend.send(req).await.map_err(|e| e.to_string())
        }
    };
    let resp = sent.map_err(|error| {
        Metrics::inc(&state.metrics.backend_errors);
        tracing::warn!(backend = %routed.backend.name, %error, "backend request failed");
        OciError::backend_unavailable(&routed.backend.name)
    })?;
    routed.backend.observe(resp.status());

    let resp = match &endpoint {
        Endpoint::Blob { digest, .. }
            if state.config.server.follow_redirects && resp.status().is_redirection() =>
        {
            follow_redirects(&routed.backend, resp, &url, &parts.method, &parts.headers, digest)
                .await
                .map_err(|error| {
                    Metrics::inc(&state.metrics.backend_errors);
                    tracing::warn!(backend = %routed.backend.name, %error, "following blob redirect failed");
                    OciError::backend_unavailable(&routed.backend.name)
                })?
        }
        _ => resp,
    };

    if let (Endpoint::Manifest { reference, .. }, None) = (&endpoint, &upstream) {
        enqueue(state, &routed, reference, &parts, &resp, pushed);
        let repo = routed.repo.as_ref();
        state
            .pulls
            .observe(&routed.backend.name, repo, &parts.method, &resp);
    }

    let ctx = rewrite::Context {
        backend: &routed.backend,
        sessions: &state.sessions,
        ns: ns.as_deref(),
        request_url: &url,
        repo: routed.repo.as_ref().map(|(s, b)| (s.as_str(), b.as_str())),
        public_base: state.public_base(),
    };
    // The status and headers as they came, edited for the client; the version is the client
    // connection's (hyper writes the one it speaks), and the backend client's extensions stay
    // behind.
    let (mut head, body) = resp.into_parts();
    head.version = http::Version::default();
    head.extensions.clear();
    rewrite_response_headers(&mut head.headers, &ctx);
    // The token service of a prefixed backend (or one with `relay_tokens`) is asked through the
    // shim, which renames the scopes.
    if routed.backend.relay_tokens
        && upstream.is_none()
        && head.headers.contains_key(header::WWW_AUTHENTICATE)
        && let Some(url) = token::endpoint_url(state.public_base(), &parts.headers, &routed.backend)
    {
        token::rewrite_challenges(&mut head.headers, &routed.backend, &url);
    }
    // Tag lists of a prefixed backend are renamed; every catalog keeps only the repositories
    // the shim routes to its backend.
    let translate_list = head.status == StatusCode::OK
        && parts.method != Method::HEAD
        && match endpoint {
            Endpoint::Tags { .. } => !routed.backend.endpoint().prefix.is_empty(),
            Endpoint::Catalog => true,
            _ => false,
        };
    let body = if translate_list {
        head.headers.remove(header::CONTENT_LENGTH);
        let list = read_limited(body, LIST_LIMIT, &routed.backend.name).await?;
        Body::from(translate_names(state, &routed, &endpoint, &list)?)
    } else {
        body
    };
    let mut response = Response::from_parts(head, body);
    if matches!(endpoint, Endpoint::Catalog) && !routed.backend.endpoint().prefix.is_empty() {
        let link = response.headers_mut().remove(header::LINK);
        let next = link
            .as_ref()
            .and_then(|l| l.to_str().ok())
            .and_then(|l| catalog_link(&routed.backend, l))
            .and_then(|l| HeaderValue::from_str(&l).ok());
        if let Some(next) = next {
            response.headers_mut().insert(header::LINK, next);
        }
    }
    if let Some(v) = ns.and_then(|ns| HeaderValue::from_str(&ns).ok()) {
        response.headers_mut().insert(upstream::OCI_NAMESPACE, v);
    }
    Ok(response)
}

/// A blob `GET`/`HEAD` on a backend with `cache = true`: the backend first authorises the
/// client (a `HEAD` of the blob with the client's own headers, credentials as the backend's
/// `client_auth` allows); only a `200` lets the cache answer (filling it on a miss). Anything
/// else falls through to the ordinary pass-through, so the client gets the backend's own answer.
async fn backend_blob_from_cache(
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
            tracing::warn!(backend = %routed.backend.name, %digest, code = error.code, message = %error.message,
                "cache could not answer a backend blob; passing it through");
            Ok(None)
        }
    }
}

/// Manifests and blobs of a caching upstream come from the cache; `None` sends the request on.
/// With `offline = true` nothing is ever sent upstream, cache or not: what the cache cannot
/// answer gets the spec's 404 (and `/v2/` is answered by the shim itself).
async fn from_cache(
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
                "BLOB_UNKNOWN",
                "offline: blob is not cached",
            )),
            Endpoint::Manifest { .. } => Err(OciError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "offline: manifest is not cached",
            )),
            _ => Err(OciError::new(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "offline: only cached manifests and blobs are served",
            )),
        },
        _ => Ok(None),
    }
}

fn parse_endpoint(raw_path: &str) -> Result<Endpoint, OciError> {
    let decoded = percent_encoding::percent_decode_str(raw_path)
        .decode_utf8()
        .map_err(|_| OciError::not_found("path is not valid UTF-8"))?;
    let rest = match decoded.strip_prefix("/v2") {
        Some("") => "",
        Some(r) => r
            .strip_prefix('/')
            .ok_or_else(|| OciError::not_found(format!("no such endpoint: {raw_path}")))?,
        None => return Err(OciError::not_found(format!("no such endpoint: {raw_path}"))),
    };
    match path::parse(rest)? {
        // A session is the backend's opaque text: it goes back as the backend wrote it, percent
        // escapes and all (`abc%2Fx` decoded would be a path of two segments). The checks ran on
        // the decoded form; the raw one is used only when it decodes to exactly that.
        Endpoint::UploadSession { name, session } => {
            let raw = raw_path
                .rfind("/blobs/uploads/")
                .map(|i| &raw_path[i + "/blobs/uploads/".len()..])
                .filter(|raw| {
                    percent_encoding::percent_decode_str(raw)
                        .decode_utf8()
                        .ok()
                        .as_deref()
                        == Some(session.as_str())
                });
            let session = raw.map_or(session, str::to_owned);
            Ok(Endpoint::UploadSession { name, session })
        }
        endpoint => Ok(endpoint),
    }
}

fn check_method(endpoint: &Endpoint, method: &Method) -> Result<(), OciError> {
    let allowed: &[Method] = match endpoint {
        Endpoint::Base => &[Method::GET, Method::HEAD],
        // HEAD wherever GET is, as HTTP asks: a HEAD of referrers gets the backend's 404 when
        // it has no referrers API (clients fall back to the tag schema on 404, not on 405).
        Endpoint::Catalog | Endpoint::Tags { .. } | Endpoint::Referrers { .. } => {
            &[Method::GET, Method::HEAD]
        }
        Endpoint::Manifest { .. } => &[Method::GET, Method::HEAD, Method::PUT, Method::DELETE],
        Endpoint::Blob { .. } => &[Method::GET, Method::HEAD, Method::DELETE],
        Endpoint::UploadStart { .. } => &[Method::POST],
        Endpoint::UploadSession { .. } => &[
            Method::GET,
            Method::HEAD,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ],
    };
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(OciError::unsupported(
            format!(
                "{method} is not supported on the {} endpoint",
                endpoint.kind()
            ),
            allowed,
        ))
    }
}

/// The backend a request goes to; `None` when no backend answers it (the shim does).
fn resolve(state: &AppState, endpoint: &Endpoint) -> Result<Option<Routed>, OciError> {
    match endpoint.name() {
        None => Ok(state.routes.ping_backend().map(|b| Routed {
            backend: b.clone(),
            repo: None,
        })),
        Some(name) => {
            let backend = state
                .routes
                .route(name)
                .ok_or_else(|| OciError::name_unknown(name))?
                .clone();
            let backend_repo = backend.endpoint().backend_repo(name);
            Ok(Some(Routed {
                backend,
                repo: Some((name.to_owned(), backend_repo)),
            }))
        }
    }
}

/// What the shim says itself when no backend is configured for `/v2/` or `_catalog`.
fn local_answer(endpoint: &Endpoint) -> Response {
    let body = match endpoint {
        Endpoint::Catalog => r#"{"repositories":[]}"#,
        _ => "{}",
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn backend_url(
    state: &AppState,
    routed: &Routed,
    endpoint: &Endpoint,
    query: Option<&str>,
) -> Result<Url, OciError> {
    let b = &routed.backend;
    let repo = routed.repo.as_ref().map(|(_, r)| r.as_str()).unwrap_or("");
    // Paths built from validated names, references and digests: set on the backend's parsed
    // URL (no parse of scheme and host per request).
    let url = match endpoint {
        Endpoint::Base => return Ok(b.endpoint().api_url("/v2/", query)),
        Endpoint::Catalog => return Ok(b.endpoint().api_url("/v2/_catalog", query)),
        Endpoint::Tags { .. } => {
            return Ok(b
                .endpoint()
                .api_url(&format!("/v2/{repo}/tags/list"), query));
        }
        Endpoint::Manifest { reference, .. } => {
            let path = format!("/v2/{repo}/manifests/{}", reference.as_str());
            return Ok(b.endpoint().api_url(&path, query));
        }
        Endpoint::Blob { digest, .. } => {
            return Ok(b
                .endpoint()
                .api_url(&format!("/v2/{repo}/blobs/{digest}"), query));
        }
        Endpoint::Referrers { digest, .. } => {
            return Ok(b
                .endpoint()
                .api_url(&format!("/v2/{repo}/referrers/{digest}"), query));
        }
        // Upload sessions carry the backend's opaque state: parsed as the backend wrote it.
        Endpoint::UploadStart { .. } => {
            let query = query.map(|q| mount_query(state, b, q));
            b.endpoint()
                .url(&format!("/v2/{repo}/blobs/uploads/"), query.as_deref())
        }
        Endpoint::UploadSession { name, session } => {
            match state.sessions.decode(&b.name, name, session) {
                Some(Ok(path)) => b.endpoint().at_origin(&path, query),
                Some(Err(())) => {
                    return Err(OciError::new(
                        StatusCode::NOT_FOUND,
                        "BLOB_UPLOAD_UNKNOWN",
                        "upload session is not one this registry issued",
                    ));
                }
                None => {
                    let uploads = format!("{}/v2/{repo}/blobs/uploads/", b.endpoint().base_path());
                    let url = Url::parse(
                        &b.endpoint()
                            .url(&format!("/v2/{repo}/blobs/uploads/{session}"), query),
                    )
                    .map_err(|_| OciError::not_found("invalid URL"))?;
                    // However the URL parser read the session, it stays an upload of this repository.
                    if !url.path().starts_with(&uploads) {
                        return Err(OciError::new(
                            StatusCode::NOT_FOUND,
                            "BLOB_UPLOAD_UNKNOWN",
                            "upload session is not one this registry issued",
                        ));
                    }
                    return Ok(url);
                }
            }
        }
    };
    Url::parse(&url).map_err(|_| OciError::not_found("invalid URL"))
}

/// A cross-repository mount names the source by its shim name: translate it to the backend's
/// name, or, when the source lives on another backend (or nowhere, or is no valid name), drop
/// the mount so the backend opens an ordinary upload session (202), as the spec allows.
/// Keys are compared decoded, as the backend will read them (`fr%6Fm` is `from`); pairs that are
/// neither key go on as the client wrote them.
fn mount_query(state: &AppState, backend: &Backend, query: &str) -> String {
    let key_of = |pair: &str| {
        let key = pair.split('=').next().unwrap_or("");
        url::form_urlencoded::parse(key.as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default()
    };
    let from = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "from")
        .map(|(_, v)| v.into_owned());
    let Some(from) = from else {
        return query.to_owned();
    };
    // An invalid source name is a repository that cannot exist: no mount, a plain upload.
    let same_backend = path::is_valid_name(&from)
        && state
            .routes
            .route(&from)
            .is_some_and(|b| std::ptr::eq(b.as_ref(), backend));
    let mut kept: Vec<String> = query
        .split('&')
        .filter(|pair| {
            let key = key_of(pair);
            key != "from" && (same_backend || key != "mount")
        })
        .map(str::to_owned)
        .collect();
    if same_backend {
        kept.push(format!(
            "from={}",
            url::form_urlencoded::byte_serialize(backend.endpoint().backend_repo(&from).as_bytes())
                .collect::<String>()
        ));
    }
    kept.join("&")
}

/// The catalog of a backend with a repository prefix is paged in shim names, and only over the
/// prefix: the client's `last` (a shim name) becomes the backend's name, and a first page starts
/// where the prefix does (names sort, so the prefix's repositories are one run of the catalog).
/// Neither the list nor its `Link` then names the backend's other repositories.
fn catalog_query(backend: &Backend, query: Option<&str>) -> String {
    let pairs = || url::form_urlencoded::parse(query.unwrap_or("").as_bytes());
    let last = pairs()
        .find(|(k, _)| k == "last")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty());
    let last = match last {
        Some(shim_name) => backend.endpoint().backend_repo(&shim_name),
        None => backend.endpoint().prefix.trim_end_matches('/').to_owned(),
    };
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs().filter(|(k, _)| k != "last"))
        .append_pair("last", &last)
        .finish()
}

/// The `Link` to a prefixed backend's next catalog page, its `last` turned into the shim's name;
/// `None` once `last` has left the prefix's run of names (no page after it lists any).
fn catalog_link(backend: &Backend, link: &str) -> Option<String> {
    let start = link.find('<')?;
    let end = start + link[start..].find('>')?;
    let target = &link[start + 1..end];
    let (path, query) = target.split_once('?')?;
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let last = pairs.iter().find(|(k, _)| k == "last")?;
    let shim_last = backend.endpoint().shim_repo(&last.1)?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().map(|(k, v)| {
            let v = if k == "last" { shim_last } else { v.as_str() };
            (k.as_str(), v)
        }))
        .finish();
    Some(format!(
        "{}<{path}?{query}>{}",
        &link[..start],
        &link[end + 1..]
    ))
}

/// Reads a pushed manifest, bounded, and checks it before the backend sees it: the size, that
/// it is JSON, and that it matches the digest it is pushed under.
async fn read_manifest(
    body: Body,
    headers: &HeaderMap,
    reference: &Reference,
    limit: u64,
) -> Result<(Bytes, String), OciError> {
    let too_large = || {
        OciError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
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

/// A request for the pass-through client.
fn backend_request(
    method: &Method,
    url: &Url,
    headers: HeaderMap,
    body: Body,
) -> Result<http::Request<Body>, OciError> {
    let mut req = http::Request::new(body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = url
        .as_str()
        .parse()
        .map_err(|_| OciError::not_found("invalid URL"))?;
    *req.headers_mut() = headers;
    Ok(req)
}

fn has_body(headers: &HeaderMap) -> bool {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    declared.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// Headers that describe one connection (RFC 9110 §7.6.1), never forwarded either way.
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether a header is hop-by-hop: one of [`HOP_BY_HOP`] or named by the message's
/// `Connection` header.
fn is_hop_by_hop(name: &HeaderName, connection_listed: &[String]) -> bool {
    HOP_BY_HOP.contains(name) || connection_listed.iter().any(|c| c == name.as_str())
}

fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Headers a load balancer in front of the shim adds that describe how the client reached the
/// shim. docker-registry builds its absolute `Location`s from them (the `https` of the balancer,
/// its host) and the shim could no longer recognise and rewrite them: they must not reach a
/// backend, which the shim reaches by its own URL. `X-Forwarded-For` (the client's address, for
/// the backend's logs) goes on.
fn describes_the_clients_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "forwarded" | "x-forwarded-proto" | "x-forwarded-host" | "x-forwarded-port"
    )
}

/// The client's headers as the backend gets them: every value of repeated headers (skopeo sends
/// several `Accept` lines), without hop-by-hop headers, `Host` (the backend's own), the load
/// balancer's description of the client's hop, `Expect`, `Content-Length` (set from the body),
/// cookies (a browser sends the shim's host's cookies, the marketplace's among them when both
/// share a host name; registry clients keep none) and, unless the backend asked for them,
/// credentials.
fn request_headers(headers: &HeaderMap, forward_auth: bool) -> HeaderMap {
    let listed = connection_listed(headers);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let skip = is_hop_by_hop(name, &listed)
            || describes_the_clients_hop(name)
            || *name == header::HOST
            || *name == header::EXPECT
            || *name == header::CONTENT_LENGTH
            || *name == header::COOKIE
            || (*name == header::AUTHORIZATION && !forward_auth);
        if !skip {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The backend's headers as the client gets them, edited in place: hop-by-hop headers and
/// cookies dropped (a backend or upstream must not set cookies on the shim's host name, which the
/// marketplace may share), `Location` and `Link` pointed at the shim.
fn rewrite_response_headers(headers: &mut HeaderMap, ctx: &rewrite::Context<'_>) {
    for name in connection_listed(headers) {
        headers.remove(name.as_str());
    }
    for name in HOP_BY_HOP.iter().chain([&header::SET_COOKIE]) {
        headers.remove(name);
    }
    for name in [header::LOCATION, header::LINK] {
        let http::header::Entry::Occupied(mut entry) = headers.entry(&name) else {
            continue;
        };
        // Each value in its place: several `Link`s keep their order.
        for value in entry.iter_mut() {
            let rewritten = match value.to_str() {
                Ok(v) if name == header::LOCATION => ctx.url(v),
                Ok(v) => ctx.link(v),
                Err(_) => None,
            };
            if let Some(v) = rewritten.and_then(|v| HeaderValue::from_str(&v).ok()) {
                *value = v;
            }
        }
    }
}

/// Follows a backend's blob redirect (to object storage or a CDN) for clients that cannot reach
/// it ([`shimmer_registry::redirect`]: bounded, never with credentials). Only the client's
/// headers that shape the answer go along.
async fn follow_redirects(
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

/// Queues the manifest of a successful push, or of a pull the store may not know.
fn enqueue(
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

async fn read_limited(body: Body, limit: usize, backend: &str) -> Result<Bytes, OciError> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|error| {
            tracing::warn!(%backend, %error, "could not read list from backend");
            OciError::backend_unavailable(backend)
        })
}

/// Renames repositories in a tag list (`name`) or catalog (`repositories`) from the backend's
/// names to the shim's. A catalog keeps only repositories this backend serves for the shim.
fn translate_names(
    state: &AppState,
    routed: &Routed,
    endpoint: &Endpoint,
    list: &[u8],
) -> Result<Vec<u8>, OciError> {
    let mut value: serde_json::Value = serde_json::from_slice(list).map_err(|error| {
        tracing::warn!(backend = %routed.backend.name, %error, "backend list is not JSON");
        OciError::backend_unavailable(&routed.backend.name)
    })?;
    match endpoint {
        Endpoint::Tags { name } => {
            let Some(list) = value.as_object_mut() else {
                tracing::warn!(backend = %routed.backend.name, "backend tag list is not an object");
                return Err(OciError::backend_unavailable(&routed.backend.name));
            };
            list.insert("name".into(), serde_json::Value::String(name.clone()));
        }
        Endpoint::Catalog => {
            if let Some(repos) = value.get_mut("repositories").and_then(|r| r.as_array_mut()) {
                repos.retain_mut(|r| {
                    let Some(shim) = r
                        .as_str()
                        .and_then(|n| routed.backend.endpoint().shim_repo(n))
                    else {
                        return false;
                    };
                    let served_here = state
                        .routes
                        .route(shim)
                        .is_some_and(|b| Arc::ptr_eq(b, &routed.backend));
                    *r = serde_json::Value::String(shim.to_owned());
                    served_here
                });
            }
        }
        _ => {}
    }
    Ok(serde_json::to_vec(&value).expect("a JSON value serialises"))
}
