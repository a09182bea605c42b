//! A parsed package as the store's records, pure conversions: the version's `meta` document,
//! the object rows (bodies only for objects the store lacks, moved, never copied), the API
//! type rows and the example rows.

use std::collections::HashSet;

use serde_json::{Value, json};
use shimmer_store::packages::{ApiRecord, ExampleRecord, ObjectRecord};

use crate::xpkg::{self, ParsedPackage};

/// The version's `meta`: the package's metadata, its extension files (text where it is UTF-8),
/// the run's note, and why its examples were refused.
pub(super) fn meta(
    parsed: &ParsedPackage,
    extension_files: &[xpkg::layers::ExtensionFile],
    note: Option<&str>,
) -> Value {
    let mut meta = serde_json::to_value(&parsed.meta).unwrap_or(Value::Null);
    if !extension_files.is_empty() {
        let files: Vec<Value> = extension_files
            .iter()
            .map(|e| {
                // U+0000 becomes U+FFFD, as CommonMark asks of readmes and as `jsonb`, which
                // holds no NUL, needs.
                let text = String::from_utf8(e.file.bytes.clone())
                    .ok()
                    .map(|t| t.replace('\0', "\u{FFFD}"));
                let path = e.file.path.replace('\0', "\u{FFFD}");
                json!({"folder": e.folder, "path": path, "size": e.file.bytes.len(), "text": text})
            })
            .collect();
        meta["extensions"] = Value::from(files);
    }
    if let Some(note) = note {
        // A layer read around the package (examples, extensions) that hit a limit.
        meta["note"] = Value::from(note);
    }
    if let Some(r) = &parsed.examples_rejection {
        meta["examples_rejection"] = Value::from(r.to_string());
    }
    meta
}

/// The object rows of the package's objects and examples that the store lacks (`missing`),
/// each once; the package objects' bodies are moved out of `parsed`.
pub(super) fn objects(parsed: &mut ParsedPackage, missing: &HashSet<String>) -> Vec<ObjectRecord> {
    let mut records = Vec::with_capacity(missing.len());
    let mut queued = HashSet::new();
    let mut push = |digest: &str,
                    api_version: Option<&str>,
                    kind: Option<&str>,
                    name: Option<&str>,
                    class: &str,
                    body: &mut dyn FnMut() -> String| {
        if missing.contains(digest) && queued.insert(digest.to_owned()) {
            let body = body();
            records.push(ObjectRecord {
                digest: digest.to_owned(),
                api_version: api_version.unwrap_or_default().to_owned(),
                kind: kind.unwrap_or_default().to_owned(),
                name: name.map(str::to_owned),
                class: class.to_owned(),
                size_bytes: i32::try_from(body.len()).unwrap_or(i32::MAX),
                body,
            });
        }
    };
    for mut o in std::mem::take(&mut parsed.objects) {
        let class = serde_json::to_value(o.class)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        push(
            &o.digest,
            o.api_version.as_deref(),
            o.kind.as_deref(),
            o.name.as_deref(),
            &class,
            &mut || std::mem::take(&mut o.json),
        );
    }
    for e in &parsed.examples {
        push(
            &e.digest,
            e.api_version.as_deref(),
            e.kind.as_deref(),
            e.name.as_deref(),
            "example",
            &mut || {
                String::from_utf8(xpkg::canonical::to_vec(&e.value))
                    .expect("canonical JSON of a Value is UTF-8")
            },
        );
    }
    records
}

/// The API type rows: served and storage versions, and the kind deprecated as a whole only
/// when every version still served is (one deprecated version beside a current one marks that
/// version, not the API).
pub(super) fn apis(apis: &[xpkg::apis::ApiType]) -> Vec<ApiRecord> {
    apis.iter()
        .map(|a| ApiRecord {
            object_digest: a.digest.clone(),
            definition: if a.function_input {
                "function_input".into()
            } else {
                serde_json::to_value(a.definition)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            },
            api_group: a.group.clone(),
            kind: a.kind.clone(),
            description: a.description.clone(),
            plural: a.plural.clone(),
            singular: a.singular.clone(),
            short_names: a.short_names.clone(),
            categories: a.categories.clone(),
            scope: a.scope.clone(),
            served_versions: a
                .versions
                .iter()
                .filter(|v| v.served)
                .map(|v| v.name.clone())
                .collect(),
            storage_version: a
                .versions
                .iter()
                .find(|v| v.storage)
                .map(|v| v.name.clone()),
            versions: serde_json::to_value(&a.versions).unwrap_or_else(|_| json!([])),
            deprecated: a.versions.iter().any(|v| v.served)
                && a.versions.iter().filter(|v| v.served).all(|v| v.deprecated),
        })
        .collect()
}

/// The example rows, each linked to the API it is an example of (by example id), else the one
/// it instantiates.
pub(super) fn examples(examples: &[xpkg::examples::ExampleObject]) -> Vec<ExampleRecord> {
    examples
        .iter()
        .map(|e| {
            let api = e.example_of.as_ref().or(e.instantiates.as_ref());
            ExampleRecord {
                object_digest: e.digest.clone(),
                api_group: api.map(|a| a.group.clone()),
                kind: api.map(|a| a.kind.clone()).or_else(|| e.kind.clone()),
                api_version: api
                    .map(|a| a.version.clone())
                    .or_else(|| e.api_version.clone()),
                example_id: e.example_id.clone(),
                supporting: e.is_supporting(),
            }
        })
        .collect()
}
