//! The backend URL of a request: paths set on the backend's parsed URL from validated names,
//! references and digests; upload sessions decoded from what the shim issued; cross-repository
//! mounts translated or dropped.

use axum::http::StatusCode;
use shimmer_registry::ErrorCode;
use url::Url;

use super::Routed;
use crate::{
    AppState,
    backend::Backend,
    error::OciError,
    path::{self, Endpoint},
};

pub(super) fn backend_url(
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
                        ErrorCode::BlobUploadUnknown,
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
                            ErrorCode::BlobUploadUnknown,
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
pub(super) fn mount_query(state: &AppState, backend: &Backend, query: &str) -> String {
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
