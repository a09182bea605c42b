//! What a `/v2` request is and where it goes, decided once before anything is sent: the
//! endpoint parsed and its method checked, `ns` (or a configured upstream host at the start of
//! the path) naming a read-only mirror, else the backend the repository routes to, else the
//! shim itself.

use std::sync::Arc;

use axum::{
    http::{Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use shimmer_registry::ErrorCode;

use super::Routed;
use crate::{
    AppState,
    error::OciError,
    path::{self, Endpoint},
    upstream::{self, Upstream},
};

/// Where a request goes.
pub(super) enum Target {
    /// A configured upstream, read through the pull API only.
    Mirror(Arc<Upstream>),
    /// The backend the repository routes to (or the ping backend, for `/v2/` and `_catalog`).
    Backend(Routed),
    /// No backend answers it: the shim does.
    Local,
}

/// The endpoint (renamed for a mirror's host-in-path form and Docker Hub's `library/`), the
/// `ns` naming a mirror, and the query without `ns`.
pub(super) fn parse(
    state: &AppState,
    parts: &Parts,
) -> Result<(Endpoint, Option<String>, Option<String>), OciError> {
    let endpoint = parse_endpoint(parts.uri.path()).map_err(|e| {
        // A tag that breaks the grammar cannot name a manifest: a read or delete of one is
        // answered as for any tag the repository lacks; only a push is an invalid manifest.
        if e.code == ErrorCode::ManifestInvalid && parts.method != Method::PUT {
            OciError::new(StatusCode::NOT_FOUND, ErrorCode::ManifestUnknown, e.message)
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
    Ok((endpoint, ns, query))
}

/// Where the request goes: the mirror `ns` names (only for reads of the pull API), else the
/// routed backend, else the shim.
pub(super) fn target(
    state: &AppState,
    endpoint: &Endpoint,
    ns: Option<&str>,
    method: &Method,
) -> Result<Target, OciError> {
    let Some(ns) = ns else {
        return Ok(resolve(state, endpoint)?.map_or(Target::Local, Target::Backend));
    };
    let up = state.upstreams.get(ns).ok_or_else(|| {
        OciError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NameUnknown,
            format!("ns {ns:?} names no upstream this registry mirrors"),
        )
    })?;
    // A mirror is read through the pull API only: no uploads (whose sessions could name any
    // path on the upstream's host, sent with the configured credentials) and no catalog of
    // the upstream's whole content.
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
    if !matches!(*method, Method::GET | Method::HEAD) {
        return Err(OciError::unsupported(
            format!("upstream {ns:?} is read-only"),
            &[Method::GET, Method::HEAD],
        ));
    }
    Ok(Target::Mirror(up.clone()))
}

pub(super) fn parse_endpoint(raw_path: &str) -> Result<Endpoint, OciError> {
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

pub(super) fn check_method(endpoint: &Endpoint, method: &Method) -> Result<(), OciError> {
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
pub(super) fn resolve(state: &AppState, endpoint: &Endpoint) -> Result<Option<Routed>, OciError> {
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
pub(super) fn local_answer(endpoint: &Endpoint) -> Response {
    let body = match endpoint {
        Endpoint::Catalog => r#"{"repositories":[]}"#,
        _ => "{}",
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
