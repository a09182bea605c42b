//! Examples (`.up/examples.yaml`) and the API types they illustrate.
//!
//! Every example object is stored like any object (canonical digest). Two links are computed:
//! - `instantiates`: the package API whose group and kind (XR or claim kind) the object has;
//!   objects that instantiate none of the package's APIs (Secrets, ProviderConfigs of other
//!   providers, Functions, example XRDs) are *supporting* examples, kept with the package.
//! - `example_of`: the API the object is an example *of*. Generated providers annotate every
//!   object of an example file with `meta.upbound.io/example-id`, so a VPC in the Subnet example
//!   is part of the Subnet example. When the annotation resolves, it decides; otherwise
//!   `example_of` is `instantiates`.
//!
//! The example-id is documented as `<group>/<version>/<kind>`, but provider-upjet-aws writes
//! `<service>/<version>/<example file stem>` (`ec2/v1beta1/vpc`, `ec2/v1beta1/vpc-ipampool`,
//! `ec2/v1beta2/launchtemplate`), and the same id for its cluster-scoped (`ec2.aws.upbound.io`) and
//! namespaced (`ec2.aws.m.upbound.io`) twins. Resolution therefore accepts a full group or its first
//! label, matches the kind case-insensitively, then with `-`/`_` removed, then by the part before
//! the first `-`/`_`; and picks between same-named groups by the object's own group, else by the
//! group the other objects of the same file (a contiguous run of one id) resolved to.

use serde::Serialize;
use serde_json::Value;

use super::apis::ApiType;
use super::canonical;
use super::classify::{split_api_version, type_meta};

const EXAMPLE_ID: &str = "meta.upbound.io/example-id";

/// One object of the examples stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExampleObject {
    /// Position among the non-empty documents of `.up/examples.yaml`.
    pub position: usize,
    /// `sha256:<hex>` of the canonical JSON of `value`.
    pub digest: String,
    /// `apiVersion`, when the document is a Kubernetes object.
    pub api_version: Option<String>,
    /// `kind`, when the document is a Kubernetes object.
    pub kind: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
    /// The document as JSON.
    pub value: Value,
    /// The `meta.upbound.io/example-id` annotation.
    pub example_id: Option<String>,
    /// The package API this object is an instance of.
    pub instantiates: Option<ApiRef>,
    /// The package API this object is an example of.
    pub example_of: Option<ApiRef>,
    /// How `example_of` was found.
    pub link: ExampleLink,
}

impl ExampleObject {
    /// A supporting example: not an instance of any of the package's own APIs.
    pub fn is_supporting(&self) -> bool {
        self.instantiates.is_none()
    }
}

/// A reference to one of the package's API types at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiRef {
    /// Index into the package's `apis`.
    pub api_index: usize,
    /// The API type's group.
    pub group: String,
    /// The API type's kind (for a claim, the XR kind of its XRD).
    pub kind: String,
    /// The version the example uses (from its apiVersion or example-id).
    pub version: String,
    /// Whether the object is a claim of the XRD rather than the XR itself.
    pub claim: bool,
}

/// How an example was linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExampleLink {
    /// By the `meta.upbound.io/example-id` annotation.
    ExampleId,
    /// By the object's own apiVersion and kind.
    ApiVersionKind,
    /// Not linked: a supporting object whose example-id (if any) did not resolve.
    None,
}

/// Digests and links the example documents against the package's APIs.
pub fn link(documents: Vec<Value>, apis: &[ApiType]) -> Vec<ExampleObject> {
    let ids: Vec<Option<String>> = documents.iter().map(example_id).collect();
    // Runs of consecutive objects with one example-id: one example file each.
    let mut run = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let same = i > 0 && id.is_some() && ids[i - 1] == *id;
        run.push(if same { run[i - 1] } else { i });
    }

    let mut candidates = Vec::with_capacity(documents.len());
    let mut run_group: Vec<Option<String>> = vec![None; documents.len()];
    for (i, doc) in documents.iter().enumerate() {
        let found = ids[i]
            .as_deref()
            .map(|id| resolve_id(id, apis))
            .unwrap_or_default();
        let own_group = type_meta(doc).map(|(v, _)| split_api_version(v).0);
        if let Some(hit) = found
            .iter()
            .find(|(a, _)| Some(apis[*a].group.as_str()) == own_group)
        {
            run_group[run[i]].get_or_insert_with(|| apis[hit.0].group.clone());
        }
        candidates.push(found);
    }

    documents
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let tm = type_meta(&value).map(|(v, k)| (v.to_owned(), k.to_owned()));
            let instantiates = tm.as_ref().and_then(|(v, k)| instance_of(v, k, apis));
            let own_group = tm.as_ref().map(|(v, _)| split_api_version(v).0.to_owned());
            let found = &candidates[i];
            let pick = found
                .iter()
                .find(|(a, _)| Some(&apis[*a].group) == own_group.as_ref())
                .or_else(|| {
                    found
                        .iter()
                        .find(|(a, _)| Some(&apis[*a].group) == run_group[run[i]].as_ref())
                })
                .or_else(|| found.first());
            let (example_of, link) = match (pick, &instantiates) {
                (Some((api, version)), _) => (
                    Some(api_ref(apis, *api, version, false)),
                    ExampleLink::ExampleId,
                ),
                (None, Some(own)) => (Some(own.clone()), ExampleLink::ApiVersionKind),
                (None, None) => (None, ExampleLink::None),
            };
            ExampleObject {
                position: i,
                digest: canonical::digest(&value),
                api_version: tm.as_ref().map(|(v, _)| v.clone()),
                kind: tm.map(|(_, k)| k),
                name: value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                example_id: ids[i].clone(),
                instantiates,
                example_of,
                link,
                value,
            }
        })
        .collect()
}

fn example_id(value: &Value) -> Option<String> {
    let annotations = value.pointer("/metadata/annotations")?;
    annotations.get(EXAMPLE_ID)?.as_str().map(str::to_owned)
}

fn api_ref(apis: &[ApiType], api_index: usize, version: &str, claim: bool) -> ApiRef {
    ApiRef {
        api_index,
        group: apis[api_index].group.clone(),
        kind: apis[api_index].kind.clone(),
        version: version.to_owned(),
        claim,
    }
}

/// The package API an object of `apiVersion`/`kind` instantiates (XR kind first, then claim).
fn instance_of(api_version: &str, kind: &str, apis: &[ApiType]) -> Option<ApiRef> {
    let (group, version) = split_api_version(api_version);
    let same_group = || apis.iter().enumerate().filter(|(_, a)| a.group == group);
    if let Some((i, _)) = same_group().find(|(_, a)| a.kind == kind) {
        return Some(api_ref(apis, i, version, false));
    }
    let (i, _) = same_group().find(|(_, a)| a.claim.as_ref().is_some_and(|c| c.kind == kind))?;
    Some(api_ref(apis, i, version, true))
}

/// Candidate `(api index, version)` pairs for an example-id, best match tier only.
fn resolve_id(id: &str, apis: &[ApiType]) -> Vec<(usize, String)> {
    let mut parts = id.split('/');
    let (Some(group), Some(version), Some(name), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Vec::new();
    };
    let name = name.to_ascii_lowercase();
    let in_scope: Vec<(usize, String)> = apis
        .iter()
        .enumerate()
        .filter(|(_, a)| a.group == group || a.group.split('.').next() == Some(group))
        .filter(|(_, a)| a.version(version).is_some())
        .map(|(i, a)| (i, a.kind.to_ascii_lowercase()))
        .collect();
    let joined: String = name.chars().filter(|c| *c != '-' && *c != '_').collect();
    let stem = name.split(['-', '_']).next().unwrap_or_default().to_owned();
    for wanted in [name, joined, stem] {
        let hits: Vec<(usize, String)> = in_scope
            .iter()
            .filter(|(_, kind)| *kind == wanted)
            .map(|(i, _)| (*i, version.to_owned()))
            .collect();
        if !hits.is_empty() {
            return hits;
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::xpkg::apis::{ApiVersion, Definition};

    fn api(group: &str, kind: &str, versions: &[&str]) -> ApiType {
        ApiType {
            object_index: 1,
            digest: String::new(),
            definition: Definition::Crd,
            function_input: false,
            group: group.into(),
            kind: kind.into(),
            list_kind: None,
            plural: None,
            singular: None,
            short_names: vec![],
            categories: vec![],
            scope: None,
            claim: None,
            description: None,
            versions: versions
                .iter()
                .map(|v| ApiVersion {
                    name: (*v).into(),
                    served: true,
                    storage: true,
                    deprecated: false,
                    deprecation_warning: None,
                })
                .collect(),
        }
    }

    fn obj(api_version: &str, kind: &str, id: Option<&str>) -> Value {
        let mut v = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "n"}});
        if let Some(id) = id {
            v["metadata"]["annotations"] = json!({ EXAMPLE_ID: id });
        }
        v
    }

    #[test]
    fn examples_link_by_example_id_across_cluster_and_namespaced_twins() {
        let apis = vec![
            api("ec2.aws.upbound.io", "VPC", &["v1beta1"]),
            api("ec2.aws.upbound.io", "VPCIpamPool", &["v1beta1"]),
            api("ec2.aws.m.upbound.io", "VPC", &["v1beta1"]),
            api("ec2.aws.m.upbound.io", "VPCIpamPool", &["v1beta1"]),
        ];
        let docs = vec![
            obj(
                "ec2.aws.upbound.io/v1beta1",
                "VPC",
                Some("ec2/v1beta1/vpc-ipampool"),
            ),
            obj(
                "ec2.aws.upbound.io/v1beta1",
                "VPCIpamPool",
                Some("ec2/v1beta1/vpc-ipampool"),
            ),
            obj("v1", "Secret", None),
            obj(
                "iam.aws.m.upbound.io/v1beta1",
                "Role",
                Some("ec2/v1beta1/vpc-ipampool"),
            ),
            obj(
                "ec2.aws.m.upbound.io/v1beta1",
                "VPCIpamPool",
                Some("ec2/v1beta1/vpc-ipampool"),
            ),
        ];
        let linked = link(docs, &apis);
        let of: Vec<Option<(usize, ExampleLink)>> = linked
            .iter()
            .map(|e| e.example_of.as_ref().map(|r| (r.api_index, e.link)))
            .collect();
        assert_eq!(
            of,
            vec![
                Some((1, ExampleLink::ExampleId)),
                Some((1, ExampleLink::ExampleId)),
                None,
                Some((3, ExampleLink::ExampleId)),
                Some((3, ExampleLink::ExampleId)),
            ]
        );
        assert_eq!(
            linked[0].instantiates.as_ref().map(|r| r.api_index),
            Some(0)
        );
        assert!(linked[2].is_supporting() && linked[3].is_supporting());
        assert_eq!(linked[2].link, ExampleLink::None);
    }

    #[test]
    fn examples_link_claims_and_xrs_by_kind() {
        let mut xrd = api("aws.platform.upbound.io", "XNetwork", &["v1alpha1"]);
        xrd.claim = Some(crate::xpkg::apis::ClaimNames {
            kind: "Network".into(),
            plural: None,
        });
        let linked = link(
            vec![
                obj("aws.platform.upbound.io/v1alpha1", "Network", None),
                obj("aws.platform.upbound.io/v1alpha1", "XNetwork", None),
            ],
            &[xrd],
        );
        let refs: Vec<(bool, ExampleLink)> = linked
            .iter()
            .map(|e| (e.example_of.as_ref().unwrap().claim, e.link))
            .collect();
        assert_eq!(
            refs,
            vec![
                (true, ExampleLink::ApiVersionKind),
                (false, ExampleLink::ApiVersionKind)
            ]
        );
    }
}
