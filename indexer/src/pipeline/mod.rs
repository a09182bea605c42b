//! What one index job does: read a manifest, decide what it is without downloading layers,
//! download only the layers a Crossplane package is read from, parse them, store the result.
//!
//! Errors split in two: a [`Rejection`](crate::xpkg::Rejection) of the content is a permanent answer, stored on the
//! version (`kind = rejected`) so the job is done; anything else (registry or database trouble)
//! is an [`IndexError`] and the job is retried.

mod fetch;
mod manifest;
mod outcome;
mod record;

use serde_json::{Value, json};
use shimmer_config::Visibility;
use shimmer_store::VersionKind;
use shimmer_store::{
    PgPool,
    packages::{self, VersionRecord},
};

use shimmer_registry::Client;

use crate::xpkg;
use fetch::{optional_layer, read_extensions, read_layer, read_small_blob};
use manifest::{
    CONFIG_LIMIT, DOCKER_LIST, Desc, HELM_CONFIG, IMAGE_CONFIGS, NUL_MANIFEST, OCI_INDEX,
    holds_nul, media_type_of, oversized,
};
pub use manifest::{ROLE_ANNOTATION, is_tar_layer};
pub use outcome::{ApiSummary, IndexError, Options, Outcome};
use record::{add_note, finish, reject, store_package};

/// Per-run accounting.
#[derive(Default)]
struct Run {
    downloaded: u64,
    note: Option<String>,
}

/// Indexes `reference` (a tag or digest) of `repository` on `backend`.
pub async fn index(
    pool: &PgPool,
    backend: &Client,
    repository: &str,
    reference: &str,
    options: &Options,
) -> Result<Outcome, IndexError> {
    // Taken before the read: of two jobs reading one tag, the later reading moves it.
    let asked_at = shimmer_store::unix_now();
    let (bytes, digest) = backend.manifest(repository, reference).await?;
    let tag = (!reference.contains(':')).then(|| reference.to_owned());
    let mut run = Run {
        downloaded: bytes.len() as u64,
        ..Default::default()
    };
    let base = VersionRecord {
        backend: backend.name().to_owned(),
        repository: repository.to_owned(),
        tag_resolved_at: tag.is_some().then_some(asked_at),
        tag,
        manifest_digest: digest.clone(),
        index_digest: None,
        children: vec![],
        platforms: vec![],
        media_type: None,
        artifact_type: None,
        kind: VersionKind::Rejected,
        package_type: None,
        name: None,
        meta: None,
        contents: None,
        crossplane_version: None,
        lint: json!([]),
        rejection: None,
        bytes_downloaded: 0,
        image_bytes: 0,
        visibility_checked_at: Some(shimmer_store::unix_now()),
        visibility: match options.visibility {
            Some(v) => Some(v),
            None => backend
                .anonymous_can_read(repository, &digest)
                .await
                .map(|public| {
                    if public {
                        Visibility::Public
                    } else {
                        Visibility::Private
                    }
                }),
        },
        replace: options.force,
    };
    let mut outcome = Outcome {
        repository: repository.to_owned(),
        reference: reference.to_owned(),
        manifest_digest: digest.clone(),
        index_digest: None,
        kind: VersionKind::Rejected,
        package_type: None,
        name: None,
        apis: vec![],
        objects: 0,
        objects_new: 0,
        examples: 0,
        lint: 0,
        rejection: None,
        bytes_downloaded: 0,
        image_bytes: 0,
        already_indexed: false,
        note: None,
    };
    let stored = match options.force {
        true => None,
        false => packages::stored_kind(pool, repository, &digest).await?,
    };
    if let Some(kind) = stored {
        // Only the tag may have moved: store_version with nothing new records that.
        packages::store_version(pool, &base, &[], &[], &[]).await?;
        outcome.already_indexed = true;
        outcome.kind = kind;
        return Ok(outcome);
    }

    let mut version = base;
    let guarded_limits;
    let limits = if options.guarded {
        guarded_limits = options.limits.guarded();
        add_note(&mut outcome.note, GUARDED_NOTE.into());
        &guarded_limits
    } else {
        &options.limits
    };
    if let Some(reason) = oversized(&bytes, options.max_manifest_bytes) {
        return reject(pool, version, outcome, &run, reason).await;
    }
    let Ok(manifest) = serde_json::from_slice::<Value>(&bytes) else {
        return reject(
            pool,
            version,
            outcome,
            &run,
            "manifest is not valid JSON".into(),
        )
        .await;
    };
    if holds_nul(&manifest) {
        return reject(pool, version, outcome, &run, NUL_MANIFEST.into()).await;
    }
    let mut media_type = media_type_of(&manifest).to_owned();
    version.media_type = Some(media_type.clone()).filter(|m| !m.is_empty());

    // An index: Crossplane reads its sole manifest, else the linux/amd64 one.
    let (manifest, extensions) = if media_type == OCI_INDEX
        || media_type == DOCKER_LIST
        || manifest.get("manifests").is_some()
    {
        let entries: Vec<Desc> = manifest["manifests"]
            .as_array()
            .map(|a| a.iter().filter_map(Desc::parse).collect())
            .unwrap_or_default();
        version.children = entries.iter().map(|d| d.digest.clone()).collect();
        let extensions = entries
            .iter()
            .find(|d| d.role() == Some("xpkg-extensions"))
            .cloned();
        let images: Vec<&Desc> = entries
            .iter()
            .filter(|d| {
                d.role() != Some("xpkg-extensions")
                    && d.platform.as_ref().is_none_or(|(os, _)| os != "unknown")
            })
            .collect();
        version.platforms = images
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|(os, arch)| format!("{os}/{arch}")))
            .collect();
        let chosen = match images.as_slice() {
            [one] => Some(*one),
            many => many
                .iter()
                .find(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|(os, arch)| os == "linux" && arch == "amd64")
                })
                .copied(),
        };
        let Some(chosen) = chosen else {
            version.kind = VersionKind::Index;
            version.index_digest = Some(digest.clone());
            outcome.note = Some("index has no single or linux/amd64 manifest".into());
            return finish(pool, version, outcome, &run).await;
        };
        version.index_digest = Some(digest.clone());
        outcome.index_digest = Some(digest.clone());
        let (child, _) = backend.manifest(repository, &chosen.digest).await?;
        run.downloaded += child.len() as u64;
        if let Some(reason) = oversized(&child, options.max_manifest_bytes) {
            return reject(pool, version, outcome, &run, format!("platform {reason}")).await;
        }
        let Ok(child) = serde_json::from_slice::<Value>(&child) else {
            return reject(
                pool,
                version,
                outcome,
                &run,
                "platform manifest is not valid JSON".into(),
            )
            .await;
        };
        if holds_nul(&child) {
            return reject(pool, version, outcome, &run, NUL_MANIFEST.into()).await;
        }
        media_type = child["mediaType"]
            .as_str()
            .unwrap_or(&chosen.media_type)
            .to_owned();
        (child, extensions)
    } else {
        (manifest, None)
    };

    let layers: Vec<Desc> = manifest["layers"]
        .as_array()
        .map(|a| a.iter().filter_map(Desc::parse).collect())
        .unwrap_or_default();
    let config = Desc::parse(&manifest["config"]);
    let artifact_type = manifest["artifactType"].as_str().map(str::to_owned);
    version.artifact_type = artifact_type.clone();
    version.image_bytes =
        (layers.iter().map(|l| l.size).sum::<u64>() + config.as_ref().map_or(0, |c| c.size)) as i64;
    let config_type = config
        .as_ref()
        .map(|c| c.media_type.as_str())
        .unwrap_or_default();

    // Not an image: record what it is, download nothing.
    if config_type == HELM_CONFIG {
        version.kind = VersionKind::Helm;
        return finish(pool, version, outcome, &run).await;
    }
    if artifact_type.is_some() || !IMAGE_CONFIGS.contains(&config_type) {
        version.kind = VersionKind::Artifact;
        return finish(pool, version, outcome, &run).await;
    }

    // Layer roles: descriptor annotations, else the config's `io.crossplane.xpkg:<digest>` labels.
    let mut roles: Vec<(String, Desc)> = layers
        .iter()
        .filter_map(|l| Some((l.role()?.to_owned(), l.clone())))
        .collect();
    // A manifest with an image config but no tar layer (a cosign signature or attestation, an
    // artifact pushed the old way) cannot be a package: record its types, read nothing more.
    let tar_layers: Vec<Desc> = layers
        .iter()
        .filter(|l| is_tar_layer(&l.media_type))
        .cloned()
        .collect();
    if roles.is_empty() && !layers.is_empty() && tar_layers.is_empty() {
        let mut types: Vec<&str> = layers.iter().map(|l| l.media_type.as_str()).collect();
        types.dedup();
        version.kind = VersionKind::Artifact;
        version.media_type = Some(media_type.clone());
        if version.artifact_type.is_none() {
            // No `artifactType`: the layers' type is what says what it is.
            version.artifact_type = types.first().map(|t| (*t).to_owned());
        }
        outcome.note = Some(format!(
            "not a package: no layer is a tar layer ({})",
            types.join(", ")
        ));
        return finish(pool, version, outcome, &run).await;
    }
    let mut config_json = Value::Null;
    if roles.is_empty()
        && let Some(c) = &config
    {
        let Some(raw) = read_small_blob(backend, repository, c, CONFIG_LIMIT, &mut run).await?
        else {
            // Truncated, the config would read as empty and the image as a roleless package.
            version.kind = VersionKind::Image;
            version.media_type = Some(media_type.clone());
            outcome.note = Some(format!(
                "image config is larger than the {CONFIG_LIMIT}-byte read cap ({} bytes declared); \
                 its labels were not read and its layers were not searched for a package",
                c.size
            ));
            return finish(pool, version, outcome, &run).await;
        };
        let Ok(parsed) = serde_json::from_slice::<Value>(&raw) else {
            // Read as nothing, it would look like a roleless package image and be flattened.
            version.kind = VersionKind::Image;
            version.media_type = Some(media_type.clone());
            outcome.note = Some(
                "image config is not valid JSON; its layers were not searched for a package".into(),
            );
            return finish(pool, version, outcome, &run).await;
        };
        if holds_nul(&parsed) {
            return reject(pool, version, outcome, &run, NUL_MANIFEST.into()).await;
        }
        config_json = parsed;
        if let Some(labels) = config_json["config"]["Labels"].as_object() {
            for (key, role) in labels {
                if let (Some(d), Some(role)) =
                    (key.strip_prefix("io.crossplane.xpkg:"), role.as_str())
                    && let Some(layer) = layers.iter().find(|l| l.digest == d)
                {
                    roles.push((role.to_owned(), layer.clone()));
                }
            }
        }
    }
    version.media_type = Some(media_type.clone());

    let base_layer = roles
        .iter()
        .find(|(r, _)| r == "base")
        .map(|(_, d)| d.clone());
    let (package_yaml, layer_media) = match base_layer {
        Some(layer) => {
            let contents = match read_layer(backend, repository, &layer, limits, &mut run).await? {
                Ok(c) => c,
                Err(r) => return reject(pool, version, outcome, &run, r.to_string()).await,
            };
            (contents.package_yaml.map(|f| f.bytes), layer.media_type)
        }
        None => {
            // No roles at all. Only an image that looks like a package (no entrypoint or command:
            // nothing to run) is flattened, only its tar layers, and only up to `flatten_limit`
            // bytes.
            let runnable = !config_json["config"]["Entrypoint"].is_null()
                || !config_json["config"]["Cmd"].is_null();
            let total: u64 = tar_layers.iter().map(|l| l.size).sum();
            if runnable || tar_layers.is_empty() {
                version.kind = VersionKind::Image;
                return finish(pool, version, outcome, &run).await;
            }
            if total > options.flatten_limit {
                version.kind = VersionKind::Image;
                outcome.note = Some(format!(
                    "no package layer roles; not flattening {total} bytes of layers (limit {})",
                    options.flatten_limit
                ));
                run.note = outcome.note.clone();
                return finish(pool, version, outcome, &run).await;
            }
            // Later layers win, as they would when the image is flattened. These are ordinary
            // image layers, where symlinks and the like are normal: they are skipped, not
            // rejected (the base and upbound layers keep the strict policy).
            let mut flatten_limits = limits.clone();
            flatten_limits.layer.unsafe_entries = xpkg::limits::UnsafeEntryPolicy::Skip;
            let mut found = None;
            for layer in &tar_layers {
                match read_layer(backend, repository, layer, &flatten_limits, &mut run).await? {
                    Ok(c) => {
                        if let Some(f) = c.package_yaml {
                            found = Some(f.bytes);
                        }
                    }
                    Err(r) => return reject(pool, version, outcome, &run, r.to_string()).await,
                }
            }
            if found.is_none() {
                version.kind = VersionKind::Image;
                return finish(pool, version, outcome, &run).await;
            }
            (found, String::new())
        }
    };
    let _ = layer_media;
    let Some(package_yaml) = package_yaml else {
        return reject(
            pool,
            version,
            outcome,
            &run,
            "the base layer holds no package.yaml".into(),
        )
        .await;
    };

    let mut examples_yaml = None;
    let mut extension_files = Vec::new();
    if !options.guarded {
        if let Some((_, layer)) = roles.iter().find(|(r, _)| r == "upbound") {
            match optional_layer(read_layer(backend, repository, layer, limits, &mut run).await)? {
                Ok(c) => examples_yaml = c.examples_yaml.map(|f| f.bytes),
                Err(r) => add_note(&mut outcome.note, format!("examples layer not read: {r}")),
            }
        }
        if let Some(ext) = extensions {
            extension_files =
                read_extensions(backend, repository, &ext, limits, &mut run, &mut outcome).await?;
        }
    }

    let parse_limits = limits.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        xpkg::parse_package(&package_yaml, examples_yaml.as_deref(), &parse_limits)
    })
    .await?;
    let parsed = match parsed {
        Ok(p) => p,
        Err(r) => return reject(pool, version, outcome, &run, r.to_string()).await,
    };
    store_package(
        pool,
        version,
        outcome,
        &run,
        parsed,
        extension_files,
        limits,
    )
    .await
}

/// What a guarded run says on the version.
const GUARDED_NOTE: &str = "indexed in guarded mode: a worker stopped while indexing this \
     version before, so it was read under tighter limits and without examples or extension files";
