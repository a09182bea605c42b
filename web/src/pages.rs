//! The HTML pages.

use std::sync::Arc;

use askama::Template;
use axum::{
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    AppState, db,
    http::{Caching, WebError, cached},
    render::Renderer,
    schema,
    views::{
        self, Head, VersionBody, VersionLink, package_url, split_version_path, urlencode,
        version_url,
    },
};

/// What the base layout needs.
pub struct Layout {
    pub css: String,
    pub js: String,
    pub q: String,
}

impl Layout {
    fn new(state: &AppState, q: &str) -> Self {
        Self {
            css: state.assets.css_url.clone(),
            js: state.assets.js_url.clone(),
            q: q.to_owned(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: String,
    message: String,
}

/// An error as a page (never the internal cause: that is logged where it happens).
pub struct PageError {
    state: Arc<AppState>,
    error: WebError,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        error_page(&self.state, self.error.status, &self.error.message)
    }
}

pub fn error_page(state: &AppState, status: StatusCode, message: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::new(state, ""),
        status: format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        ),
        message: message.to_owned(),
    };
    let body = page
        .render()
        .unwrap_or_else(|_| format!("{} {message}", status.as_u16()));
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub fn not_found_page(state: &AppState, message: &str) -> Response {
    error_page(state, StatusCode::NOT_FOUND, message)
}

pub async fn not_found(State(state): State<Arc<AppState>>) -> Response {
    not_found_page(&state, "There is no page at this address.")
}

trait OrPage<T> {
    fn or_page(self, state: &Arc<AppState>) -> Result<T, PageError>;
}

impl<T, E: Into<WebError>> OrPage<T> for Result<T, E> {
    fn or_page(self, state: &Arc<AppState>) -> Result<T, PageError> {
        self.map_err(|e| PageError {
            state: state.clone(),
            error: e.into(),
        })
    }
}

pub fn page_caching(state: &AppState, reader: bool) -> Caching {
    Caching::Page {
        max_age: state.page_max_age.as_secs(),
        public: !reader,
    }
}

fn html(headers: &HeaderMap, caching: Caching, etag: Option<&str>, body: String) -> Response {
    cached(headers, caching, etag, "text/html; charset=utf-8", body)
}

pub struct Card {
    pub url: String,
    pub title: String,
    /// Shown under the title: two repositories may give their packages one name.
    pub repository: String,
    pub package_type: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
}

impl Card {
    fn new(state: &AppState, p: db::PackageSummary) -> Self {
        Card {
            url: package_url(&p.repository),
            title: p
                .name
                .as_deref()
                .map(views::plain_text)
                .unwrap_or_else(|| p.repository.clone()),
            repository: p.repository,
            package_type: p.package_type,
            version: p.latest_tag,
            description: p.description.as_deref().map(views::summary),
            icon: p
                .icon_digest
                .map(|d| format!("{}/icons/{d}", state.public_base)),
        }
    }
}

#[derive(Template)]
#[template(path = "packages.html")]
struct PackagesPage {
    layout: Layout,
    total: i64,
    first: i64,
    last: i64,
    packages: Vec<Card>,
    prev: Option<String>,
    next: Option<String>,
}

/// `/packages`: every package a request may see, by repository name, a page at a time.
pub async fn packages(
    State(state): State<Arc<AppState>>,
    params: Result<Query<PageParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(query_error).or_page(&state)?;
    let page = check_page(params.page.as_deref()).or_page(&state)?;
    let reader = state.is_reader(&headers);
    let size = i64::from(state.page_size);
    let total = db::package_count(&state.pool, reader)
        .await
        .or_page(&state)?;
    let list = db::package_list(
        &state.pool,
        reader,
        db::ListOrder::Repository,
        size,
        (page - 1) * size,
    )
    .await
    .or_page(&state)?;
    let body = PackagesPage {
        layout: Layout::new(&state, ""),
        total,
        first: (page - 1) * size + 1,
        last: (page - 1) * size + list.len() as i64,
        packages: list.into_iter().map(|p| Card::new(&state, p)).collect(),
        prev: (page > 1).then(|| format!("/packages?page={}", page - 1)),
        next: (page * size < total).then(|| format!("/packages?page={}", page + 1)),
    }
    .render()
    .or_page(&state)?;
    Ok(html(&headers, page_caching(&state, reader), None, body))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    counts: db::Counts,
    recent: Vec<Card>,
}

pub async fn home(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let reader = state.is_reader(&headers);
    let counts = db::counts(&state.pool, reader).await.or_page(&state)?;
    let recent = db::recent(&state.pool, reader, 12)
        .await
        .or_page(&state)?
        .into_iter()
        .map(|p| Card::new(&state, p))
        .collect();
    let body = HomePage {
        layout: Layout::new(&state, ""),
        counts,
        recent,
    }
    .render()
    .or_page(&state)?;
    Ok(html(&headers, page_caching(&state, reader), None, body))
}

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
) -> Result<Response, PageError> {
    let reader = state.is_reader(&headers);
    let pool = &state.pool;
    let path = path.trim_end_matches('/');
    if let Some(package) = db::package(pool, reader, path).await.or_page(&state)? {
        let rows = db::versions(pool, package.id).await.or_page(&state)?;
        let (semver, other, untagged) = views::version_lists(&package.repository, &rows);
        let latest = match package.latest_version_id {
            Some(id) => db::version_by_id(pool, id).await.or_page(&state)?,
            None => None,
        };
        let body = match &latest {
            Some(v) => {
                let loaded = views::load(pool, reader, v).await.or_page(&state)?;
                let label = package
                    .latest_tag
                    .clone()
                    .unwrap_or_else(|| v.manifest_digest.clone());
                let mut body = views::version_body(
                    &state,
                    &state.registry_host(&headers),
                    &package.repository,
                    &label,
                    v,
                    loaded,
                );
                views::documents(&state, v, &mut body)
                    .await
                    .or_page(&state)?;
                Some(body)
            }
            None => None,
        };
        let page = PackagePage {
            layout: Layout::new(&state, ""),
            head: views::head(&state, &package, latest.as_ref()),
            semver,
            other,
            untagged,
            latest: body,
        }
        .render()
        .or_page(&state)?;
        return Ok(html(&headers, page_caching(&state, reader), None, page));
    }
    let Some((repository, reference)) = split_version_path(path) else {
        return Err(WebError::not_found(format!(
            "No package named {path} is indexed."
        )))
        .or_page(&state);
    };
    let Some(package) = db::package(pool, reader, repository)
        .await
        .or_page(&state)?
    else {
        return Err(WebError::not_found(format!(
            "No package named {repository} is indexed."
        )))
        .or_page(&state);
    };
    let Some(version) = db::version(pool, package.id, reference)
        .await
        .or_page(&state)?
    else {
        return Err(WebError::not_found(format!(
            "{repository} has no version {reference}."
        )))
        .or_page(&state);
    };
    let loaded = views::load(pool, reader, &version).await.or_page(&state)?;
    let mut body = views::version_body(
        &state,
        &state.registry_host(&headers),
        &package.repository,
        reference,
        &version,
        loaded,
    );
    views::documents(&state, &version, &mut body)
        .await
        .or_page(&state)?;
    let page = VersionPage {
        layout: Layout::new(&state, ""),
        head: views::head(&state, &package, Some(&version)),
        body,
    }
    .render()
    .or_page(&state)?;
    // A version named by digest never changes: its page may be cached long.
    Ok(html(&headers, page_caching(&state, reader), None, page))
}

/// A `sha256:<64 hex>` digest, and the representation asked for (`html`, `yaml`, `json`).
pub fn parse_docs_id(id: &str) -> Option<(&str, &str)> {
    let (digest, format) = match id.rsplit_once('.') {
        Some((d, f @ ("yaml" | "json"))) => (d, f),
        _ => (id, "html"),
    };
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some((digest, format))
}

pub struct ApiFacts {
    pub group: String,
    pub kind: String,
    /// A search for `Kind.group`: the packages that define it (not in the page itself, which is
    /// immutable while that list grows).
    pub definers_url: String,
    pub claim_kind: Option<String>,
    pub plural: Option<String>,
    pub scope: Option<String>,
    pub short_names: String,
}

pub struct ExampleYaml {
    pub label: String,
    /// Its YAML, unless past the page's budget ([`MAX_PAGE_EXAMPLE_BYTES`]).
    pub yaml: Option<Arc<str>>,
    /// Its own docs page.
    pub url: String,
}

/// The search for an API type by `Kind.group`, which ranks its definitions first.
fn kind_search(kind: &str, group: &str) -> String {
    format!("/search?q={}", urlencode(&format!("{kind}.{group}")))
}

pub struct CompositionView {
    pub composite: String,
    /// A search for the composite type: its XRD and the packages defining it.
    pub composite_url: Option<String>,
    pub mode: String,
    pub steps: Vec<(String, String)>,
    pub resources: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage {
    layout: Layout,
    title: String,
    class: String,
    api_version: String,
    digest: String,
    yaml_url: String,
    json_url: String,
    api: Option<ApiFacts>,
    /// Every version's section, rendered by [`schema::render_versions`].
    versions: Arc<str>,
    examples: Vec<ExampleYaml>,
    composition: Option<CompositionView>,
    /// The source as YAML, when it is at most [`MAX_INLINE_YAML_BYTES`] of JSON.
    yaml: Option<Arc<str>>,
}

/// Bytes of an object's JSON up to which its docs page shows its YAML inline (beyond, it links
/// the YAML and JSON).
pub const MAX_INLINE_YAML_BYTES: usize = 1024 * 1024;
/// Bytes of example YAML a docs page shows inline; later examples are linked.
pub const MAX_PAGE_EXAMPLE_BYTES: usize = 1024 * 1024;

pub fn to_yaml(v: &Value) -> String {
    serde_saphyr::to_string(v)
        .unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default())
}

/// `/docs/sha256:<hex>` (and `.yaml`, `.json`): an object's docs, immutable.
pub async fn docs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some((digest, format)) = parse_docs_id(&id) else {
        return Err(WebError::not_found(
            "Docs addresses look like /docs/sha256:<64 hex digits>.",
        ))
        .or_page(&state);
    };
    let reader = state.is_reader(&headers);
    let Some((object, public)) = db::object(&state.pool, reader, digest)
        .await
        .or_page(&state)?
    else {
        return Err(WebError::not_found(format!(
            "No object {digest} is indexed."
        )))
        .or_page(&state);
    };
    let caching = Caching::Immutable { public };
    let mut etag = digest.to_owned();
    let mut public = public;
    match format {
        "json" => {
            let body = serde_json::to_vec_pretty(&object.body).unwrap_or_default();
            return Ok(cached(
                &headers,
                caching,
                Some(digest),
                "application/json",
                body,
            ));
        }
        "yaml" => {
            return Ok(cached(
                &headers,
                caching,
                Some(digest),
                "application/yaml; charset=utf-8",
                to_yaml(&object.body),
            ));
        }
        _ => {}
    }
    let yaml_url = format!("{}.yaml", state.docs_url(digest));
    let json_url = format!("{}.json", state.docs_url(digest));
    let body = Arc::new(object.body);
    let mut api = None;
    let mut versions: Arc<str> = Arc::from("");
    let mut examples = Vec::new();
    let mut composition = None;
    let title;
    if matches!(object.class.as_str(), "crd" | "xrd") {
        let group = body["spec"]["group"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let kind = body["spec"]["names"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        title = format!("{kind} ({group})");
        let key = Renderer::key("schema-versions", &[digest.as_bytes(), yaml_url.as_bytes()]);
        let (b, url) = (body.clone(), yaml_url.clone());
        versions = state
            .render
            .html(key, move || schema::render_versions(&b, &url))
            .await
            .or_page(&state)?;
        let (found, from_public) = db::examples_for(&state.pool, reader, digest, &group, &kind)
            .await
            .or_page(&state)?;
        // Examples from a private package: this body is a reader's only, with its own tag.
        if !from_public {
            public = false;
            etag = format!("{digest}-private");
        }
        let mut budget = MAX_PAGE_EXAMPLE_BYTES;
        for e in found {
            let name = e.body["metadata"]["name"].as_str().unwrap_or_default();
            let label = format!(
                "{} {}",
                e.api_version.as_deref().unwrap_or_default(),
                e.example_id.as_deref().unwrap_or(name)
            );
            let mut yaml = None;
            if budget > 0 {
                let example = e.body;
                let text = state
                    .render
                    .html(
                        Renderer::key("yaml", &[e.object_digest.as_bytes()]),
                        move || to_yaml(&example),
                    )
                    .await
                    .or_page(&state)?;
                budget = budget.saturating_sub(text.len());
                yaml = (budget > 0).then_some(text);
            }
            examples.push(ExampleYaml {
                label,
                yaml,
                url: state.docs_url(&e.object_digest),
            });
        }
        api = Some(ApiFacts {
            // An XRD's claim (`XCluster` offers `Cluster` in namespaces).
            claim_kind: body["spec"]["claimNames"]["kind"]
                .as_str()
                .map(str::to_owned),
            plural: body["spec"]["names"]["plural"].as_str().map(str::to_owned),
            scope: body["spec"]["scope"].as_str().map(str::to_owned),
            short_names: body["spec"]["names"]["shortNames"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default(),
            definers_url: kind_search(&kind, &group),
            group,
            kind,
        });
    } else {
        title = format!(
            "{} {}",
            object.kind,
            object.name.as_deref().unwrap_or_default()
        );
        if object.class == "composition" {
            composition = Some(composition_view(&body));
        }
    }
    let yaml = if object.size_bytes as usize <= MAX_INLINE_YAML_BYTES {
        let b = body.clone();
        let text = state
            .render
            .html(Renderer::key("yaml", &[digest.as_bytes()]), move || {
                to_yaml(&b)
            })
            .await
            .or_page(&state)?;
        Some(text)
    } else {
        None
    };
    let page = DocsPage {
        layout: Layout::new(&state, ""),
        title,
        class: object.class.clone(),
        api_version: object.api_version.clone(),
        digest: digest.to_owned(),
        yaml_url,
        json_url,
        api,
        versions,
        examples,
        composition,
        yaml,
    }
    .render()
    .or_page(&state)?;
    Ok(html(
        &headers,
        Caching::Immutable { public },
        Some(&etag),
        page,
    ))
}

/// What a Composition composes: its composite type, its mode, its function pipeline and the
/// resources it (or a patch-and-transform step) names.
pub fn composition_view(body: &Value) -> CompositionView {
    let spec = &body["spec"];
    let composite = format!(
        "{} {}",
        spec["compositeTypeRef"]["kind"]
            .as_str()
            .unwrap_or_default(),
        spec["compositeTypeRef"]["apiVersion"]
            .as_str()
            .unwrap_or_default()
    );
    let type_ref = &spec["compositeTypeRef"];
    let composite_url = match (type_ref["kind"].as_str(), type_ref["apiVersion"].as_str()) {
        (Some(kind), Some(api_version)) if !kind.is_empty() => {
            let group = api_version.split_once('/').map_or("", |(g, _)| g);
            Some(kind_search(kind, group))
        }
        _ => None,
    };
    let mode = spec["mode"].as_str().map(str::to_owned).unwrap_or_else(|| {
        if spec["pipeline"].is_array() {
            "Pipeline"
        } else {
            "Resources"
        }
        .into()
    });
    let mut steps = Vec::new();
    let mut resources = Vec::new();
    let mut add_resources = |list: &Value| {
        for r in list.as_array().into_iter().flatten() {
            let base = &r["base"];
            resources.push((
                r["name"].as_str().unwrap_or("(unnamed)").to_owned(),
                format!(
                    "{} {}",
                    base["kind"].as_str().unwrap_or_default(),
                    base["apiVersion"].as_str().unwrap_or_default()
                ),
            ));
        }
    };
    add_resources(&spec["resources"]);
    for step in spec["pipeline"].as_array().into_iter().flatten() {
        steps.push((
            step["step"].as_str().unwrap_or_default().to_owned(),
            step["functionRef"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ));
        add_resources(&step["input"]["resources"]);
    }
    CompositionView {
        composite,
        composite_url,
        mode,
        steps,
        resources,
    }
}

/// `/icons/<manifest digest>`: a version's icon, only as an image: a raster data URI is served
/// with its own type, an SVG with a policy that forbids scripts and everything else.
pub async fn icon(
    State(state): State<Arc<AppState>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let reader = state.is_reader(&headers);
    let row = db::icon(&state.pool, reader, &digest)
        .await
        .or_page(&state)?;
    let Some((uri, data, public)) = row else {
        return Err(WebError::not_found("No such icon.")).or_page(&state);
    };
    let Some((content_type, bytes)) = decode_icon(uri.as_deref(), data.as_deref()) else {
        return Err(WebError::not_found(
            "This package's icon is not an image shimmer serves.",
        ))
        .or_page(&state);
    };
    let mut resp = cached(
        &headers,
        Caching::Immutable { public },
        Some(&digest),
        content_type,
        bytes,
    );
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    Ok(resp)
}

const ICON_LIMIT: usize = 1024 * 1024;

/// The image type and bytes of an icon data URI (`data:image/png;base64,...`) or of old
/// packages' bare base64 `iconData`, recognised by its magic bytes. Anything else: `None`.
pub fn decode_icon(uri: Option<&str>, data: Option<&str>) -> Option<(&'static str, Vec<u8>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = if let Some(rest) = uri.and_then(|u| u.strip_prefix("data:")) {
        let (params, payload) = rest.split_once(',')?;
        if params.ends_with(";base64") {
            b64.decode(payload.trim()).ok()?
        } else {
            url::form_urlencoded::parse(payload.as_bytes())
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.into_owned()
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect::<String>()
                .into_bytes()
        }
    } else {
        b64.decode(data?.trim()).ok()?
    };
    if bytes.len() > ICON_LIMIT {
        return None;
    }
    let t = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF8") {
        "image/gif"
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).contains("<svg") {
        "image/svg+xml"
    } else {
        return None;
    };
    Some((t, bytes))
}

/// A `page` parameter: absent or empty is 1; else a number from 1 to 1000.
pub fn check_page(page: Option<&str>) -> Result<i64, WebError> {
    match page {
        None | Some("") => Ok(1),
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=1000).contains(p))
            .ok_or_else(|| WebError::bad_request("page must be a number from 1 to 1000.")),
    }
}

/// The size of a page of a JSON list, `page_size` in its query string: 1 to 100, `default`
/// when absent. (Pages use `web.page_size`; a browser has no use for choosing.)
pub fn check_page_size(page_size: Option<&str>, default: i64) -> Result<i64, WebError> {
    match page_size {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|s| (1..=100).contains(s))
            .ok_or_else(|| WebError::bad_request("page_size must be a number from 1 to 100.")),
    }
}

/// A list's query string: its page (and, in the JSON API, the page's size).
#[derive(Debug, Deserialize, Default)]
pub struct PageParams {
    pub page: Option<String>,
    pub page_size: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    pub q: String,
    #[serde(default, rename = "type")]
    pub package_type: String,
    #[serde(default)]
    pub group: String,
    pub page: Option<String>,
    pub page_size: Option<String>,
}

pub const PACKAGE_TYPES: [&str; 3] = ["Provider", "Configuration", "Function"];

/// Search parameters after checking.
pub struct CheckedSearch {
    pub q: String,
    pub package_type: Option<&'static str>,
    pub group: Option<String>,
    pub page: i64,
}

/// Checked search parameters: query text up to 256 characters, a known package type, a page
/// number from 1 to 1000.
pub fn check_search(params: &SearchParams) -> Result<CheckedSearch, WebError> {
    let q = params.q.trim().to_owned();
    if q.chars().count() > 256 {
        return Err(WebError::bad_request(
            "The query is longer than 256 characters.",
        ));
    }
    let package_type = match params.package_type.as_str() {
        "" => None,
        t => Some(
            PACKAGE_TYPES
                .iter()
                .find(|p| p.eq_ignore_ascii_case(t))
                .copied()
                .ok_or_else(|| {
                    WebError::bad_request(format!(
                        "type must be one of {}.",
                        PACKAGE_TYPES.join(", ")
                    ))
                })?,
        ),
    };
    let group = Some(params.group.trim().to_owned()).filter(|g| !g.is_empty());
    // The API group field alone is a search for that group (its kinds rank first).
    let q = match (&group, q.is_empty()) {
        (Some(g), true) => g.clone(),
        _ => q,
    };
    let page = check_page(params.page.as_deref())?;
    Ok(CheckedSearch {
        q,
        package_type,
        group,
        page,
    })
}

pub struct HitView {
    pub hit_type: String,
    pub repository: String,
    pub version: Option<String>,
    pub package_type: Option<String>,
    pub description: Option<String>,
    pub group: String,
    pub kind: String,
    pub docs_url: String,
    pub package_url: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    package_type: String,
    group: String,
    types: [&'static str; 3],
    total: i64,
    first: i64,
    hits: Vec<HitView>,
    prev: Option<String>,
    next: Option<String>,
}

/// One page of search hits (the page size is the configuration's) and the number of hits on
/// all pages.
pub async fn run_search(
    state: &AppState,
    reader: bool,
    q: &str,
    package_type: Option<&str>,
    group: Option<&str>,
    page: i64,
    size: i64,
) -> sqlx::Result<(Vec<db::SearchHit>, i64)> {
    let mut query = db::Query {
        q,
        package_type,
        group,
        limit: size,
        offset: (page - 1) * size,
    };
    let hits = db::search(&state.pool, reader, &query).await?;
    let total = match hits.first() {
        Some(hit) => hit.total,
        // Past the last page the total rides on no row: count from the first.
        None if query.offset > 0 => {
            query.limit = 1;
            query.offset = 0;
            let first = db::search(&state.pool, reader, &query).await?;
            first.first().map_or(0, |h| h.total)
        }
        None => 0,
    };
    Ok((hits, total))
}

pub async fn search(
    State(state): State<Arc<AppState>>,
    params: Result<Query<SearchParams>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Query(params) = params.map_err(query_error).or_page(&state)?;
    let CheckedSearch {
        q,
        package_type,
        group,
        page,
    } = check_search(&params).or_page(&state)?;
    let reader = state.is_reader(&headers);
    let size = i64::from(state.page_size);
    let (hits, total) = if q.is_empty() {
        (vec![], 0)
    } else {
        run_search(
            &state,
            reader,
            &q,
            package_type,
            group.as_deref(),
            page,
            size,
        )
        .await
        .or_page(&state)?
    };
    let link = |p: i64| {
        format!(
            "/search?q={}&type={}&group={}&page={p}",
            urlencode(&q),
            urlencode(package_type.unwrap_or_default()),
            urlencode(group.as_deref().unwrap_or_default())
        )
    };
    let body = SearchPage {
        layout: Layout::new(&state, &q),
        prev: (page > 1).then(|| link(page - 1)),
        next: (page * size < total).then(|| link(page + 1)),
        q: q.clone(),
        package_type: package_type.unwrap_or_default().to_owned(),
        group: group.clone().unwrap_or_default(),
        types: PACKAGE_TYPES,
        total,
        first: (page - 1) * size + 1,
        hits: hits
            .into_iter()
            .map(|h| HitView {
                package_url: match &h.version {
                    Some(v) => version_url(&h.repository, v),
                    None => package_url(&h.repository),
                },
                docs_url: h
                    .object_digest
                    .as_deref()
                    .map(|d| state.docs_url(d))
                    .unwrap_or_default(),
                hit_type: h.hit_type,
                repository: h.repository,
                version: h.version,
                package_type: h.package_type,
                description: h.description.as_deref().map(views::summary),
                group: h.group.unwrap_or_default(),
                kind: h.kind.unwrap_or_default(),
            })
            .collect(),
    }
    .render()
    .or_page(&state)?;
    Ok(html(&headers, page_caching(&state, reader), None, body))
}

/// A query string axum could not read (a repeated or malformed parameter), as a 400 that says
/// so in words (the pages show it as an error page, the API in its error envelope).
pub fn query_error(rejection: QueryRejection) -> WebError {
    WebError::bad_request(format!(
        "This address's query string could not be read ({}). Check the parameters and try again.",
        rejection
            .body_text()
            .trim_start_matches("Failed to deserialize query string: ")
    ))
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    counts: Vec<(String, i64)>,
    jobs: Option<Vec<db::JobView>>,
}

/// Queued, running and failed jobs; the job list (repositories, errors) only for readers.
pub async fn status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let reader = state.is_reader(&headers);
    let counts = db::job_counts(&state.pool).await.or_page(&state)?;
    let jobs = if reader {
        Some(db::open_jobs(&state.pool, 200).await.or_page(&state)?)
    } else {
        None
    };
    let body = StatusPage {
        layout: Layout::new(&state, ""),
        counts,
        jobs,
    }
    .render()
    .or_page(&state)?;
    Ok(html(
        &headers,
        Caching::Page {
            max_age: 0,
            public: !reader,
        },
        None,
        body,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_ids_are_sha256_digests_with_an_optional_format() {
        let hex = "a".repeat(64);
        let d = format!("sha256:{hex}");
        assert_eq!(parse_docs_id(&d), Some((d.as_str(), "html")));
        assert_eq!(
            parse_docs_id(&format!("{d}.yaml")),
            Some((d.as_str(), "yaml"))
        );
        assert_eq!(
            parse_docs_id(&format!("{d}.json")),
            Some((d.as_str(), "json"))
        );
        assert_eq!(parse_docs_id(&format!("{d}.exe")), None);
        assert_eq!(parse_docs_id("sha256:abc"), None);
        assert_eq!(parse_docs_id(&format!("sha512:{hex}")), None);
        assert_eq!(parse_docs_id(&format!("sha256:{}", "A".repeat(64))), None);
    }

    #[test]
    fn icons_are_served_only_as_images() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nrest");
        let (t, _) = decode_icon(Some(&format!("data:image/png;base64,{png}")), None).unwrap();
        assert_eq!(t, "image/png");
        let (t, _) = decode_icon(None, Some(&png)).unwrap();
        assert_eq!(t, "image/png");
        let svg = base64::engine::general_purpose::STANDARD
            .encode(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>");
        let (t, _) = decode_icon(Some(&format!("data:image/svg+xml;base64,{svg}")), None).unwrap();
        assert_eq!(t, "image/svg+xml");
        let html = base64::engine::general_purpose::STANDARD.encode(b"<html><script>x</script>");
        assert!(decode_icon(Some(&format!("data:text/html;base64,{html}")), None).is_none());
        assert!(decode_icon(Some("https://example.com/icon.png"), None).is_none());
    }

    #[test]
    fn search_parameters_are_checked() {
        let p = |q: &str, t: &str, page: Option<&str>| SearchParams {
            q: q.into(),
            package_type: t.into(),
            group: String::new(),
            page: page.map(str::to_owned),
            page_size: None,
        };
        assert!(check_search(&p("x", "provider", Some("2"))).is_ok());
        assert!(check_search(&p(&"x".repeat(300), "", None)).is_err());
        assert!(check_search(&p("x", "Helm", None)).is_err());
        assert!(check_search(&p("x", "", Some("0"))).is_err());
        assert!(check_search(&p("x", "", Some("abc"))).is_err());
    }

    #[test]
    fn compositions_are_summarised() {
        let c = serde_json::json!({"spec": {
            "compositeTypeRef": {"apiVersion": "aws.platform.upbound.io/v1alpha1", "kind": "XNetwork"},
            "mode": "Pipeline",
            "pipeline": [{"step": "patch-and-transform", "functionRef": {"name": "function-patch-and-transform"},
                "input": {"resources": [{"name": "vpc", "base": {"apiVersion": "ec2.aws.upbound.io/v1beta1", "kind": "VPC"}}]}}]}});
        let v = composition_view(&c);
        assert_eq!(v.composite, "XNetwork aws.platform.upbound.io/v1alpha1");
        assert_eq!(
            v.composite_url.as_deref(),
            Some("/search?q=XNetwork.aws.platform.upbound.io")
        );
        assert_eq!(v.mode, "Pipeline");
        assert_eq!(
            v.steps,
            vec![(
                "patch-and-transform".into(),
                "function-patch-and-transform".into()
            )]
        );
        assert_eq!(
            v.resources,
            vec![("vpc".into(), "VPC ec2.aws.upbound.io/v1beta1".into())]
        );
    }
}
