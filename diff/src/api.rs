//! API definitions (CRDs and XRDs) compared as wholes: an API removed or added, its scope, its
//! served versions, deprecations and storage version; then each version served on both sides
//! by its schema ([`crate::schema`]). XRDs are read as CRDs are, each served version's
//! `openAPIV3Schema` from its root; an XRD's storage is its `referenceable` version.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{
    change::{Change, Code, Severity},
    schema::Walk,
};

/// One version of a CRD or XRD as listed in `spec.versions` (or a v1beta1 CRD's single
/// `spec.version`), with its schema (a v1beta1 CRD's shared `spec.validation` one where the
/// version has none), borrowed from the definition.
#[derive(Debug, Clone)]
pub struct ApiVersion<'a> {
    pub name: &'a str,
    /// `served`, true when unset.
    pub served: bool,
    /// A CRD's `storage`; an XRD's `referenceable`.
    pub storage: bool,
    pub deprecated: bool,
    pub deprecation_warning: Option<&'a str>,
    /// Its `openAPIV3Schema`.
    pub schema: Option<&'a Value>,
}

/// What is compared of one definition.
pub(crate) struct Api<'a> {
    scope: Option<String>,
    versions: Vec<ApiVersion<'a>>,
}

/// The versions of a CRD (`apiextensions.k8s.io/v1` and `v1beta1`) or XRD, in their order.
pub fn api_versions(body: &Value) -> Vec<ApiVersion<'_>> {
    let spec = &body["spec"];
    let shared = spec
        .pointer("/validation/openAPIV3Schema")
        .filter(|s| !s.is_null());
    let mut versions: Vec<ApiVersion<'_>> = spec["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    Some(ApiVersion {
                        name: v["name"].as_str()?,
                        served: v["served"].as_bool().unwrap_or(true),
                        storage: v["storage"]
                            .as_bool()
                            .or(v["referenceable"].as_bool())
                            .unwrap_or(false),
                        deprecated: v["deprecated"].as_bool().unwrap_or(false),
                        deprecation_warning: v["deprecationWarning"].as_str(),
                        schema: v
                            .pointer("/schema/openAPIV3Schema")
                            .filter(|s| !s.is_null())
                            .or(shared),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty()
        && let Some(name) = spec["version"].as_str()
    {
        versions.push(ApiVersion {
            name,
            served: true,
            storage: true,
            deprecated: false,
            deprecation_warning: None,
            schema: shared,
        });
    }
    versions
}

/// Reads a CRD's or XRD's scope and versions.
pub(crate) fn read(body: &Value) -> Api<'_> {
    let spec = &body["spec"];
    let xrd = body["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("apiextensions.crossplane.io/"));
    let scope = match spec["scope"].as_str() {
        Some(s) => Some(s.to_owned()),
        // An XRD of apiextensions.crossplane.io/v1 defines cluster-scoped composites; v2's
        // default is namespaced.
        None if xrd && body["apiVersion"] == "apiextensions.crossplane.io/v1" => {
            Some("Cluster".to_owned())
        }
        None if xrd => Some("Namespaced".to_owned()),
        None => None,
    };
    let versions = api_versions(body);
    Api { scope, versions }
}

/// The changes from `old` to `new`, two definitions of the API named `api` (`group/Kind`).
pub(crate) fn compare(api: &str, old: &Api<'_>, new: &Api<'_>, out: &mut Vec<Change>) {
    if old.scope != new.scope {
        out.push(Change::new(
            api,
            None,
            None,
            Code::ScopeChanged,
            format!(
                "The scope changed from {} to {}.",
                old.scope.as_deref().unwrap_or("unset"),
                new.scope.as_deref().unwrap_or("unset")
            ),
        ));
    }
    let served = |a: &'_ Api<'_>| -> BTreeMap<String, usize> {
        a.versions
            .iter()
            .enumerate()
            .filter(|(_, v)| v.served)
            .map(|(i, v)| (v.name.to_owned(), i))
            .collect()
    };
    let (os, ns) = (served(old), served(new));
    for name in os.keys().filter(|n| !ns.contains_key(*n)) {
        out.push(Change::new(
            api,
            Some(name),
            None,
            Code::VersionRemoved,
            format!("{name} is no longer served."),
        ));
    }
    for (name, &i) in &ns {
        let Some(&o) = os.get(name) else {
            out.push(Change::new(
                api,
                Some(name),
                None,
                Code::VersionAdded,
                format!("{name} is now served."),
            ));
            continue;
        };
        let (ov, nv) = (&old.versions[o], &new.versions[i]);
        if nv.deprecated && !ov.deprecated {
            let warning = nv
                .deprecation_warning
                .map(|w| format!(": \"{w}\""))
                .unwrap_or_default();
            out.push(Change::new(
                api,
                Some(name),
                None,
                Code::VersionDeprecated,
                format!("{name} is deprecated{warning}."),
            ));
        }
        match (ov.schema, nv.schema) {
            (Some(o), Some(n)) => Walk {
                api,
                version: name,
                out,
            }
            .node("", o, n),
            (o, n) if o.is_some() != n.is_some() => out.push(Change::new(
                api,
                Some(name),
                None,
                Code::Unclassified,
                format!(
                    "{name}'s schema was {}; no rule covers it.",
                    if n.is_some() { "added" } else { "removed" }
                ),
            )),
            _ => {}
        }
    }
    storage(api, old, new, out);
}

/// The storage version moved: no break when the new one existed before (a cluster can convert),
/// a break when it did not.
fn storage(api: &str, old: &Api<'_>, new: &Api<'_>, out: &mut Vec<Change>) {
    fn of<'a>(a: &Api<'a>) -> Option<&'a str> {
        a.versions.iter().find(|v| v.storage).map(|v| v.name)
    }
    let (Some(o), Some(n)) = (of(old), of(new)) else {
        return;
    };
    if o == n {
        return;
    }
    let existed = old.versions.iter().any(|v| v.name == n);
    let (severity, detail) = if existed {
        (
            Severity::Info,
            format!("The storage version moved from {o} to {n}."),
        )
    } else {
        (
            Severity::Error,
            format!("The storage version moved from {o} to {n}, which did not exist before."),
        )
    };
    out.push(Change::with_severity(
        api,
        None,
        None,
        Code::StorageVersionChanged,
        severity,
        detail,
    ));
}
