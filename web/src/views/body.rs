//! Everything shown about one version ([`VersionBody`]), shaped from its row and what
//! [`super::load`] read: install lines, cost, metadata facts, API types, other objects,
//! examples, lint findings and the indexes that list it. Pure: no I/O.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::Value;

use super::{
    install::{cost, install_lines, install_manifest},
    load::{DependencyView, Loaded},
    versions::preferred_tag,
};
use crate::{
    db::{ApiType, Version},
    state::AppState,
    text::{api_url, human_time, plain_text, version_url},
};

#[derive(Debug, Clone, Serialize)]
pub struct ApiVersionView {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    pub deprecated: bool,
    #[serde(skip)]
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApiView {
    pub group: String,
    pub kind: String,
    pub plural: Option<String>,
    pub definition: String,
    pub scope: String,
    pub deprecated: bool,
    pub storage_version: Option<String>,
    pub versions: Vec<ApiVersionView>,
    pub object_digest: String,
    pub docs_url: String,
    /// Its page within the version shown (the docs with the version's API list).
    #[serde(skip)]
    pub page_url: String,
}

/// An API type as a version shows it, with its versions' states spelled out for a tooltip.
pub fn api_view(state: &AppState, a: &ApiType) -> ApiView {
    let versions = a
        .versions
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    let name = v["name"].as_str().unwrap_or_default().to_owned();
                    let served = v["served"].as_bool().unwrap_or(false);
                    let storage = v["storage"].as_bool().unwrap_or(false);
                    let deprecated = v["deprecated"].as_bool().unwrap_or(false);
                    let mut title = Vec::new();
                    title.push(if served { "served" } else { "not served" });
                    if storage {
                        title.push("storage");
                    }
                    if deprecated {
                        title.push("deprecated");
                    }
                    ApiVersionView {
                        name,
                        served,
                        storage,
                        deprecated,
                        title: title.join(", "),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    ApiView {
        group: a.api_group.clone(),
        kind: a.kind.clone(),
        plural: a.plural.clone(),
        definition: a.definition.clone(),
        scope: a.scope.clone().unwrap_or_default(),
        deprecated: a.deprecated,
        storage_version: a.storage_version.clone(),
        versions,
        object_digest: a.object_digest.clone(),
        docs_url: state.docs_url(&a.object_digest),
        page_url: String::new(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ExampleView {
    pub label: String,
    /// Its `meta.upbound.io/example-id`, else its `metadata.name`: the label without the kind.
    #[serde(skip)]
    pub name: String,
    pub url: String,
    pub supporting: bool,
    pub digest: String,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub example_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ObjectLink {
    pub kind: String,
    pub name: String,
    pub class: String,
    pub url: String,
}

/// A version of an index that lists the version shown (one of its platform images).
#[derive(Debug, Clone, Serialize)]
pub struct IndexLink {
    /// Its tag (a release rather than `latest`), else its manifest digest.
    pub version: String,
    pub manifest_digest: String,
    pub url: String,
}

/// Everything shown about one version.
#[derive(Debug, Clone)]
pub struct VersionBody {
    pub kind: String,
    pub media_type: Option<String>,
    pub artifact_type: Option<String>,
    pub rejection: Option<String>,
    pub manifest_digest: String,
    pub index_digest: Option<String>,
    pub platforms: Vec<String>,
    /// The versions of the indexes that list this one, when it is a platform image.
    pub platform_of: Vec<IndexLink>,
    pub tags: Vec<String>,
    pub indexed_at: String,
    pub install: Vec<String>,
    /// The `Provider`/`Configuration`/`Function` object that installs it, for a package.
    pub install_manifest: Option<String>,
    /// What indexing it read, in a sentence.
    pub cost: String,
    pub meta_facts: Vec<(String, String)>,
    pub dependencies: Vec<DependencyView>,
    pub apis: Vec<ApiView>,
    pub others: Vec<ObjectLink>,
    pub examples: Vec<ExampleView>,
    /// The examples by the kind they are of, in the order the kinds first appear.
    pub example_groups: Vec<ExampleGroup>,
    pub examples_total: usize,
    pub lint: Vec<(String, String)>,
    pub readme: Option<String>,
    pub extension_docs: Vec<(String, String)>,
    /// Documents over the page's budget ([`MAX_PAGE_DOCUMENT_BYTES`]), by name.
    pub documents_left_out: Vec<String>,
    /// What changed since its predecessor, when that was computed.
    pub since: Option<Since>,
}

/// The changes of a version since its predecessor in semver order.
#[derive(Debug, Clone)]
pub struct Since {
    pub from: String,
    pub from_url: String,
    pub breaking: i32,
    pub total: i32,
    pub diff_url: String,
    pub changelog: super::diff::Changelog,
}

/// `host` is the registry host of the install lines ([`AppState::registry_host`]).
pub fn version_body(
    state: &AppState,
    host: &str,
    repository: &str,
    label: &str,
    v: &Version,
    loaded: Loaded,
) -> VersionBody {
    let meta = v.meta.clone().unwrap_or(Value::Null);
    let mut apis: Vec<ApiView> = loaded.apis.iter().map(|a| api_view(state, a)).collect();
    for a in &mut apis {
        a.page_url = api_url(repository, label, &a.group, &a.kind);
    }
    let examples = examples(state, &loaded);
    VersionBody {
        kind: v.kind.clone(),
        media_type: v.media_type.clone(),
        artifact_type: v.artifact_type.clone(),
        rejection: v.rejection.clone(),
        manifest_digest: v.manifest_digest.clone(),
        index_digest: v.index_digest.clone(),
        platforms: v.platforms.clone(),
        platform_of: platform_of(repository, &loaded.indexes),
        tags: v.tags.clone(),
        indexed_at: human_time(&v.indexed_at),
        install: install_lines(host, repository, label, v),
        install_manifest: install_manifest(host, repository, label, v),
        cost: cost(v),
        meta_facts: meta_facts(v, &meta),
        others: others(state, &loaded),
        example_groups: example_groups(&examples, &apis),
        examples_total: examples.len(),
        examples,
        lint: lint(&v.lint),
        dependencies: loaded.dependencies,
        apis,
        readme: None,
        extension_docs: vec![],
        documents_left_out: vec![],
        since: None,
    }
}

/// The metadata fields shown, labelled, in this order (maintainer, source, license and family
/// are the package header's facts, not repeated here).
fn meta_facts(v: &Version, meta: &Value) -> Vec<(String, String)> {
    let mut meta_facts = Vec::new();
    for (label, key) in [
        ("Name", "name"),
        ("Friendly name", "friendly_name"),
        ("Meta API version", "api_version"),
        ("Controller image", "controller_image"),
        ("Note", "note"),
        ("Examples", "examples_rejection"),
    ] {
        if let Some(value) = meta[key].as_str().map(plain_text) {
            meta_facts.push((label.to_owned(), value));
        }
    }
    if let Some(c) = &v.crossplane_version {
        meta_facts.push(("Crossplane version".into(), c.clone()));
    }
    if let Some(caps) = meta["capabilities"].as_array().filter(|c| !c.is_empty()) {
        let caps: Vec<&str> = caps.iter().filter_map(Value::as_str).collect();
        meta_facts.push(("Capabilities".into(), caps.join(", ")));
    }
    meta_facts
}

/// The version's objects but its meta and the API types it defines (listed apart).
fn others(state: &AppState, loaded: &Loaded) -> Vec<ObjectLink> {
    let defined: HashSet<&str> = loaded
        .apis
        .iter()
        .map(|a| a.object_digest.as_str())
        .collect();
    loaded
        .contents
        .iter()
        .filter(|c| c.class != "meta" && !defined.contains(c.digest.as_str()))
        .map(|c| ObjectLink {
            kind: c.kind.clone(),
            name: c.name.clone().unwrap_or_default(),
            class: c.class.clone(),
            url: state.docs_url(&c.digest),
        })
        .collect()
}

fn examples(state: &AppState, loaded: &Loaded) -> Vec<ExampleView> {
    loaded
        .examples
        .iter()
        .map(|e| {
            let name = e
                .example_id
                .as_deref()
                .or(e.body["metadata"]["name"].as_str())
                .unwrap_or_default()
                .to_owned();
            ExampleView {
                label: format!("{} {name}", e.kind.as_deref().unwrap_or("object")),
                name,
                url: state.docs_url(&e.object_digest),
                supporting: e.supporting,
                digest: e.object_digest.clone(),
                group: e.api_group.clone(),
                kind: e.kind.clone(),
                example_id: e.example_id.clone(),
            }
        })
        .collect()
}

/// The examples of one kind, as the version's Examples section lists them.
#[derive(Debug, Clone)]
pub struct ExampleGroup {
    pub kind: String,
    pub group: String,
    /// The kind's docs, when this version defines it.
    pub docs_url: Option<String>,
    pub examples: Vec<NamedExample>,
}

/// One example in its kind's group: its name (its `meta.upbound.io/example-id`, else its
/// `metadata.name`), not its kind again.
#[derive(Debug, Clone)]
pub struct NamedExample {
    pub name: String,
    pub url: String,
    pub supporting: bool,
}

/// `examples` grouped by (group, kind), kinds in the order they first appear.
fn example_groups(examples: &[ExampleView], apis: &[ApiView]) -> Vec<ExampleGroup> {
    let mut groups: Vec<ExampleGroup> = Vec::new();
    for e in examples {
        let (kind, group) = (
            e.kind.clone().unwrap_or_else(|| "Object".into()),
            e.group.clone().unwrap_or_default(),
        );
        let named = NamedExample {
            name: e.name.clone(),
            url: e.url.clone(),
            supporting: e.supporting,
        };
        match groups
            .iter_mut()
            .find(|g| g.kind == kind && g.group == group)
        {
            Some(g) => g.examples.push(named),
            None => groups.push(ExampleGroup {
                docs_url: apis
                    .iter()
                    .find(|a| a.kind == kind && a.group == group)
                    .map(|a| a.page_url.clone()),
                kind,
                group,
                examples: vec![named],
            }),
        }
    }
    groups
}

/// Lint findings as (severity, message).
fn lint(lint: &Value) -> Vec<(String, String)> {
    lint.as_array()
        .map(|l| {
            l.iter()
                .map(|f| {
                    (
                        f["severity"].as_str().unwrap_or("warning").to_owned(),
                        f["message"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The versions of the indexes (manifest digest, tags) that list this one.
fn platform_of(repository: &str, indexes: &[(String, Vec<String>)]) -> Vec<IndexLink> {
    indexes
        .iter()
        .map(|(digest, tags)| {
            let version = preferred_tag("", tags).unwrap_or(digest).to_owned();
            IndexLink {
                url: version_url(repository, &version),
                version,
                manifest_digest: digest.clone(),
            }
        })
        .collect()
}
