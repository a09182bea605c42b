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
use super::classify::{self, LintFinding, ObjectClass, Outline, PackageType, type_meta};
use super::examples::{self, ExampleObject};
use super::limits::Limits;
use super::meta::{self, PackageMeta};
use super::rejection::{Limit, Rejection, Stream};
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
///
/// The document is kept as its canonical JSON encoding only: a large provider's documents as
/// `Value` trees take several times the YAML's size, the encoding less than the YAML.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageObject {
    /// `sha256:<hex>` of `json`.
    pub digest: String,
    /// What the object is.
    pub class: ObjectClass,
    /// `apiVersion`, when the document is a Kubernetes object.
    pub api_version: Option<String>,
    /// `kind`, when the document is a Kubernetes object.
    pub kind: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
    /// The document's canonical JSON encoding ([`canonical::write`]); serialized as the JSON
    /// value it encodes.
    #[serde(rename = "value", serialize_with = "as_json_value")]
    pub json: String,
}

impl PackageObject {
    /// The document as a JSON value, decoded from `json`.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.json).expect("canonical JSON decodes")
    }
}

fn as_json_value<S: serde::Serializer>(json: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serde_json::from_str::<Value>(json)
        .map_err(serde::ser::Error::custom)?
        .serialize(serializer)
}

/// One document of `package.yaml`, reduced as soon as it is parsed to what the rest of
/// [`parse_package`] reads of it; only a meta object keeps its tree.
struct Document {
    object: PackageObject,
    shape: &'static str,
    /// The API type of a CRD or XRD, for its position 0 and as no Function input: both are
    /// known only once the whole stream (and so the meta) is read.
    api: Option<ApiType>,
    meta: Option<Value>,
}

impl Document {
    fn new(value: Value) -> Self {
        let mut json = canonical::to_vec(&value);
        json.shrink_to_fit();
        let json = String::from_utf8(json).expect("canonical JSON of a Value is UTF-8");
        let digest = canonical::digest_of_encoding(json.as_bytes());
        let class = classify::classify(&value);
        let (api_version, kind) = type_meta(&value)
            .map(|(v, k)| (Some(v.to_owned()), Some(k.to_owned())))
            .unwrap_or_default();
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Self {
            api: apis::extract(0, &digest, class, &value, false),
            shape: classify::shape(&value),
            object: PackageObject {
                digest,
                class,
                api_version,
                kind,
                name,
                json,
            },
            meta: (class == ObjectClass::Meta).then_some(value),
        }
    }

    fn outline(&self) -> Outline<'_> {
        Outline {
            class: self.object.class,
            type_meta: self
                .object
                .api_version
                .as_deref()
                .zip(self.object.kind.as_deref()),
            shape: self.shape,
        }
    }
}

/// The documents of a stream, each reduced as the parser hands it over.
#[derive(Default)]
struct Documents(Vec<Document>);

impl Extend<Value> for Documents {
    fn extend<I: IntoIterator<Item = Value>>(&mut self, values: I) {
        self.0.extend(values.into_iter().map(Document::new));
    }
}

/// Reads a package from its `package.yaml` stream and, if the image has one, its
/// `.up/examples.yaml` stream.
///
/// Kept whole: one pass over the package's documents, classifying each in order.
#[tracing::instrument(level = "debug", skip_all, fields(package_yaml_bytes = package_yaml.len()))]
pub fn parse_package(
    package_yaml: &[u8],
    examples_yaml: Option<&[u8]>,
    limits: &Limits,
) -> Result<ParsedPackage, Rejection> {
    let Documents(mut documents) =
        yaml::parse_stream_into(package_yaml, &limits.package_yaml, Stream::PackageYaml)?;
    // One object the marketplace would have to load and render whole for one page.
    if let Some((i, d)) = documents
        .iter()
        .enumerate()
        .find(|(_, d)| d.object.json.len() as u64 > limits.max_object_bytes)
    {
        return Err(Rejection::limit(
            Limit::ObjectBytes,
            limits.max_object_bytes,
            format!(
                "package.yaml object {i} ({} {}) is {} bytes of JSON",
                d.object.kind.as_deref().unwrap_or("?"),
                d.object.name.as_deref().unwrap_or("?"),
                d.object.json.len()
            ),
        ));
    }
    let objects_bytes: u64 = documents.iter().map(|d| d.object.json.len() as u64).sum();
    if objects_bytes > limits.version.max_objects_bytes {
        return Err(Rejection::limit(
            Limit::ObjectsBytes,
            limits.version.max_objects_bytes,
            format!("package.yaml's objects are {objects_bytes} bytes of JSON"),
        ));
    }
    let meta_positions: Vec<usize> = documents
        .iter()
        .enumerate()
        .filter(|(_, d)| d.object.class == ObjectClass::Meta)
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

    let mut meta_document = documents.remove(meta_position);
    let meta_value = meta_document
        .meta
        .take()
        .expect("a meta object keeps its value");
    let mut documents: Vec<Document> = std::iter::once(meta_document).chain(documents).collect();

    let (meta, mut lint) = meta::extract(&meta_value).expect("object 0 is the meta object");
    let outlines: Vec<Outline<'_>> = documents.iter().map(Document::outline).collect();
    lint.extend(classify::lint(
        meta.package_type,
        &outlines,
        &meta_positions,
    ));
    drop(outlines);

    let mut apis = collect_apis(meta.package_type, &mut documents, &mut lint);
    check_apis(&mut apis, &limits.version)?;
    let objects: Vec<PackageObject> = documents.into_iter().map(|d| d.object).collect();

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
    documents: &mut [Document],
    lint: &mut Vec<LintFinding>,
) -> Vec<ApiType> {
    let mut apis: Vec<ApiType> = Vec::new();
    for (index, document) in documents.iter_mut().enumerate() {
        let class = document.object.class;
        if !matches!(class, ObjectClass::Crd | ObjectClass::Xrd) {
            continue;
        }
        let Some(mut api) = document.api.take() else {
            lint.push(LintFinding::warning(
                Some(index),
                "definition has no spec.group or spec.names.kind; it defines no API",
            ));
            continue;
        };
        api.object_index = index;
        api.function_input = package_type == PackageType::Function && class == ObjectClass::Crd;
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

/// One API type per object (a CRD repeated in a package is one API, not two rows), within the
/// version's limits on API types and on versions of one API.
fn check_apis(
    apis: &mut Vec<ApiType>,
    limits: &super::limits::VersionLimits,
) -> Result<(), Rejection> {
    let mut seen = std::collections::HashSet::new();
    apis.retain(|a| seen.insert(a.digest.clone()));
    if apis.len() > limits.max_api_types {
        return Err(Rejection::limit(
            Limit::ApiTypes,
            limits.max_api_types as u64,
            format!("package.yaml defines {} API types", apis.len()),
        ));
    }
    if let Some(a) = apis
        .iter()
        .find(|a| a.versions.len() > limits.max_api_versions)
    {
        return Err(Rejection::limit(
            Limit::ApiVersions,
            limits.max_api_versions as u64,
            format!(
                "{} ({}) has {} versions",
                shimmer_store::text::shorten(&a.kind, 100),
                shimmer_store::text::shorten(&a.group, 200),
                a.versions.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
