//! Tag lists and catalogs of a backend with a repository prefix, read whole (bounded by
//! [`LIST_LIMIT`]) and renamed into the shim's names; catalogs paged over the prefix only; tag
//! lists paged where the backend does not ([`paging`]).

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

use axum::http::request::Parts;

use super::{Routed, paging};
use crate::{AppState, backend::Backend, error::OciError, path::Endpoint};

/// Largest tag or catalog list the shim rewrites in memory.
pub(super) const LIST_LIMIT: usize = 16 * 1024 * 1024;

/// The catalog of a backend with a repository prefix is paged in shim names, and only over the
/// prefix: the client's `last` (a shim name) becomes the backend's name, and a first page starts
/// where the prefix does (names sort, so the prefix's repositories are one run of the catalog).
/// Neither the list nor its `Link` then names the backend's other repositories.
pub(super) fn catalog_query(backend: &Backend, query: Option<&str>) -> String {
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
pub(super) fn catalog_link(backend: &Backend, link: &str) -> Option<String> {
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

pub(super) async fn read_limited(
    body: Body,
    limit: usize,
    backend: &str,
) -> Result<Bytes, OciError> {
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
pub(super) fn translate_names(
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

/// A tag list paged as the client asked ([`paging`]): the new body, and the `Link` to the next
/// page when the list was cut here.
pub(super) fn page_tags(
    list: &[u8],
    page: &paging::Page,
    routed: &Routed,
    parts: &Parts,
) -> Result<(Vec<u8>, Option<String>), OciError> {
    let not_a_list = || {
        tracing::warn!(backend = %routed.backend.name, "backend tag list is not a list");
        OciError::backend_unavailable(&routed.backend.name)
    };
    let mut value: serde_json::Value = serde_json::from_slice(list).map_err(|_| not_a_list())?;
    let object = value.as_object_mut().ok_or_else(not_a_list)?;
    let tags: Vec<String> = match object.get("tags") {
        Some(serde_json::Value::Array(tags)) => tags
            .iter()
            .map(|t| t.as_str().map(str::to_owned).ok_or_else(not_a_list))
            .collect::<Result<_, _>>()?,
        Some(serde_json::Value::Null) | None => Vec::new(),
        Some(_) => return Err(not_a_list()),
    };
    let (tags, more) = paging::page(tags, page);
    let link = match (more, tags.last()) {
        (true, Some(last)) => Some(paging::next_link(parts.uri.path(), parts.uri.query(), last)),
        _ => None,
    };
    value["tags"] = serde_json::Value::from(tags);
    Ok((
        serde_json::to_vec(&value).expect("a JSON value serialises"),
        link,
    ))
}
