//! `/api/v1`: the catalogue as JSON, with the pages' caching rules. Handlers fail with the
//! crate's [`Error`], which [`crate::layers::render_errors`] gives the API's envelope,
//! `{"error": {"status": 404, "message": "..."}}`. Reads through [`crate::db`] and shapes with
//! [`crate::views`] as the pages do, and uses nothing of the pages themselves.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};
use serde_json::{Value, json};
use shimmer_store::packages::tag_semver;

use crate::{
    compare, db,
    error::{Error, Result},
    http::{Caching, cached},
    lookup,
    params::{
        ApisParams, PageParams, Params, SearchParams, check_page, check_page_size, check_search,
        parse_docs_id,
    },
    state::AppState,
    text::{package_url, summary, version_url},
    views,
};

/// A JSON answer with the caching headers of `caching`.
fn json_response(
    headers: &HeaderMap,
    caching: Caching,
    etag: Option<&str>,
    value: &Value,
) -> Response {
    cached(
        headers,
        caching,
        etag,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// Any other address under `/api/v1`.
pub async fn not_found() -> Error {
    Error::not_found("No such API endpoint.")
}

/// `GET /api/v1/packages`: the recently indexed packages.
pub async fn packages(
    State(state): State<Arc<AppState>>,
    Params(params): Params<PageParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let page = check_page(params.page.as_deref())?;
    let size = check_page_size(params.page_size.as_deref(), PACKAGES_PAGE)?;
    let reader = state.is_reader(&headers);
    let total = db::package_count(&state.pool, reader).await?;
    let list = db::package_list(
        &state.pool,
        reader,
        db::ListOrder::Recent,
        size,
        (page - 1) * size,
    )
    .await?;
    let packages: Vec<Value> = list
        .iter()
        .map(|p| {
            json!({"repository": p.repository, "package_type": p.package_type, "name": p.name,
                   "latest_version": p.latest_tag,
                   "description": p.description.as_deref().map(summary),
                   "url": package_url(&p.repository)})
        })
        .collect();
    Ok(json_response(
        &headers,
        state.page_caching(reader),
        None,
        &json!({ "total": total, "page": page, "page_size": size, "packages": packages }),
    ))
}

/// Packages a page of `/api/v1/packages` lists unless its `page_size` says otherwise.
const PACKAGES_PAGE: i64 = 100;

/// `GET /api/v1/packages/{repository}`, `.../versions/{version}` and `.../diff?from=&to=`.
pub async fn package(
    State(state): State<Arc<AppState>>,
    Path(path): Path<String>,
    query: Result<Params<DiffQuery>, Error>,
    headers: HeaderMap,
) -> Result<Response> {
    let reader = state.is_reader(&headers);
    let path = path.trim_end_matches('/');
    let value = match db::package(&state.pool, reader, path).await? {
        Some(package) => package_json(&state, package).await?,
        None => match path.strip_suffix("/diff") {
            Some(repository) => {
                // Its query is read here alone: other addresses ignore theirs, as before.
                let Params(query) = query?;
                diff_json(&state, reader, repository, &query).await?
            }
            None => version_json(&state, &headers, reader, path).await?,
        },
    };
    Ok(json_response(
        &headers,
        state.page_caching(reader),
        None,
        &value,
    ))
}

/// A package with its versions.
async fn package_json(state: &AppState, p: db::Package) -> Result<Value> {
    let rows = db::versions(&state.pool, p.id).await?;
    let (semver, other, untagged) = views::version_lists(&p.repository, &rows);
    let versions: Vec<Value> = semver
        .iter()
        .chain(&other)
        .chain(&untagged)
        .map(|l| {
            json!({"version": l.label, "manifest_digest": l.manifest_digest, "kind": l.kind,
                   "indexed_at": l.indexed_at, "url": l.url,
                   "api_url": format!("/api/v1{}", l.url)})
        })
        .collect();
    Ok(json!({
        "repository": p.repository, "package_type": p.package_type, "name": p.name,
        "description": p.description, "maintainer": p.maintainer, "visibility": p.visibility,
        "latest_version": p.latest_tag, "url": package_url(&p.repository),
        "pulls": p.pulls, "versions": versions,
    }))
}

/// A version, `path` being `<repository>/versions/<tag or digest>`.
async fn version_json(
    state: &AppState,
    headers: &HeaderMap,
    reader: bool,
    path: &str,
) -> Result<Value> {
    let pool = &state.pool;
    let (p, v, reference) = lookup::version_at(pool, reader, path).await?;
    let loaded = views::load(pool, reader, &v).await?;
    let objects: Vec<Value> = loaded
        .contents
        .iter()
        .map(|c| {
            json!({"digest": c.digest, "apiVersion": c.api_version, "kind": c.kind,
                   "name": c.name, "class": c.class, "docs_url": state.docs_url(&c.digest)})
        })
        .collect();
    let host = state.registry_host(headers);
    let body = views::version_body(state, &host, &p.repository, reference, &v, loaded);
    let changes_since = db::stored_diff(pool, v.id).await?.map(|d| {
        let since = views::since(&p.repository, reference, &d);
        json!({"from": since.from, "breaking": d.breaking, "warnings": d.warnings,
               "total": d.total, "diff_url": since.diff_url})
    });
    Ok(json!({
        "repository": p.repository, "version": reference, "url": version_url(&p.repository, reference),
        "tags": v.tags, "manifest_digest": v.manifest_digest, "index_digest": v.index_digest,
        "platforms": v.platforms, "platform_of": body.platform_of,
        "kind": v.kind, "package_type": v.package_type, "media_type": v.media_type,
        "artifact_type": v.artifact_type, "rejection": v.rejection,
        "crossplane_version": v.crossplane_version, "meta": v.meta, "lint": v.lint,
        "dependencies": body.dependencies, "apis": body.apis, "examples": body.examples,
        "contents_digest": v.contents_digest, "objects": objects,
        "bytes_downloaded": v.bytes_downloaded, "image_bytes": v.image_bytes,
        "indexed_at": v.indexed_at, "install": body.install, "changes_since": changes_since,
    }))
}

/// `GET /api/v1/packages/{repository}/diff?from=&to=`: the changes between two versions, the
/// object `shimmer diff --json` prints.
async fn diff_json(
    state: &AppState,
    reader: bool,
    repository: &str,
    query: &DiffQuery,
) -> Result<Value> {
    let p = lookup::package(&state.pool, reader, repository).await?;
    let c = compare::between(&state.pool, &p, query.from.as_deref(), query.to.as_deref()).await?;
    Ok(serde_json::to_value(&c.report).unwrap_or(Value::Null))
}

/// The query of `/api/v1/packages/{repository}/diff`: `from` and `to`, nothing else.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /api/v1/search?q=&type=&group=&page=`.
pub async fn search(
    State(state): State<Arc<AppState>>,
    Params(params): Params<SearchParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let search = check_search(&params)?;
    if search.q.is_empty() {
        return Err(Error::bad_request("q is required."));
    }
    let size = check_page_size(params.page_size.as_deref(), i64::from(state.page_size))?;
    let reader = state.is_reader(&headers);
    let (hits, total) = db::search_page(&state.pool, reader, search.query(size)).await?;
    let hits: Vec<Value> = hits
        .iter()
        .map(|h| {
            let mut v = serde_json::to_value(h).unwrap_or(Value::Null);
            v["url"] = Value::from(match &h.version {
                Some(ver) => version_url(&h.repository, ver),
                None => package_url(&h.repository),
            });
            if let Some(d) = &h.object_digest {
                v["docs_url"] = Value::from(state.docs_url(d));
            }
            // Lists carry a summary; the package's own answer the whole description.
            if let Some(d) = &h.description {
                v["description"] = Value::from(summary(d));
            }
            v
        })
        .collect();
    let (q, page) = (&search.q, search.page);
    let value = json!({"q": q, "page": page, "page_size": size, "total": total, "hits": hits});
    Ok(json_response(
        &headers,
        state.page_caching(reader),
        None,
        &value,
    ))
}

/// `GET /api/v1/objects/{digest}`: a stored object, immutable.
pub async fn object(
    State(state): State<Arc<AppState>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let (digest, _) = parse_docs_id(&digest)
        .filter(|(_, f)| *f == "html")
        .ok_or_else(|| Error::bad_request("Objects are named by sha256:<64 hex digits>."))?;
    let reader = state.is_reader(&headers);
    let (o, public) = lookup::object(&state.pool, reader, digest).await?;
    let value = json!({"digest": o.digest, "apiVersion": o.api_version, "kind": o.kind,
                       "name": o.name, "class": o.class, "size_bytes": o.size_bytes,
                       "docs_url": state.docs_url(&o.digest), "body": o.body});
    Ok(json_response(
        &headers,
        Caching::Immutable { public },
        Some(digest),
        &value,
    ))
}

/// `GET /api/v1/status`: job counts (`rejected` apart from `done`), the latest rejected versions
/// with their reasons, and for readers the open jobs with their errors.
pub async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response> {
    let reader = state.is_reader(&headers);
    let counts: serde_json::Map<String, Value> = db::job_counts(&state.pool)
        .await?
        .into_iter()
        .map(|(s, n)| (s, Value::from(n)))
        .collect();
    let rejections = db::latest_rejections(&state.pool, reader, 20).await?;
    let mut value = json!({ "counts": counts, "rejections": rejections });
    if reader {
        value["jobs"] =
            serde_json::to_value(db::open_jobs(&state.pool, 200).await?).unwrap_or(Value::Null);
    }
    Ok(json_response(
        &headers,
        Caching::Page {
            max_age: 0,
            public: !reader,
        },
        None,
        &value,
    ))
}

/// Most definitions one `/api/v1/apis` answer lists.
const APIS_LIMIT: i64 = 1000;

/// `GET /api/v1/apis?group=&kind=`: API types by group and/or kind (one is required), each with
/// the package versions that define it and the docs URL of each distinct definition.
pub async fn apis(
    State(state): State<Arc<AppState>>,
    Params(params): Params<ApisParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let group = Some(params.group.trim()).filter(|g| !g.is_empty());
    let kind = Some(params.kind.trim()).filter(|k| !k.is_empty());
    if group.is_none() && kind.is_none() {
        return Err(Error::bad_request("group or kind is required."));
    }
    if group.is_some_and(|g| g.len() > 253) || kind.is_some_and(|k| k.len() > 253) {
        return Err(Error::bad_request(
            "group and kind are at most 253 characters.",
        ));
    }
    let reader = state.is_reader(&headers);
    // One more than shown, so `truncated` says whether more exist, not that the limit was hit.
    let mut rows = db::api_definitions(&state.pool, reader, group, kind, APIS_LIMIT + 1).await?;
    let truncated = rows.len() as i64 > APIS_LIMIT;
    rows.truncate(APIS_LIMIT as usize);
    // Each package's definitions newest release first, by semver (untagged and other tags
    // after, newest indexed first).
    rows.sort_by(|a, b| {
        (&a.api_group, &a.kind, &a.repository)
            .cmp(&(&b.api_group, &b.kind, &b.repository))
            .then_with(|| newest_semver(&b.tags).cmp(&newest_semver(&a.tags)))
    });
    let mut apis: Vec<Value> = Vec::new();
    for r in &rows {
        let version = views::preferred_tag("", &r.tags)
            .map(str::to_owned)
            .unwrap_or_else(|| r.manifest_digest.clone());
        let definer = json!({
            "repository": r.repository, "package_type": r.package_type, "version": version,
            "tags": r.tags, "manifest_digest": r.manifest_digest,
            "url": version_url(&r.repository, &version),
            "object_digest": r.object_digest, "docs_url": state.docs_url(&r.object_digest),
            "served_versions": r.served_versions, "storage_version": r.storage_version,
            "deprecated": r.deprecated,
        });
        let same = apis
            .last()
            .is_some_and(|a| a["group"] == r.api_group.as_str() && a["kind"] == r.kind.as_str());
        if !same {
            apis.push(
                json!({"group": r.api_group, "kind": r.kind, "plural": r.plural,
                             "scope": r.scope, "definitions": []}),
            );
        }
        let api = apis.last_mut().expect("pushed above");
        api["definitions"]
            .as_array_mut()
            .expect("an array")
            .push(definer);
    }
    Ok(json_response(
        &headers,
        state.page_caching(reader),
        None,
        &json!({"group": group, "kind": kind, "truncated": truncated, "apis": apis}),
    ))
}

/// The highest semver among `tags`, if any is one.
fn newest_semver(tags: &[String]) -> Option<semver::Version> {
    tags.iter().filter_map(|t| tag_semver(t)).max()
}
