//! An object's docs page, `/docs/sha256:<hex>`, and its `.yaml` and `.json`: immutable, a pure
//! function of the digest (and of whether a public package holds it). A CRD or XRD shows its
//! API type's facts, field trees and examples; a Composition what it composes; every object its
//! source as YAML, up to a size.

use std::sync::Arc;

use askama::Template;
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};
use serde_json::Value;

use crate::{
    assets::SameForEveryone,
    db,
    error::{Error, Result},
    http::{Caching, cached, html},
    layout::Layout,
    lookup,
    params::parse_docs_id,
    render::Renderer,
    schema,
    state::AppState,
    text::urlencode,
};

/// What a CRD or XRD defines, as its docs page states it.
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

/// An example of an API type on its docs page.
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

/// What a Composition composes, as its docs page shows it.
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
pub(super) struct DocsPage {
    layout: Layout,
    /// Set on an API's page within a package version ([`super::api_page`]): the version's
    /// APIs, the way back to it, the same API in its other versions.
    pub(super) nav: Option<super::api_page::ApiNav>,
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

/// A stored object as YAML (as pretty JSON, should YAML fail).
pub fn to_yaml(v: &Value) -> String {
    serde_saphyr::to_string(v)
        .unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default())
}

/// `/docs/sha256:<hex>` (and `.yaml`, `.json`): an object's docs, immutable.
pub async fn docs(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let (digest, format) = parse_docs_id(&id).ok_or_else(|| {
        Error::not_found("Docs addresses look like /docs/sha256:<64 hex digits>.")
    })?;
    let reader = state.is_reader(&headers);
    let (object, public) = lookup::object(&state.pool, reader, digest).await?;
    let caching = Caching::Immutable { public };
    let response = match format {
        "json" => {
            let body = serde_json::to_vec_pretty(&object.body).unwrap_or_default();
            cached(&headers, caching, Some(digest), "application/json", body)
        }
        "yaml" => cached(
            &headers,
            caching,
            Some(digest),
            "application/yaml; charset=utf-8",
            to_yaml(&object.body),
        ),
        _ => page(&state, &headers, reader, digest, object, public).await?,
    };
    Ok(same_for_everyone(response, public))
}

/// A public object's docs are one page for everyone (examples from public packages only), so
/// they vary on `Accept-Encoding` alone and a CDN keeps one copy.
fn same_for_everyone(mut response: Response, public: bool) -> Response {
    if public {
        response.extensions_mut().insert(SameForEveryone);
    }
    response
}

/// The docs page of `object` (`public` if a public package holds it), immutable.
async fn page(
    state: &AppState,
    headers: &HeaderMap,
    reader: bool,
    digest: &str,
    object: db::Object,
    public: bool,
) -> Result<Response> {
    let built = build(state, reader, digest, object, public).await?;
    Ok(html(
        headers,
        Caching::Immutable {
            public: built.public,
        },
        Some(&built.etag),
        built.page.render()?,
    ))
}

/// A docs page built, with its tag and whether it is public.
pub(super) struct Built {
    pub(super) page: DocsPage,
    pub(super) etag: String,
    pub(super) public: bool,
}

/// Builds the docs page of `object`.
pub(super) async fn build(
    state: &AppState,
    reader: bool,
    digest: &str,
    object: db::Object,
    public: bool,
) -> Result<Built> {
    let yaml_url = format!("{}.yaml", state.docs_url(digest));
    let json_url = format!("{}.json", state.docs_url(digest));
    let body = Arc::new(object.body);
    let mut page = DocsPage {
        layout: Layout::new(state),
        nav: None,
        title: format!(
            "{} {}",
            object.kind,
            object.name.as_deref().unwrap_or_default()
        ),
        class: object.class.clone(),
        api_version: object.api_version.clone(),
        digest: digest.to_owned(),
        yaml_url,
        json_url,
        api: None,
        versions: Arc::from(""),
        examples: Vec::new(),
        composition: None,
        yaml: None,
    };
    let mut etag = digest.to_owned();
    let mut public = public;
    if matches!(object.class.as_str(), "crd" | "xrd") {
        // A public object's page shows public examples alone, to readers too: it is one page
        // for everyone. A private object's page is a reader's only and may show private ones.
        let from_public = api_type(state, reader && !public, &body, &mut page).await?;
        // Examples from a private package: this body is a reader's only, with its own tag.
        if !from_public {
            public = false;
            etag = format!("{digest}-private");
        }
    } else if object.class == "composition" {
        page.composition = Some(composition_view(&body));
    }
    if object.size_bytes as usize <= MAX_INLINE_YAML_BYTES {
        let key = Renderer::key("yaml", &[digest.as_bytes()]);
        page.yaml = Some(state.render.html(key, move || to_yaml(&body)).await?);
    }
    Ok(Built { page, etag, public })
}

/// Fills in the page of a CRD or XRD: its title, facts, field trees and examples. Returns
/// whether the examples came from a public package.
async fn api_type(
    state: &AppState,
    reader: bool,
    body: &Arc<Value>,
    page: &mut DocsPage,
) -> Result<bool> {
    let group = body["spec"]["group"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let kind = body["spec"]["names"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    page.title = format!("{kind} ({group})");
    let key = Renderer::key(
        "schema-versions",
        &[page.digest.as_bytes(), page.yaml_url.as_bytes()],
    );
    let (b, url) = (body.clone(), page.yaml_url.clone());
    page.versions = state
        .render
        .html(key, move || schema::render_versions(&b, &url))
        .await?;
    let (found, from_public) =
        db::examples_for(&state.pool, reader, &page.digest, &group, &kind).await?;
    page.examples = examples(state, found).await?;
    page.api = Some(api_facts(body, group, kind));
    Ok(from_public)
}

/// A docs page's examples: each labelled and linked, shown as YAML until
/// [`MAX_PAGE_EXAMPLE_BYTES`].
async fn examples(state: &AppState, found: Vec<db::Example>) -> Result<Vec<ExampleYaml>> {
    let mut examples = Vec::new();
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
                .await?;
            budget = budget.saturating_sub(text.len());
            yaml = (budget > 0).then_some(text);
        }
        examples.push(ExampleYaml {
            label,
            yaml,
            url: state.docs_url(&e.object_digest),
        });
    }
    Ok(examples)
}

/// The facts of the API type a CRD or XRD (`body`) defines as `kind` in `group`.
fn api_facts(body: &Value, group: String, kind: String) -> ApiFacts {
    ApiFacts {
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
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
