//! The package meta object (`crossplane.yaml`): identity, descriptive annotations, constraints
//! and dependencies.
//!
//! Reading is lenient, as Crossplane's is: `spec` may be missing or `{}`, annotations may use the
//! current `meta.crossplane.io/*` keys or the bare keys of old packages (`readme`, `iconData`,
//! `license`, `maintainer`, `source`, `description`), and a field of the wrong type is treated as
//! absent. A dependency that names no package is dropped with a lint warning.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::classify::{LintFinding, PackageType, meta_type};

/// Everything the marketplace shows about a package, from its meta object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageMeta {
    /// Provider, Configuration or Function.
    pub package_type: PackageType,
    /// The meta object's `apiVersion`, e.g. `meta.pkg.crossplane.io/v1`.
    pub api_version: String,
    /// `metadata.name`.
    pub name: Option<String>,
    /// Who maintains the package.
    pub maintainer: Option<String>,
    /// Where its source lives.
    pub source: Option<String>,
    /// SPDX license expression.
    pub license: Option<String>,
    /// A short description.
    pub description: Option<String>,
    /// Markdown readme.
    pub readme: Option<String>,
    /// `meta.crossplane.io/iconURI`: a URL or, often, a data URI.
    pub icon_uri: Option<String>,
    /// Old packages' `iconData`: base64 image bytes without a media type.
    pub icon_data: Option<String>,
    /// `friendly-name.meta.crossplane.io`.
    pub friendly_name: Option<String>,
    /// `friendly-group-name.meta.crossplane.io/<group>`, keyed by group.
    pub friendly_group_names: BTreeMap<String, String>,
    /// `friendly-kind-name.meta.crossplane.io/<kind>.<group>`.
    pub friendly_kind_names: Vec<FriendlyKindName>,
    /// Label `pkg.crossplane.io/provider-family`.
    pub provider_family: Option<String>,
    /// `spec.crossplane.version`, a semver constraint on Crossplane.
    pub crossplane_version: Option<String>,
    /// `spec.dependsOn`, normalised.
    pub depends_on: Vec<Dependency>,
    /// `spec.capabilities`.
    pub capabilities: Vec<String>,
    /// `spec.controller.image` (old packages).
    pub controller_image: Option<String>,
    /// Every `metadata.annotations` entry with a string value, for what is not lifted above.
    pub annotations: BTreeMap<String, String>,
}

/// A friendly kind name; the annotation key's `<kind>` part is lowercase in practice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FriendlyKindName {
    /// The `<kind>` part of the annotation key.
    pub kind: String,
    /// The `<group>` part of the annotation key.
    pub group: String,
    /// The friendly name.
    pub name: String,
}

/// One `spec.dependsOn` entry, normalised from either form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dependency {
    /// The kind of package depended on.
    pub kind: DependencyKind,
    /// The package reference without tag or digest, e.g. `xpkg.upbound.io/upbound/provider-aws-ec2`.
    pub package: String,
    /// A semver constraint (`>=v1.0.0`, `v0.2.1`) or a digest (`sha256:...`).
    pub version_constraint: Option<String>,
    /// Whether `version_constraint` is a digest rather than a constraint.
    pub is_digest: bool,
    /// `apiVersion` of the current form (`pkg.crossplane.io/v1`); absent in the old form.
    pub api_version: Option<String>,
}

/// The kind of package a dependency points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DependencyKind {
    /// A Provider package.
    Provider,
    /// A Configuration package.
    Configuration,
    /// A Function package.
    Function,
    /// A `kind` this indexer does not know; the raw value is not kept.
    Unknown,
}

const FRIENDLY_GROUP: &str = "friendly-group-name.meta.crossplane.io/";
const FRIENDLY_KIND: &str = "friendly-kind-name.meta.crossplane.io/";

/// Reads the meta object. `None` when `value` is not a meta object.
///
/// Kept whole: one meta object read field by field, each field beside its lint.
pub fn extract(value: &Value) -> Option<(PackageMeta, Vec<LintFinding>)> {
    let package_type = meta_type(value)?;
    let metadata = value.get("metadata").and_then(Value::as_object);
    let annotations = string_map(metadata.and_then(|m| m.get("annotations")));
    let labels = string_map(metadata.and_then(|m| m.get("labels")));
    let spec = value.get("spec").and_then(Value::as_object);
    let annotation = |keys: &[&str]| keys.iter().find_map(|k| annotations.get(*k).cloned());

    let mut findings = Vec::new();
    let depends_on = spec
        .and_then(|s| s.get("dependsOn"))
        .and_then(Value::as_array)
        .map(|deps| {
            deps.iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    let dep = dependency(d);
                    if dep.is_none() {
                        findings.push(LintFinding::warning(
                            Some(0),
                            format!("spec.dependsOn[{i}] names no package and is ignored"),
                        ));
                    }
                    dep
                })
                .collect()
        })
        .unwrap_or_default();

    let meta = PackageMeta {
        package_type,
        api_version: value["apiVersion"].as_str().unwrap_or_default().to_owned(),
        name: metadata.and_then(|m| string(m, "name")),
        maintainer: annotation(&["meta.crossplane.io/maintainer", "maintainer"]),
        source: annotation(&["meta.crossplane.io/source", "source"]),
        license: annotation(&["meta.crossplane.io/license", "license"]),
        description: annotation(&[
            "meta.crossplane.io/description",
            "description",
            "descriptionShort",
        ]),
        readme: annotation(&["meta.crossplane.io/readme", "readme"]),
        icon_uri: annotation(&["meta.crossplane.io/iconURI"]),
        icon_data: annotation(&["iconData"]),
        friendly_name: annotation(&["friendly-name.meta.crossplane.io"]),
        friendly_group_names: annotations
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(FRIENDLY_GROUP)?.to_owned(), v.clone())))
            .collect(),
        friendly_kind_names: annotations
            .iter()
            .filter_map(|(k, v)| {
                let (kind, group) = k.strip_prefix(FRIENDLY_KIND)?.split_once('.')?;
                Some(FriendlyKindName {
                    kind: kind.to_owned(),
                    group: group.to_owned(),
                    name: v.clone(),
                })
            })
            .collect(),
        provider_family: labels.get("pkg.crossplane.io/provider-family").cloned(),
        crossplane_version: spec
            .and_then(|s| s.get("crossplane"))
            .and_then(Value::as_object)
            .and_then(|c| string(c, "version")),
        depends_on,
        capabilities: spec
            .and_then(|s| s.get("capabilities"))
            .and_then(Value::as_array)
            .map(|caps| {
                caps.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        controller_image: spec
            .and_then(|s| s.get("controller"))
            .and_then(Value::as_object)
            .and_then(|c| string(c, "image")),
        annotations,
    };
    Some((meta, findings))
}

/// Normalises `{apiVersion, kind, package, version}` and `{provider|configuration|function, version}`.
fn dependency(value: &Value) -> Option<Dependency> {
    let entry = value.as_object()?;
    let version_constraint = string(entry, "version");
    let is_digest = version_constraint
        .as_deref()
        .is_some_and(|v| v.starts_with("sha256:"));
    if let Some(package) = string(entry, "package") {
        let kind = match entry.get("kind").and_then(Value::as_str) {
            Some("Provider") => DependencyKind::Provider,
            Some("Configuration") => DependencyKind::Configuration,
            Some("Function") => DependencyKind::Function,
            _ => DependencyKind::Unknown,
        };
        return Some(Dependency {
            kind,
            package,
            version_constraint,
            is_digest,
            api_version: string(entry, "apiVersion"),
        });
    }
    let (kind, package) = [
        ("provider", DependencyKind::Provider),
        ("configuration", DependencyKind::Configuration),
        ("function", DependencyKind::Function),
    ]
    .into_iter()
    .find_map(|(key, kind)| Some((kind, string(entry, key)?)))?;
    Some(Dependency {
        kind,
        package,
        version_constraint,
        is_digest,
        api_version: None,
    })
}

fn string(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn meta_reads_current_annotations_and_both_dependency_forms() {
        let value = json!({
            "apiVersion": "meta.pkg.crossplane.io/v1",
            "kind": "Configuration",
            "metadata": {
                "name": "c",
                "labels": {"pkg.crossplane.io/provider-family": "provider-family-aws"},
                "annotations": {
                    "meta.crossplane.io/maintainer": "M",
                    "meta.crossplane.io/iconURI": "data:image/svg+xml;base64,AAA",
                    "friendly-group-name.meta.crossplane.io/helm.crossplane.io": "Helm",
                    "friendly-kind-name.meta.crossplane.io/release.helm.crossplane.io": "Helm Release",
                },
            },
            "spec": {
                "crossplane": {"version": ">=v1.14.1-0"},
                "capabilities": ["SafeStart"],
                "dependsOn": [
                    {"apiVersion": "pkg.crossplane.io/v1", "kind": "Provider", "package": "x/p", "version": "=v0.3.1"},
                    {"function": "x/f", "version": "sha256:abc"},
                    {"kind": "Widget", "package": "x/w"},
                    {"version": "v1"},
                ],
            },
        });
        let (meta, findings) = extract(&value).unwrap();
        assert_eq!(meta.package_type, PackageType::Configuration);
        assert_eq!(meta.name.as_deref(), Some("c"));
        assert_eq!(meta.maintainer.as_deref(), Some("M"));
        assert_eq!(meta.provider_family.as_deref(), Some("provider-family-aws"));
        assert_eq!(meta.crossplane_version.as_deref(), Some(">=v1.14.1-0"));
        assert_eq!(meta.capabilities, vec!["SafeStart"]);
        assert_eq!(meta.friendly_group_names["helm.crossplane.io"], "Helm");
        assert_eq!(
            meta.friendly_kind_names,
            vec![FriendlyKindName {
                kind: "release".into(),
                group: "helm.crossplane.io".into(),
                name: "Helm Release".into()
            }]
        );
        let deps: Vec<(DependencyKind, &str, Option<&str>, bool)> = meta
            .depends_on
            .iter()
            .map(|d| {
                (
                    d.kind,
                    d.package.as_str(),
                    d.version_constraint.as_deref(),
                    d.is_digest,
                )
            })
            .collect();
        assert_eq!(
            deps,
            vec![
                (DependencyKind::Provider, "x/p", Some("=v0.3.1"), false),
                (DependencyKind::Function, "x/f", Some("sha256:abc"), true),
                (DependencyKind::Unknown, "x/w", None, false),
            ]
        );
        assert_eq!(findings.len(), 1);
        assert!(findings[0].message.contains("dependsOn[3]"));
    }

    #[test]
    fn meta_falls_back_to_bare_keys_and_tolerates_missing_spec() {
        let value = json!({
            "apiVersion": "meta.pkg.crossplane.io/v1alpha1",
            "kind": "Provider",
            "metadata": {"name": "p", "annotations": {"readme": "R", "iconData": "PHN2Zz4=", "license": "Apache-2.0", "maintainer": "M", "source": "S", "descriptionShort": "D"}},
        });
        let (meta, findings) = extract(&value).unwrap();
        assert_eq!(
            (
                meta.readme.as_deref(),
                meta.icon_data.as_deref(),
                meta.license.as_deref(),
                meta.source.as_deref()
            ),
            (Some("R"), Some("PHN2Zz4="), Some("Apache-2.0"), Some("S"))
        );
        assert_eq!(meta.description.as_deref(), Some("D"));
        assert!(meta.depends_on.is_empty() && meta.capabilities.is_empty() && findings.is_empty());
        assert!(extract(&json!({"apiVersion": "v1", "kind": "ConfigMap"})).is_none());
    }
}
