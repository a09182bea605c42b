//! The top-level entry: a package's YAML streams in, everything the store keeps out.
//!
//! The types derive `Serialize` so a DB layer can store them as they are: objects by digest
//! (each stored once across all packages), the contents document (the ordered list of object
//! digests, itself digested, which identifies the package's contents independently of how its
//! image was built), and the meta, APIs, examples and lint findings that point at them.

use serde::Serialize;
use serde_json::Value;

use super::apis::{self, ApiType, Definition};
use super::canonical;
use super::classify::{self, LintFinding, ObjectClass, PackageType, type_meta};
use super::examples::{self, ExampleObject};
use super::limits::Limits;
use super::meta::{self, PackageMeta};
use super::rejection::{Rejection, Stream};
use super::yaml;

/// A package, read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParsedPackage {
    /// What the meta object says.
    pub meta: PackageMeta,
    /// Every non-empty document of `package.yaml`, the meta object first, then in stream order.
    pub objects: Vec<PackageObject>,
    /// The contents document: a JSON array of the objects' digests, in order.
    pub contents: Value,
    /// Digest of the contents document.
    pub contents_digest: String,
    /// One record per CRD or XRD.
    pub apis: Vec<ApiType>,
    /// The objects of `.up/examples.yaml`, linked to `apis`.
    pub examples: Vec<ExampleObject>,
    /// Why `.up/examples.yaml` was not read, when it was present but unreadable. Crossplane
    /// ignores examples, so this does not reject the package.
    pub examples_rejection: Option<Rejection>,
    /// Findings that do not reject the package (disallowed objects, meta placement, ...).
    pub lint: Vec<LintFinding>,
}

/// One object of `package.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageObject {
    /// `sha256:<hex>` of the canonical JSON of `value`.
    pub digest: String,
    /// What the object is.
    pub class: ObjectClass,
    /// `apiVersion`, when the document is a Kubernetes object.
    pub api_version: Option<String>,
    /// `kind`, when the document is a Kubernetes object.
    pub kind: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
    /// The document as JSON.
    pub value: Value,
}

impl PackageObject {
    fn new(value: Value) -> Self {
        let (api_version, kind) = type_meta(&value)
            .map(|(v, k)| (Some(v.to_owned()), Some(k.to_owned())))
            .unwrap_or_default();
        Self {
            digest: canonical::digest(&value),
            class: classify::classify(&value),
            api_version,
            kind,
            name: value
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            value,
        }
    }
}

/// Reads a package from its `package.yaml` stream and, if the image has one, its
/// `.up/examples.yaml` stream.
#[tracing::instrument(level = "debug", skip_all, fields(package_yaml_bytes = package_yaml.len()))]
pub fn parse_package(
    package_yaml: &[u8],
    examples_yaml: Option<&[u8]>,
    limits: &Limits,
) -> Result<ParsedPackage, Rejection> {
    let documents = yaml::parse_stream(package_yaml, &limits.package_yaml, Stream::PackageYaml)?;
    let meta_positions: Vec<usize> = documents
        .iter()
        .enumerate()
        .filter(|(_, d)| classify::meta_type(d).is_some())
        .map(|(i, _)| i)
        .collect();
    let meta_position = match meta_positions.as_slice() {
        [] => return Err(Rejection::NoMeta),
        [one] => *one,
        many => {
            return Err(Rejection::MultipleMeta {
                documents: many.to_vec(),
            });
        }
    };

    let mut documents = documents;
    let meta_document = documents.remove(meta_position);
    let objects: Vec<PackageObject> = std::iter::once(meta_document)
        .chain(documents)
        .map(PackageObject::new)
        .collect();

    let (meta, mut lint) = meta::extract(&objects[0].value).expect("object 0 is the meta object");
    let classes: Vec<(ObjectClass, &Value)> = objects.iter().map(|o| (o.class, &o.value)).collect();
    lint.extend(classify::lint(meta.package_type, &classes, &meta_positions));

    let apis = collect_apis(meta.package_type, &objects, &mut lint);

    let (examples, examples_rejection) = match examples_yaml {
        None => (Vec::new(), None),
        Some(bytes) => match yaml::parse_stream(bytes, &limits.examples_yaml, Stream::ExamplesYaml)
        {
            Ok(docs) => (examples::link(docs, &apis), None),
            Err(rejection) => {
                lint.push(LintFinding::warning(
                    None,
                    format!("examples ignored: {rejection}"),
                ));
                (Vec::new(), Some(rejection))
            }
        },
    };

    let contents = Value::Array(
        objects
            .iter()
            .map(|o| Value::String(o.digest.clone()))
            .collect(),
    );
    let contents_digest = canonical::digest(&contents);
    tracing::debug!(objects = objects.len(), apis = apis.len(), examples = examples.len(), %contents_digest, "parsed package");
    Ok(ParsedPackage {
        meta,
        objects,
        contents,
        contents_digest,
        apis,
        examples,
        examples_rejection,
        lint,
    })
}

fn collect_apis(
    package_type: PackageType,
    objects: &[PackageObject],
    lint: &mut Vec<LintFinding>,
) -> Vec<ApiType> {
    let mut apis: Vec<ApiType> = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        if !matches!(object.class, ObjectClass::Crd | ObjectClass::Xrd) {
            continue;
        }
        let function_input =
            package_type == PackageType::Function && object.class == ObjectClass::Crd;
        let Some(api) = apis::extract(
            index,
            &object.digest,
            object.class,
            &object.value,
            function_input,
        ) else {
            lint.push(LintFinding::warning(
                Some(index),
                "definition has no spec.group or spec.names.kind; it defines no API",
            ));
            continue;
        };
        if let Some(first) = apis
            .iter()
            .find(|a| a.group == api.group && a.kind == api.kind)
        {
            lint.push(LintFinding::warning(
                Some(index),
                format!(
                    "{}.{} is already defined by object {}",
                    api.kind, api.group, first.object_index
                ),
            ));
        }
        if api.definition == Definition::Crd
            && api.versions.iter().filter(|v| v.storage).count() != 1
        {
            lint.push(LintFinding::warning(
                Some(index),
                format!(
                    "{}.{} does not have exactly one storage version",
                    api.kind, api.group
                ),
            ));
        }
        apis.push(api);
    }
    apis
}

#[cfg(test)]
mod tests;
