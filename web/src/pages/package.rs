//! A package's page (its header, its latest version shown whole and its versions) and a
//! version's page (the same layout pinned to that version), at `/packages/<repository>` and `/packages/<repository>/versions/<tag or
//! digest>`. A repository whose own name ends in `/versions/<x>` is found first, as a package.

use std::sync::Arc;

use askama::Template;
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    db,
    error::{Error, Result},
    http::html,
    layout::Layout,
    lookup,
    params::Params,
    state::AppState,
    text::{split_version_path, urlencode, version_url},
    views::{self, Head, VersionBody, VersionTable},
};

/// A package's page and a version's: one layout (header, version selector, sections, side
/// panel), showing the latest version or the one `pinned`.
#[derive(Template)]
#[template(path = "package.html")]
struct PackagePage {
    layout: Layout,
    head: Head,
    versions: VersionTable,
    /// The label of the version shown (empty when there is none).
    current: String,
    pinned: bool,
    body: Option<VersionBody>,
}

/// The version selector's query (`?version=<tag or digest>`), and the diff page's
/// (`?from=&to=`).
#[derive(Debug, Deserialize)]
pub struct Choice {
    version: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `/packages/<repository>` and `/packages/<repository>/versions/<tag or digest>`; with
/// `?version=`, a redirect to that version's page (the version selector without its script).
pub async fn package(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    Params(choice): Params<Choice>,
    headers: HeaderMap,
) -> Result<Response> {
    let reader = state.is_reader(&headers);
    let path = path.trim_end_matches('/');
    if let Some(version) = check_version(choice.version.as_deref(), "version")? {
        // Every segment encoded: the path came decoded, and a `Location` takes no raw bytes.
        let repository = split_version_path(path).map_or(path, |(r, _)| r);
        let repository: Vec<String> = repository.split('/').map(urlencode).collect();
        let to = version_url(&repository.join("/"), &urlencode(&version));
        return Ok(Redirect::to(&to).into_response());
    }
    let page = match db::package(&state.pool, reader, path).await? {
        Some(package) => package_page(&state, &headers, reader, package).await?,
        None => match path.strip_suffix("/diff") {
            Some(repository) => {
                let package = lookup::package(&state.pool, reader, repository).await?;
                let from = check_version(choice.from.as_deref(), "from")?;
                let to = check_version(choice.to.as_deref(), "to")?;
                super::diff::page(&state, package, from.as_deref(), to.as_deref()).await?
            }
            None => match super::api_page::split_api_path(path) {
                Some(api) => super::api_page::page(&state, reader, api).await?,
                None => version_page(&state, &headers, reader, path).await?,
            },
        },
    };
    Ok(html(&headers, state.page_caching(reader), None, page))
}

/// A version the query names as `name`, if it does: a tag or a digest, at most 150
/// characters.
fn check_version(value: Option<&str>, name: &str) -> Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.len() <= 150 && !v.contains('/') => Ok(Some(v.to_owned())),
        Some(_) => Err(Error::bad_request(format!(
            "{name} must be one of the package's tags or digests."
        ))),
    }
}

/// A package's page: its latest version shown whole, and its versions.
async fn package_page(
    state: &AppState,
    headers: &HeaderMap,
    reader: bool,
    package: db::Package,
) -> Result<String> {
    let pool = &state.pool;
    let rows = db::versions(pool, package.id).await?;
    let latest = match package.latest_version_id {
        Some(id) => db::version_by_id(pool, id).await?,
        None => None,
    };
    let (current, body) = match &latest {
        Some(v) => {
            let label = package
                .latest_tag
                .clone()
                .unwrap_or_else(|| v.manifest_digest.clone());
            let body = body(state, headers, reader, &package.repository, &label, v).await?;
            (label, Some(body))
        }
        None => (String::new(), None),
    };
    Ok(PackagePage {
        layout: Layout::new(state),
        head: views::head(state, &package, latest.as_ref()),
        versions: views::version_table(&package.repository, &rows),
        current,
        pinned: false,
        body,
    }
    .render()?)
}

/// A version's page, `path` being `<repository>/versions/<tag or digest>`.
async fn version_page(
    state: &AppState,
    headers: &HeaderMap,
    reader: bool,
    path: &str,
) -> Result<String> {
    let pool = &state.pool;
    let (package, version, reference) = lookup::version_at(pool, reader, path).await?;
    let rows = db::versions(pool, package.id).await?;
    let body = body(
        state,
        headers,
        reader,
        &package.repository,
        reference,
        &version,
    )
    .await?;
    Ok(PackagePage {
        layout: Layout::new(state),
        head: views::head(state, &package, Some(&version)),
        versions: views::version_table(&package.repository, &rows),
        current: reference.to_owned(),
        pinned: true,
        body: Some(body),
    }
    .render()?)
}

/// Version `v` of `repository`, reached as `label`, with its documents rendered.
async fn body(
    state: &AppState,
    headers: &HeaderMap,
    reader: bool,
    repository: &str,
    label: &str,
    v: &db::Version,
) -> Result<VersionBody> {
    let loaded = views::load(&state.pool, reader, v).await?;
    let host = state.registry_host(headers);
    let mut body = views::version_body(state, &host, repository, label, v, loaded);
    views::documents(state, v, &mut body).await?;
    body.since = db::stored_diff(&state.pool, v.id)
        .await?
        .map(|d| views::since(repository, label, &d));
    Ok(body)
}
