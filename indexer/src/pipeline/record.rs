//! Writing what a run found: a rejection (kept short), a version that is no package, or a
//! package with its objects, API types and examples; and the notes a run leaves on the version.

use serde_json::{Value, json};
use shimmer_store::VersionKind;
use shimmer_store::{
    PgPool,
    packages::{self, ApiRecord, ExampleRecord, ObjectRecord, VersionRecord},
};

use super::{ApiSummary, IndexError, Outcome, Run};
use crate::xpkg::{self, Limits, ParsedPackage, Rejection};

/// Appends `note` to the notes of a run (`; `-separated), each note at most a few lines.
pub(super) fn add_note(notes: &mut Option<String>, note: String) {
    let note = shimmer_store::text::shorten(&note, 1024).into_owned();
    match notes {
        Some(n) => {
            n.push_str("; ");
            n.push_str(&note);
        }
        None => *notes = Some(note),
    }
}

pub(super) async fn reject(
    pool: &PgPool,
    mut version: VersionRecord,
    mut outcome: Outcome,
    run: &Run,
    reason: String,
) -> Result<Outcome, IndexError> {
    let reason = shimmer_store::text::shorten(&reason, shimmer_store::text::MAX_KEPT_TEXT_BYTES)
        .into_owned();
    tracing::info!(repository = %version.repository, digest = %version.manifest_digest, %reason, "package rejected");
    version.kind = VersionKind::Rejected;
    version.rejection = Some(reason.clone());
    outcome.rejection = Some(reason);
    finish(pool, version, outcome, run).await
}

pub(super) async fn finish(
    pool: &PgPool,
    mut version: VersionRecord,
    mut outcome: Outcome,
    run: &Run,
) -> Result<Outcome, IndexError> {
    version.bytes_downloaded = run.downloaded as i64;
    if outcome.note.is_none() {
        outcome.note = run.note.clone();
    }
    if let (None, Some(note)) = (&version.meta, &outcome.note) {
        // Why a manifest was not read as a package stays visible on the version.
        version.meta = Some(json!({ "note": note }));
    }
    packages::store_version(pool, &version, &[], &[], &[]).await?;
    outcome.kind = version.kind;
    outcome.bytes_downloaded = run.downloaded;
    outcome.image_bytes = version.image_bytes as u64;
    Ok(outcome)
}

pub(super) async fn store_package(
    pool: &PgPool,
    mut version: VersionRecord,
    mut outcome: Outcome,
    run: &Run,
    mut parsed: ParsedPackage,
    extension_files: Vec<xpkg::layers::ExtensionFile>,
    limits: &Limits,
) -> Result<Outcome, IndexError> {
    let meta = &parsed.meta;
    version.kind = VersionKind::Package;
    version.package_type = Some(meta.package_type.as_str().to_owned());
    version.name = meta.name.clone();
    version.crossplane_version = meta.crossplane_version.clone();
    let mut meta_json = serde_json::to_value(meta).unwrap_or(Value::Null);
    if !extension_files.is_empty() {
        meta_json["extensions"] = Value::from(
            extension_files
                .iter()
                .map(|e| {
                    // U+0000 becomes U+FFFD, as CommonMark asks of readmes and as `jsonb`,
                    // which holds no NUL, needs.
                    let text = String::from_utf8(e.file.bytes.clone())
                        .ok()
                        .map(|t| t.replace('\0', "\u{FFFD}"));
                    let path = e.file.path.replace('\0', "\u{FFFD}");
                    json!({"folder": e.folder, "path": path, "size": e.file.bytes.len(),
                                "text": text})
                })
                .collect::<Vec<_>>(),
        );
    }
    if let Some(note) = &outcome.note {
        // A layer read around the package (examples, extensions) that hit a limit.
        meta_json["note"] = Value::from(note.clone());
    }
    if let Some(r) = &parsed.examples_rejection {
        meta_json["examples_rejection"] = Value::from(r.to_string());
    }
    // Serialised once to be measured: the extension budget keeps this a few MiB at most.
    let meta_bytes = serde_json::to_vec(&meta_json).map_or(0, |v| v.len() as u64);
    let max_meta = limits.version.max_meta_bytes;
    if meta_bytes > max_meta {
        let reason = Rejection::limit(
            xpkg::Limit::MetaBytes,
            max_meta,
            format!("the version's metadata is {meta_bytes} bytes of JSON"),
        );
        return reject(pool, version, outcome, run, reason.to_string()).await;
    }
    version.meta = Some(meta_json);
    version.lint = serde_json::to_value(&parsed.lint).unwrap_or_else(|_| json!([]));
    let object_digests: Vec<String> = parsed.objects.iter().map(|o| o.digest.clone()).collect();
    version.contents = Some((parsed.contents_digest.clone(), object_digests));
    version.bytes_downloaded = run.downloaded as i64;

    // Send bodies only for objects the store lacks.
    let mut all: Vec<String> = parsed.objects.iter().map(|o| o.digest.clone()).collect();
    all.extend(parsed.examples.iter().map(|e| e.digest.clone()));
    all.sort();
    all.dedup();
    let missing: std::collections::HashSet<String> = packages::missing_objects(pool, &all)
        .await?
        .into_iter()
        .collect();
    // Bodies are the objects' canonical JSON, moved out of `parsed`, never copied.
    let mut records = Vec::with_capacity(missing.len());
    let mut queued = std::collections::HashSet::new();
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
    let apis: Vec<ApiRecord> = parsed
        .apis
        .iter()
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
            // The kind as a whole: every version still served is deprecated (one deprecated
            // version beside a current one marks that version, not the API).
            deprecated: a.versions.iter().any(|v| v.served)
                && a.versions.iter().filter(|v| v.served).all(|v| v.deprecated),
        })
        .collect();
    let examples: Vec<ExampleRecord> = parsed
        .examples
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
        .collect();

    let stored = packages::store_version(pool, &version, &records, &apis, &examples).await?;
    outcome.kind = VersionKind::Package;
    outcome.package_type = version.package_type.clone();
    outcome.name = version.name.clone();
    outcome.apis = parsed
        .apis
        .iter()
        .map(|a| ApiSummary {
            group: a.group.clone(),
            kind: a.kind.clone(),
            versions: a.versions.iter().map(|v| v.name.clone()).collect(),
        })
        .collect();
    // Both counts are of distinct objects (package objects and examples): `objects` of this
    // version, `objects_new` of those the store lacked, so `objects_new <= objects`.
    outcome.objects = all.len();
    outcome.objects_new = stored.objects_new;
    outcome.examples = parsed.examples.len();
    outcome.lint = parsed.lint.len();
    outcome.bytes_downloaded = run.downloaded;
    outcome.image_bytes = version.image_bytes as u64;
    Ok(outcome)
}
