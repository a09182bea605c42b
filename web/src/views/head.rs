//! The package header every package and version page starts with: title, icon, type, its latest
//! version, pulls and the facts of the version shown.

use serde_json::Value;

use crate::{
    db::{Package, Version},
    icon::decode_icon,
    state::AppState,
    text::{package_url, plain_text, source_link, urlencode, version_url},
};

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
    /// Whether the version shown was rejected.
    pub rejected: bool,
    /// The package's latest version, when it has one: its label and page.
    pub latest: Option<Latest>,
    pub facts: Vec<(String, String, Option<String>)>,
    /// Pulls through the shim (see the README for what counts).
    pub pulls: i64,
}

/// A package's latest version as the header links it.
#[derive(Debug, Clone)]
pub struct Latest {
    pub label: String,
    pub url: String,
}

/// The header of `package`, showing `version` (its latest, or the one asked for).
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
    let has_icon = decode_icon(meta["icon_uri"].as_str(), meta["icon_data"].as_str()).is_some();
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
        rejected: version.is_some_and(|v| v.rejection.is_some()),
        latest: package.latest_tag.as_ref().map(|tag| Latest {
            label: tag.clone(),
            url: version_url(&package.repository, tag),
        }),
        facts,
        pulls: package.pulls,
    }
}
