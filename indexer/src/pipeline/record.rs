//! Writing what a run found: a rejection (kept short), a version that is no package, or a
//! package with its objects, API types and examples; and the notes a run leaves on the version.

use std::collections::HashSet;

use serde_json::json;
use shimmer_store::{
    PgPool, VersionKind,
    packages::{self, VersionRecord},
};

use super::{ApiSummary, IndexError, Outcome, Run, records};
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
    let meta_json = records::meta(&parsed, &extension_files, outcome.note.as_deref());
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
    let missing: HashSet<String> = packages::missing_objects(pool, &all)
        .await?
        .into_iter()
        .collect();
    let objects = records::objects(&mut parsed, &missing);
    let apis = records::apis(&parsed.apis);
    let examples = records::examples(&parsed.examples);
    let stored = packages::store_version(pool, &version, &objects, &apis, &examples).await?;
    super::changes::record(pool, stored.package_id).await?;
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
