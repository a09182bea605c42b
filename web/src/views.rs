//! What pages and the JSON API show, built from the stored rows: version lists in semver order,
//! install lines, metadata facts, dependencies, API types, examples and indexing cost.

use serde::Serialize;
use serde_json::Value;
use shimmer_store::packages::tag_semver;
use sqlx::PgPool;

use crate::{
    AppState,
    db::{self, ApiType, ContentEntry, Example, Package, Version, VersionRow},
};

/// `s` for a query string value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `/packages/<repository>`.
pub fn package_url(repository: &str) -> String {
    format!("/packages/{repository}")
}

/// `/packages/<repository>/versions/<tag or digest>`.
pub fn version_url(repository: &str, version: &str) -> String {
    format!("/packages/{repository}/versions/{version}")
}

/// A publisher's text as pages show it: without the Unicode bidirectional controls
/// (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C), with which a name can be made to
/// read as another (`provider-\u{202E}swa` shows as `provider-aws`) or reorder what follows it
/// in a title. Escaping cannot help: they are ordinary text to HTML.
pub fn plain_text(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
            )
        })
        .collect()
}

/// Where a package's `source` annotation links to: an http(s) URL as it is, and the scheme-less
/// `github.com/org/repo` form most packages use as https; anything else is shown, not linked.
pub fn source_link(source: &str) -> Option<String> {
    if source.starts_with("https://") || source.starts_with("http://") {
        return Some(source.to_owned());
    }
    let (host, path) = source.split_once('/')?;
    let host_like = host.contains('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    (host_like && !path.is_empty() && !source.contains(char::is_whitespace))
        .then(|| format!("https://{source}"))
}

/// An RFC 3339 UTC time (`2026-11-28T03:17:05Z`, as the queries write it) as pages show it:
/// `2026-11-28 03:17 UTC`. Anything else is shown as it is.
pub fn human_time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) if rfc3339.as_bytes().get(10) == Some(&b'T') => {
            format!("{date} {time} UTC")
        }
        _ => rfc3339.to_owned(),
    }
}

/// Longest description a list (home cards, search hits) shows, in characters.
pub const SUMMARY_CHARS: usize = 280;

/// A description as a list shows it: at most [`SUMMARY_CHARS`] characters, cut at a word
/// boundary where there is one near the end, with an ellipsis. The package page shows it whole.
pub fn summary(text: &str) -> String {
    let text = plain_text(text);
    let text = text.trim();
    match text.char_indices().nth(SUMMARY_CHARS) {
        None => text.to_owned(),
        Some((end, _)) => {
            let cut = &text[..end];
            let cut = match cut.rfind(char::is_whitespace) {
                Some(space) if space > end / 2 => &cut[..space],
                _ => cut,
            };
            format!("{}…", cut.trim_end())
        }
    }
}

/// Splits `acme/provider-x/versions/v1.0.0` into repository and version. A repository whose
/// own name ends in `/versions/<x>` is found by trying the whole path first (the caller does).
pub fn split_version_path(path: &str) -> Option<(&str, &str)> {
    let (repo, version) = path.rsplit_once("/versions/")?;
    (!repo.is_empty() && !version.is_empty() && !version.contains('/')).then_some((repo, version))
}

/// One entry of a package's version list.
#[derive(Debug, Clone, Serialize)]
pub struct VersionLink {
    pub label: String,
    pub url: String,
    /// When it was indexed, for people (`2026-11-28 03:17 UTC`).
    pub when: String,
    /// The same in RFC 3339 (`2026-11-28T03:17:05Z`), for programs.
    pub indexed_at: String,
    pub kind: String,
    pub manifest_digest: String,
}

/// A package's versions: semver tags (newest first), other tags (most recent first), and
/// manifests no tag points at (but for the platform images an index of the package lists).
pub fn version_lists(
    repository: &str,
    rows: &[VersionRow],
) -> (Vec<VersionLink>, Vec<VersionLink>, Vec<VersionLink>) {
    let mut semver = Vec::new();
    let mut other = Vec::new();
    let mut untagged = Vec::new();
    for row in rows {
        let link = |label: &str| VersionLink {
            label: label.to_owned(),
            url: version_url(repository, label),
            when: human_time(&row.indexed_at),
            indexed_at: row.indexed_at.clone(),
            kind: row.kind.clone(),
            manifest_digest: row.manifest_digest.clone(),
        };
        // A platform image of a listed index is reached through that index's version.
        if row.tags.is_empty() && !row.in_index {
            untagged.push(link(&row.manifest_digest));
        }
        for tag in &row.tags {
            match tag_semver(tag) {
                Some(v) => semver.push((v, link(tag))),
                None => other.push(link(tag)),
            }
        }
    }
    semver.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.label.cmp(&b.1.label)));
    (
        semver.into_iter().map(|(_, l)| l).collect(),
        other,
        untagged,
    )
}

/// The package header: title, icon, type and the facts of the version shown.
#[derive(Debug, Clone)]
pub struct Head {
    pub title: String,
    pub repository: String,
    pub url: String,
    pub package_type: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
    pub private: bool,
    pub facts: Vec<(String, String, Option<String>)>,
    /// Pulls through the shim (see the README for what counts).
    pub pulls: i64,
}

pub fn head(state: &AppState, package: &Package, version: Option<&Version>) -> Head {
    let meta = version
        .and_then(|v| v.meta.as_ref())
        .cloned()
        .unwrap_or(Value::Null);
    let s = |k: &str| meta[k].as_str().map(plain_text);
    let mut facts = Vec::new();
    if let Some(m) = s("maintainer") {
        facts.push(("Maintainer".into(), m, None));
    }
    if let Some(src) = s("source") {
        let link = source_link(&src);
        facts.push(("Source".into(), src, link));
    }
    if let Some(l) = s("license") {
        facts.push(("License".into(), l, None));
    }
    if let Some(f) = s("provider_family") {
        let link = format!("/search?q={}", urlencode(&f));
        facts.push(("Family".into(), f, Some(link)));
    }
    // Only an icon `/icons/` will serve (an image it recognises), never a broken `<img>`.
    let has_icon =
        crate::pages::decode_icon(meta["icon_uri"].as_str(), meta["icon_data"].as_str()).is_some();
    Head {
        title: s("friendly_name")
            .or_else(|| package.name.as_deref().map(plain_text))
            .unwrap_or_else(|| {
                package
                    .repository
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            }),
        repository: package.repository.clone(),
        url: package_url(&package.repository),
        package_type: package.package_type.clone(),
        description: s("description").or_else(|| package.description.as_deref().map(plain_text)),
        icon: version
            .filter(|_| has_icon)
            .map(|v| format!("{}/icons/{}", state.public_base, v.manifest_digest)),
        private: package.visibility == "private",
        facts,
        pulls: package.pulls,
    }
}

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
}

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
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DependencyView {
    pub package: String,
    pub kind: String,
    pub constraint: String,
    /// The package's page, when shimmer has indexed it.
    pub link: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExampleView {
    pub label: String,
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
    pub label: String,
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
    pub cost: String,
    pub meta_facts: Vec<(String, String)>,
    pub dependencies: Vec<DependencyView>,
    pub apis: Vec<ApiView>,
    pub others: Vec<ObjectLink>,
    pub examples: Vec<ExampleView>,
    pub lint: Vec<(String, String)>,
    pub readme: Option<String>,
    pub extension_docs: Vec<(String, String)>,
    /// Documents over the page's budget ([`MAX_PAGE_DOCUMENT_BYTES`]), by name.
    pub documents_left_out: Vec<String>,
}

/// Loads and shapes a version's content.
pub struct Loaded {
    pub apis: Vec<ApiType>,
    pub examples: Vec<Example>,
    pub contents: Vec<ContentEntry>,
    pub dependencies: Vec<DependencyView>,
    /// The indexes that list this version (it is one of their platform images): manifest
    /// digest and tags.
    pub indexes: Vec<(String, Vec<String>)>,
}

pub async fn load(pool: &PgPool, reader: bool, v: &Version) -> sqlx::Result<Loaded> {
    let apis = db::apis(pool, v.id).await?;
    let examples = db::examples(pool, v.id).await?;
    let contents = match &v.contents_digest {
        Some(d) => db::contents(pool, d).await?,
        None => vec![],
    };
    let mut dependencies = Vec::new();
    if let Some(deps) = v.meta.as_ref().and_then(|m| m["depends_on"].as_array()) {
        for d in deps {
            let package = d["package"].as_str().unwrap_or_default().to_owned();
            let link = db::find_dependency(pool, reader, &package)
                .await?
                .map(|r| package_url(&r));
            dependencies.push(DependencyView {
                kind: d["kind"].as_str().unwrap_or("unknown").to_owned(),
                constraint: d["version_constraint"]
                    .as_str()
                    .unwrap_or("any version")
                    .to_owned(),
                package,
                link,
            });
        }
    }
    Ok(Loaded {
        apis,
        examples,
        contents,
        dependencies,
        indexes: db::indexes_listing(pool, v.id).await?,
    })
}

pub fn human_bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The tag that names a version reached as `label` (install lines, API answers): that tag itself
/// when it is one of the version's; else its highest semver tag; else any tag but `latest`, which moves;
/// else `latest`. `None` (install by digest) for an untagged version.
pub fn preferred_tag<'a>(label: &'a str, tags: &'a [String]) -> Option<&'a str> {
    if tags.iter().any(|t| t == label) {
        return Some(label);
    }
    let semver = tags
        .iter()
        .filter_map(|t| shimmer_store::packages::tag_semver(t).map(|v| (v, t)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, t)| t.as_str());
    semver
        .or_else(|| tags.iter().find(|t| *t != "latest").map(String::as_str))
        .or_else(|| tags.first().map(String::as_str))
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
    let s = |k: &str| meta[k].as_str().map(plain_text);
    let mut install = Vec::new();
    // A rejected package is shown for what it is, not offered for installation (Crossplane would
    // refuse it too); its digests still identify it.
    if v.rejection.is_none() {
        if let Some(t) = &v.package_type {
            let reference = match preferred_tag(label, &v.tags) {
                Some(tag) => format!("{host}/{repository}:{tag}"),
                None => format!("{host}/{repository}@{}", v.manifest_digest),
            };
            install.push(format!(
                "crossplane xpkg install {} {reference}",
                t.to_lowercase()
            ));
        }
        install.push(format!(
            "docker pull {host}/{repository}@{}",
            v.manifest_digest
        ));
    }
    let cost = if v.image_bytes > 0 {
        format!(
            "downloaded {} of the image's {} ({:.1}%)",
            human_bytes(v.bytes_downloaded),
            human_bytes(v.image_bytes),
            v.bytes_downloaded as f64 * 100.0 / v.image_bytes as f64
        )
    } else {
        format!("downloaded {}", human_bytes(v.bytes_downloaded))
    };
    let mut meta_facts = Vec::new();
    for (label, key) in [
        ("Name", "name"),
        ("Friendly name", "friendly_name"),
        ("Meta API version", "api_version"),
        ("Maintainer", "maintainer"),
        ("Source", "source"),
        ("License", "license"),
        ("Provider family", "provider_family"),
        ("Controller image", "controller_image"),
        ("Note", "note"),
        ("Examples", "examples_rejection"),
    ] {
        if let Some(value) = s(key) {
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
    let apis: Vec<ApiView> = loaded.apis.iter().map(|a| api_view(state, a)).collect();
    let defined: std::collections::HashSet<&str> = loaded
        .apis
        .iter()
        .map(|a| a.object_digest.as_str())
        .collect();
    let others = loaded
        .contents
        .iter()
        .filter(|c| c.class != "meta" && !defined.contains(c.digest.as_str()))
        .map(|c| ObjectLink {
            kind: c.kind.clone(),
            name: c.name.clone().unwrap_or_default(),
            class: c.class.clone(),
            url: state.docs_url(&c.digest),
        })
        .collect();
    let examples = loaded
        .examples
        .iter()
        .map(|e| {
            let name = e.body["metadata"]["name"].as_str().unwrap_or_default();
            ExampleView {
                label: format!(
                    "{} {}",
                    e.kind.as_deref().unwrap_or("object"),
                    e.example_id.as_deref().unwrap_or(name)
                ),
                url: state.docs_url(&e.object_digest),
                supporting: e.supporting,
                digest: e.object_digest.clone(),
                group: e.api_group.clone(),
                kind: e.kind.clone(),
                example_id: e.example_id.clone(),
            }
        })
        .collect();
    let lint = v
        .lint
        .as_array()
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
        .unwrap_or_default();
    VersionBody {
        label: label.to_owned(),
        kind: v.kind.clone(),
        media_type: v.media_type.clone(),
        artifact_type: v.artifact_type.clone(),
        rejection: v.rejection.clone(),
        manifest_digest: v.manifest_digest.clone(),
        index_digest: v.index_digest.clone(),
        platforms: v.platforms.clone(),
        platform_of: loaded
            .indexes
            .iter()
            .map(|(digest, tags)| {
                let version = preferred_tag("", tags).unwrap_or(digest).to_owned();
                IndexLink {
                    url: version_url(repository, &version),
                    version,
                    manifest_digest: digest.clone(),
                }
            })
            .collect(),
        tags: v.tags.clone(),
        indexed_at: human_time(&v.indexed_at),
        install,
        cost,
        meta_facts,
        dependencies: loaded.dependencies,
        apis,
        others,
        examples,
        lint,
        readme: None,
        extension_docs: vec![],
        documents_left_out: vec![],
    }
}

/// Rendered HTML of a page's documents, at most this many bytes; the documents after are named,
/// not shown.
pub const MAX_PAGE_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Fills in `body`'s readme and documents: the `readme` annotation (else the first `readme/`
/// file of the extensions), then the extensions' markdown and text files, each rendered off the
/// runtime ([`crate::render`]) until [`MAX_PAGE_DOCUMENT_BYTES`] of HTML.
pub async fn documents(
    state: &AppState,
    v: &Version,
    body: &mut VersionBody,
) -> Result<(), crate::http::WebError> {
    let Some(meta) = v.meta.as_ref() else {
        return Ok(());
    };
    let mut budget = MAX_PAGE_DOCUMENT_BYTES;
    if let Some(r) = meta["readme"].as_str() {
        let html = state.render.markdown(r).await?;
        budget = budget.saturating_sub(html.len());
        body.readme = Some(html.to_string());
    }
    for f in meta["extensions"].as_array().into_iter().flatten() {
        let (Some(folder), Some(path), Some(text)) =
            (f["folder"].as_str(), f["path"].as_str(), f["text"].as_str())
        else {
            continue;
        };
        if !(path.ends_with(".md") || path.ends_with(".markdown") || path.ends_with(".txt")) {
            continue;
        }
        let name = plain_text(&format!(
            "{folder}: {}",
            shimmer_store::text::shorten(path, 200)
        ));
        if budget == 0 {
            body.documents_left_out.push(name);
            continue;
        }
        let html = state.render.markdown(text).await?;
        if html.len() > budget {
            budget = 0;
            body.documents_left_out.push(name);
            continue;
        }
        budget -= html.len();
        if folder == "readme" && body.readme.is_none() {
            body.readme = Some(html.to_string());
        } else {
            body.extension_docs.push((name, html.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(tags: &[&str], digest: &str) -> VersionRow {
        VersionRow {
            manifest_digest: digest.into(),
            kind: "package".into(),
            package_type: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            indexed_at: String::new(),
            in_index: false,
        }
    }

    #[test]
    fn versions_are_listed_in_semver_order_with_other_tags_apart() {
        let rows = [
            row(&["v1.10.0"], "sha256:a"),
            row(&["v1.9.0", "latest"], "sha256:b"),
            row(&["v2.0.0-rc.1"], "sha256:c"),
            row(&["v1.2.0"], "sha256:d"),
            row(&["main"], "sha256:e"),
            row(&[], "sha256:f"),
            row(&["v2.0.0"], "sha256:g"),
            // A platform image of an index, untagged: part of the index's version.
            VersionRow {
                in_index: true,
                ..row(&[], "sha256:h")
            },
        ];
        let (semver, other, untagged) = version_lists("acme/p", &rows);
        let labels: Vec<_> = semver.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            ["v2.0.0", "v2.0.0-rc.1", "v1.10.0", "v1.9.0", "v1.2.0"]
        );
        let labels: Vec<_> = other.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["latest", "main"]);
        assert_eq!(untagged.len(), 1);
        assert_eq!(untagged[0].url, "/packages/acme/p/versions/sha256:f");
    }

    #[test]
    fn version_paths_split_at_the_last_versions_segment() {
        assert_eq!(
            split_version_path("acme/p/versions/v1"),
            Some(("acme/p", "v1"))
        );
        assert_eq!(split_version_path("acme/p"), None);
        assert_eq!(summary("  short  "), "short");
        assert_eq!(human_time("2026-11-28T03:17:05Z"), "2026-11-28 03:17 UTC");
        assert_eq!(human_time(""), "");
        assert_eq!(
            plain_text("provider-\u{202E}swa\u{202C} x"),
            "provider-swa x"
        );
        assert_eq!(plain_text("naïve 名前"), "naïve 名前");
        assert_eq!(
            source_link("github.com/crossplane-contrib/provider-kubernetes").as_deref(),
            Some("https://github.com/crossplane-contrib/provider-kubernetes")
        );
        assert_eq!(
            source_link("https://x.example/a").as_deref(),
            Some("https://x.example/a")
        );
        for not_a_link in [
            "javascript:alert(1)",
            "Upbound",
            "a/b",
            "github.com/",
            "x.y/a b",
        ] {
            assert_eq!(source_link(not_a_link), None, "{not_a_link}");
        }
        let long = "word ".repeat(100);
        let s = summary(&long);
        assert!(
            s.ends_with("word…") && s.chars().count() <= SUMMARY_CHARS + 1,
            "{s}"
        );
        let unbroken = "é".repeat(1000);
        assert_eq!(summary(&unbroken).chars().count(), SUMMARY_CHARS + 1);
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let both = tags(&["latest", "v1.0.0"]);
        assert_eq!(
            preferred_tag("v1.0.0", &both),
            Some("v1.0.0"),
            "the page's own tag"
        );
        assert_eq!(
            preferred_tag("latest", &both),
            Some("latest"),
            "the page's own tag"
        );
        let by_digest = "sha256:0000";
        assert_eq!(
            preferred_tag(by_digest, &both),
            Some("v1.0.0"),
            "not the moving latest"
        );
        let three = tags(&["latest", "v1.0.0", "v1.1.0", "stable"]);
        assert_eq!(
            preferred_tag(by_digest, &three),
            Some("v1.1.0"),
            "the highest semver"
        );
        assert_eq!(
            preferred_tag(by_digest, &tags(&["latest", "main"])),
            Some("main")
        );
        assert_eq!(preferred_tag(by_digest, &tags(&["latest"])), Some("latest"));
        assert_eq!(preferred_tag(by_digest, &[]), None);
        assert_eq!(split_version_path("acme/p/versions/"), None);
        assert_eq!(split_version_path("a/versions/b/c"), None);
    }

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
