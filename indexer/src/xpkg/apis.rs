//! The API types a package defines: one record per CRD or XRD.
//!
//! A Function's CRDs describe its input and are never installed; they are recorded all the same,
//! marked `function_input`, so the marketplace can document them.

use serde::Serialize;
use serde_json::Value;

use super::classify::{ObjectClass, split_api_version};

/// One API type (group + kind) defined by a CRD or an XRD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiType {
    /// Index of the defining object in the package's ordered objects.
    pub object_index: usize,
    /// Digest of the defining object.
    pub digest: String,
    /// CRD or XRD.
    pub definition: Definition,
    /// A Function's input type: documented, never installed.
    pub function_input: bool,
    /// `spec.group`.
    pub group: String,
    /// `spec.names.kind`.
    pub kind: String,
    /// `spec.names.listKind`.
    pub list_kind: Option<String>,
    /// `spec.names.plural`.
    pub plural: Option<String>,
    /// `spec.names.singular`.
    pub singular: Option<String>,
    /// `spec.names.shortNames`.
    pub short_names: Vec<String>,
    /// `spec.names.categories`.
    pub categories: Vec<String>,
    /// `Cluster` or `Namespaced` (for XRDs: `Cluster` for v1, `spec.scope` or `Namespaced` for v2).
    pub scope: Option<String>,
    /// An XRD's claim names (`spec.claimNames`), when it offers a claim.
    pub claim: Option<ClaimNames>,
    /// `spec.versions`, in order.
    pub versions: Vec<ApiVersion>,
    /// The schema's own description (the storage version's, else the first that has one), its
    /// first paragraph at most [`DESCRIPTION_CHARS`] characters: what search shows of the kind.
    pub description: Option<String>,
}

/// Most characters of an API type's description kept for search.
pub const DESCRIPTION_CHARS: usize = 300;

impl ApiType {
    /// The version named `name`, if the type has it.
    pub fn version(&self, name: &str) -> Option<&ApiVersion> {
        self.versions.iter().find(|v| v.name == name)
    }
}

/// What defines an API type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Definition {
    /// `apiextensions.k8s.io` CustomResourceDefinition.
    Crd,
    /// `apiextensions.crossplane.io` CompositeResourceDefinition.
    Xrd,
}

/// The names of an XRD's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimNames {
    /// `spec.claimNames.kind`.
    pub kind: String,
    /// `spec.claimNames.plural`.
    pub plural: Option<String>,
}

/// One version of an API type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiVersion {
    /// The version name, e.g. `v1beta1`.
    pub name: String,
    /// Whether the API server serves it.
    pub served: bool,
    /// The storage version of a CRD; for an XRD, whether the version is `referenceable`.
    pub storage: bool,
    /// `deprecated: true`.
    pub deprecated: bool,
    /// `deprecationWarning`, the text clients are shown.
    pub deprecation_warning: Option<String>,
}

/// The API type defined by a CRD or XRD document, or `None` for other classes and for
/// definitions without `spec.group` and `spec.names.kind`.
pub fn extract(
    object_index: usize,
    digest: &str,
    class: ObjectClass,
    value: &Value,
    function_input: bool,
) -> Option<ApiType> {
    let definition = match class {
        ObjectClass::Crd => Definition::Crd,
        ObjectClass::Xrd => Definition::Xrd,
        _ => return None,
    };
    let spec = value.get("spec")?;
    let names = spec.get("names");
    let name = |key: &str| {
        names
            .and_then(|n| n.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let list = |key: &str| strings(names.and_then(|n| n.get(key)));

    let scope = match definition {
        Definition::Crd => str_field(spec, "scope"),
        Definition::Xrd => {
            let version = value
                .get("apiVersion")
                .and_then(Value::as_str)
                .map(|v| split_api_version(v).1);
            if version == Some("v1") {
                Some("Cluster".to_owned())
            } else {
                Some(str_field(spec, "scope").unwrap_or_else(|| "Namespaced".to_owned()))
            }
        }
    };
    let claim = match definition {
        Definition::Xrd => spec.get("claimNames").and_then(|c| {
            Some(ClaimNames {
                kind: c.get("kind")?.as_str()?.to_owned(),
                plural: c.get("plural").and_then(Value::as_str).map(str::to_owned),
            })
        }),
        Definition::Crd => None,
    };

    Some(ApiType {
        object_index,
        digest: digest.to_owned(),
        definition,
        function_input,
        group: str_field(spec, "group")?,
        kind: name("kind")?,
        list_kind: name("listKind"),
        plural: name("plural"),
        singular: name("singular"),
        short_names: list("shortNames"),
        categories: list("categories"),
        scope,
        claim,
        versions: versions(spec, definition),
        description: description(spec),
    })
}

/// The first paragraph of the schema description of the storage version (else of the first
/// version that has one, else of a v1beta1 CRD's shared `spec.validation`), cut to
/// [`DESCRIPTION_CHARS`] characters at a word.
fn description(spec: &Value) -> Option<String> {
    fn of(v: &Value) -> Option<&str> {
        v.pointer("/schema/openAPIV3Schema/description")
            .and_then(Value::as_str)
            .filter(|d| !d.trim().is_empty())
    }
    let versions = spec.get("versions").and_then(Value::as_array);
    let text = versions
        .and_then(|vs| {
            vs.iter()
                .filter(|v| {
                    let flag = |k: &str| v.get(k).and_then(Value::as_bool) == Some(true);
                    flag("storage") || flag("referenceable")
                })
                .find_map(of)
                .or_else(|| vs.iter().find_map(of))
        })
        .or_else(|| {
            spec.pointer("/validation/openAPIV3Schema/description")
                .and_then(Value::as_str)
        })?;
    let first = text.split("\n\n").next().unwrap_or(text).trim();
    let first: String = first.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(shimmer_store::text::cut_at_word(&first, DESCRIPTION_CHARS))
}

fn versions(spec: &Value, definition: Definition) -> Vec<ApiVersion> {
    let listed: Vec<ApiVersion> = spec
        .get("versions")
        .and_then(Value::as_array)
        .map(|versions| {
            versions
                .iter()
                .filter_map(|v| {
                    let flag = |key: &str| v.get(key).and_then(Value::as_bool).unwrap_or(false);
                    Some(ApiVersion {
                        name: v.get("name")?.as_str()?.to_owned(),
                        served: flag("served"),
                        storage: flag(match definition {
                            Definition::Crd => "storage",
                            Definition::Xrd => "referenceable",
                        }),
                        deprecated: flag("deprecated"),
                        deprecation_warning: str_field(v, "deprecationWarning"),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if !listed.is_empty() {
        return listed;
    }
    // apiextensions.k8s.io/v1beta1 CRDs may name a single `spec.version` instead.
    str_field(spec, "version")
        .map(|name| {
            vec![ApiVersion {
                name,
                served: true,
                storage: true,
                deprecated: false,
                deprecation_warning: None,
            }]
        })
        .unwrap_or_default()
}

fn str_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn apis_describe_themselves_by_the_storage_versions_first_paragraph() {
        let crd = |versions: Value| json!({"spec": {"group": "g.io", "names": {"kind": "K"}, "versions": versions}});
        let schema = |d: &str| json!({"openAPIV3Schema": {"type": "object", "description": d}});
        let api = |v: Value| extract(0, "d", ObjectClass::Crd, &crd(v), false).unwrap();
        let two = api(json!([
            {"name": "v1beta1", "storage": false, "schema": schema("Old.")},
            {"name": "v1", "storage": true, "schema": schema("A Bucket\n  is storage.\n\nMore.")},
        ]));
        assert_eq!(two.description.as_deref(), Some("A Bucket is storage."));
        let none_stored = api(json!([{"name": "v1", "schema": schema("Only one.")}]));
        assert_eq!(none_stored.description.as_deref(), Some("Only one."));
        let long =
            api(json!([{"name": "v1", "storage": true, "schema": schema(&"word ".repeat(100))}]));
        let d = long.description.unwrap();
        assert!(
            d.ends_with("word…") && d.chars().count() <= DESCRIPTION_CHARS + 1,
            "{d}"
        );
        assert_eq!(
            api(json!([{"name": "v1", "schema": schema("  ")}])).description,
            None
        );
    }

    #[test]
    fn apis_read_crd_names_scope_and_deprecated_versions() {
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "spec": {
                "group": "kubernetes.crossplane.io", "scope": "Cluster",
                "names": {"kind": "Object", "plural": "objects", "singular": "object", "listKind": "ObjectList",
                          "categories": ["crossplane", "managed"], "shortNames": ["obj"]},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false, "deprecated": true},
                    {"name": "v1alpha2", "served": true, "storage": true},
                ],
            },
        });
        let api = extract(3, "sha256:x", ObjectClass::Crd, &crd, false).unwrap();
        assert_eq!(
            (api.group.as_str(), api.kind.as_str(), api.scope.as_deref()),
            ("kubernetes.crossplane.io", "Object", Some("Cluster"))
        );
        assert_eq!(
            (api.object_index, api.digest.as_str(), api.definition),
            (3, "sha256:x", Definition::Crd)
        );
        assert_eq!(api.short_names, vec!["obj"]);
        assert_eq!(api.categories, vec!["crossplane", "managed"]);
        assert!(
            api.version("v1alpha1").unwrap().deprecated
                && !api.version("v1alpha1").unwrap().storage
        );
        assert!(api.version("v1alpha2").unwrap().storage);
    }

    #[test]
    fn apis_read_xrd_scope_claims_and_referenceable() {
        let v1 = json!({
            "apiVersion": "apiextensions.crossplane.io/v1", "kind": "CompositeResourceDefinition",
            "spec": {"group": "g.io", "names": {"kind": "XNet", "plural": "xnets"},
                     "claimNames": {"kind": "Net", "plural": "nets"},
                     "versions": [{"name": "v1alpha1", "served": true, "referenceable": true}]},
        });
        let api = extract(1, "d", ObjectClass::Xrd, &v1, false).unwrap();
        assert_eq!(api.scope.as_deref(), Some("Cluster"));
        assert_eq!(
            api.claim,
            Some(ClaimNames {
                kind: "Net".into(),
                plural: Some("nets".into())
            })
        );
        assert!(api.versions[0].storage && api.versions[0].served);

        let v2 = json!({
            "apiVersion": "apiextensions.crossplane.io/v2", "kind": "CompositeResourceDefinition",
            "spec": {"group": "g.io", "names": {"kind": "Net"}, "versions": []},
        });
        assert_eq!(
            extract(1, "d", ObjectClass::Xrd, &v2, false)
                .unwrap()
                .scope
                .as_deref(),
            Some("Namespaced")
        );
        assert!(extract(1, "d", ObjectClass::Composition, &v2, false).is_none());
    }

    #[test]
    fn apis_read_v1beta1_single_version() {
        let crd = json!({"spec": {"group": "g", "version": "v1", "names": {"kind": "K"}}});
        let api = extract(1, "d", ObjectClass::Crd, &crd, true).unwrap();
        assert!(api.function_input);
        assert_eq!(
            api.versions,
            vec![ApiVersion {
                name: "v1".into(),
                served: true,
                storage: true,
                deprecated: false,
                deprecation_warning: None
            }]
        );
    }
}
