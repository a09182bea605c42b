//! A package's page (its header, its version lists and its latest version shown whole) and a
//! version's page, at `/packages/<repository>` and `/packages/<repository>/versions/<tag or
//! digest>`. A repository whose own name ends in `/versions/<x>` is found first, as a package.

use std::sync::Arc;

use askama::Template;
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};

use crate::{
    db,
    error::{Error, Result},
    http::html,
    layout::Layout,
    state::AppState,
    text::split_version_path,
    views::{self, Head, VersionBody, VersionLink},
};

#[derive(Template)]
#[template(path = "package.html")]
struct PackagePage {
    layout: Layout,
    head: Head,
    semver: Vec<VersionLink>,
    other: Vec<VersionLink>,
    untagged: Vec<VersionLink>,
    latest: Option<VersionBody>,
}

#[derive(Template)]
#[template(path = "version.html")]
struct VersionPage {
    layout: Layout,
    head: Head,
    body: VersionBody,
}

/// `/packages/<repository>` and `/packages/<repository>/versions/<tag or digest>`.
pub async fn package(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let reader = state.is_reader(&headers);
    let path = path.trim_end_matches('/');
    let page = match db::package(&state.pool, reader, path).await? {
        Some(package) => package_page(&state, &headers, reader, package).await?,
        None => version_page(&state, &headers, reader, path).await?,
    };
    Ok(html(&headers, state.page_caching(reader), None, page))
}

/// A package's page: its versions, and its latest version shown whole.
async fn package_page(
    state: &AppState,
    headers: &HeaderMap,
    reader: bool,
    package: db::Package,
) -> Result<String> {
    let pool = &state.pool;
    let rows = db::versions(pool, package.id).await?;
    let (semver, other, untagged) = views::version_lists(&package.repository, &rows);
    let latest = match package.latest_version_id {
        Some(id) => db::version_by_id(pool, id).await?,
        None => None,
    };
    let body = match &latest {
        Some(v) => {
            let label = package
                .latest_tag
                .clone()
                .unwrap_or_else(|| v.manifest_digest.clone());
            Some(body(state, headers, reader, &package.repository, &label, v).await?)
        }
        None => None,
    };
    Ok(PackagePage {
        layout: Layout::new(state, ""),
        head: views::head(state, &package, latest.as_ref()),
        semver,
        other,
        untagged,
        latest: body,
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
    let (repository, reference) = split_version_path(path)
        .ok_or_else(|| Error::not_found(format!("No package named {path} is indexed.")))?;
    let package = db::package(pool, reader, repository)
        .await?
        .ok_or_else(|| Error::not_found(format!("No package named {repository} is indexed.")))?;
    let version = db::version(pool, package.id, reference)
        .await?
        .ok_or_else(|| Error::not_found(format!("{repository} has no version {reference}.")))?;
    let body = body(
        state,
        headers,
        reader,
        &package.repository,
        reference,
        &version,
    )
    .await?;
    Ok(VersionPage {
        layout: Layout::new(state, ""),
        head: views::head(state, &package, Some(&version)),
        body,
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
    Ok(body)
}
