//! What one index job does: read a manifest, decide what it is without downloading layers,
//! download only the layers a Crossplane package is read from, parse them, store the result.
//!
//! Errors split in two: a [`Rejection`] of the content is a permanent answer, stored on the
//! version (`kind = rejected`) so the job is done; anything else (registry or database trouble)
//! is an [`IndexError`] and the job is retried.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use shimmer_store::{
    PgPool,
    packages::{self, ApiRecord, ExampleRecord, ObjectRecord, VersionRecord},
};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::{
    registry::{BackendReader, RegistryError},
    xpkg::{self, Limits, ParsedPackage, Rejection, layers::LayerContents},
};

pub const ROLE_ANNOTATION: &str = "io.crossplane.xpkg";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
/// Largest image config read (to find role labels).
const CONFIG_LIMIT: usize = 1024 * 1024;

/// A manifest's media type: its `mediaType`, else what its fields make it. The field is
/// optional in OCI's image manifest and index (helm's and oras-go's manifests leave it out;
/// registries go by the `Content-Type` they were pushed with), and Docker's schema 2 types
/// require it, so a manifest without one is OCI's: an index if it lists `manifests`, an image
/// manifest if it has a `config`.
fn media_type_of(manifest: &Value) -> &str {
    match manifest["mediaType"].as_str() {
        Some(t) if !t.is_empty() => t,
        _ if manifest["manifests"].is_array() => OCI_INDEX,
        _ if manifest["config"].is_object() => OCI_MANIFEST,
        _ => "",
    }
}

/// Whether a layer media type is a filesystem layer: a tar, plain or compressed (OCI, its
/// non-distributable variants, Docker v2). Signatures, attestations, SBOMs and other artifacts
/// put other types in `layers`; only tar layers can hold a `package.yaml`.
pub fn is_tar_layer(media_type: &str) -> bool {
    let m = media_type.trim().to_ascii_lowercase();
    let m = m.as_str();
    [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
    ]
    .iter()
    .any(|t| {
        m == *t
            || m.strip_prefix(t)
                .is_some_and(|s| ["+gzip", "+zstd"].contains(&s))
    }) || [
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ]
    .contains(&m)
}

/// Knobs of the pipeline.
#[derive(Debug, Clone)]
pub struct Options {
    pub limits: Limits,
    /// Most layer bytes downloaded to look for `package.yaml` in an image with no layer roles.
    pub flatten_limit: u64,
    /// Index again a manifest already stored (the CLI's `shimmer index`); the worker does not.
    pub force: bool,
    /// The configured visibility of the repository; `None`: public only if the backend serves
    /// the manifest without credentials.
    pub visibility: Option<shimmer_config::Visibility>,
    /// Bytes of a manifest (an index's platform manifest too) the indexer parses: the shim's
    /// `server.max_manifest_bytes`, so what could not be pushed through the shim is not read
    /// either. Larger ones are rejected unparsed.
    pub max_manifest_bytes: u64,
    /// A job whose worker stopped mid-job before (its lease expired: the process may have
    /// died on it): read under [`Limits::guarded`] and only what a package needs (no examples,
    /// no extension files), so the same package cannot take the process down again.
    pub guarded: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            flatten_limit: 64 * 1024 * 1024,
            force: false,
            visibility: None,
            max_manifest_bytes: 4 * 1024 * 1024,
            guarded: false,
        }
    }
}

/// A failure worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("layer read task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One API in an [`Outcome`].
#[derive(Debug, Clone, Serialize)]
pub struct ApiSummary {
    pub group: String,
    pub kind: String,
    pub versions: Vec<String>,
}

/// What indexing one reference did (`shimmer index --json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub repository: String,
    pub reference: String,
    pub manifest_digest: String,
    pub index_digest: Option<String>,
    /// `package`, `image`, `helm`, `artifact` or `rejected`.
    pub kind: String,
    pub package_type: Option<String>,
    pub name: Option<String>,
    pub apis: Vec<ApiSummary>,
    /// Distinct objects of the version, package objects and examples alike.
    pub objects: usize,
    /// How many of `objects` this run stored (the rest were already there).
    pub objects_new: u64,
    pub examples: usize,
    pub lint: usize,
    pub rejection: Option<String>,
    pub bytes_downloaded: u64,
    pub image_bytes: u64,
    /// The manifest was stored before and not read again.
    pub already_indexed: bool,
    pub note: Option<String>,
}

/// A descriptor as found in a manifest.
#[derive(Debug, Clone)]
struct Desc {
    media_type: String,
    digest: String,
    size: u64,
    annotations: BTreeMap<String, String>,
    platform: Option<(String, String)>,
}

impl Desc {
    fn parse(v: &Value) -> Option<Self> {
        Some(Self {
            media_type: v["mediaType"].as_str().unwrap_or_default().to_owned(),
            digest: v["digest"].as_str()?.to_owned(),
            size: v["size"].as_u64().unwrap_or(0),
            annotations: v["annotations"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
            platform: v["platform"]["os"].as_str().map(|os| {
                (
                    os.to_owned(),
                    v["platform"]["architecture"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                )
            }),
        })
    }

    fn role(&self) -> Option<&str> {
        self.annotations.get(ROLE_ANNOTATION).map(String::as_str)
    }
}

/// Per-run accounting.
#[derive(Default)]
struct Run {
    downloaded: u64,
    note: Option<String>,
}

/// Indexes `reference` (a tag or digest) of `repository` on `backend`.
pub async fn index(
    pool: &PgPool,
    backend: &BackendReader,
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
        backend: backend.name.clone(),
        repository: repository.to_owned(),
        tag_resolved_at: tag.is_some().then_some(asked_at),
        tag,
        manifest_digest: digest.clone(),
        index_digest: None,
        children: vec![],
        platforms: vec![],
        media_type: None,
        artifact_type: None,
        kind: "rejected".into(),
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
            Some(v) => Some(v.as_str().into()),
            None => backend
                .anonymous_can_read(repository, &digest)
                .await
                .map(|public| if public { "public" } else { "private" }.into()),
        },
        replace: options.force,
    };
    let mut outcome = Outcome {
        repository: repository.to_owned(),
        reference: reference.to_owned(),
        manifest_digest: digest.clone(),
        index_digest: None,
        kind: "rejected".into(),
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
    if !options.force && packages::version_exists(pool, repository, &digest).await? {
        // Only the tag may have moved: store_version with nothing new records that.
        packages::store_version(pool, &base, &[], &[], &[]).await?;
        outcome.already_indexed = true;
        outcome.kind = "indexed".into();
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
            version.kind = "index".into();
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
        version.kind = "helm".into();
        return finish(pool, version, outcome, &run).await;
    }
    if artifact_type.is_some() || !IMAGE_CONFIGS.contains(&config_type) {
        version.kind = "artifact".into();
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
        version.kind = "artifact".into();
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
            version.kind = "image".into();
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
            version.kind = "image".into();
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
                version.kind = "image".into();
                return finish(pool, version, outcome, &run).await;
            }
            if total > options.flatten_limit {
                version.kind = "image".into();
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
                version.kind = "image".into();
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

/// The files of an `xpkg-extensions` manifest's layers, each distinct layer read once, within
/// `version.max_extension_bytes` over all of them; a layer that cannot be read or would pass the
/// budget is left out with a note.
async fn read_extensions(
    backend: &BackendReader,
    repository: &str,
    manifest: &Desc,
    limits: &Limits,
    run: &mut Run,
    outcome: &mut Outcome,
) -> Result<Vec<xpkg::layers::ExtensionFile>, IndexError> {
    let mut files = Vec::new();
    let (raw, _) = backend.manifest(repository, &manifest.digest).await?;
    run.downloaded += raw.len() as u64;
    let Ok(m) = serde_json::from_slice::<Value>(&raw) else {
        add_note(
            &mut outcome.note,
            "extensions manifest is not valid JSON".into(),
        );
        return Ok(files);
    };
    let mut seen = std::collections::HashSet::new();
    let mut budget = limits.clone();
    for layer in m["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Desc::parse)
        .filter(|l| seen.insert(l.digest.clone()))
    {
        match optional_layer(read_layer(backend, repository, &layer, &budget, run).await)? {
            Ok(c) => {
                let bytes: u64 = c
                    .extension_files
                    .iter()
                    .map(|f| f.file.bytes.len() as u64)
                    .sum();
                budget.version.max_extension_bytes =
                    budget.version.max_extension_bytes.saturating_sub(bytes);
                files.extend(c.extension_files);
            }
            Err(r) => add_note(&mut outcome.note, format!("extension layer not read: {r}")),
        }
    }
    Ok(files)
}

/// Appends `note` to the notes of a run (`; `-separated), each note at most a few lines.
fn add_note(notes: &mut Option<String>, note: String) {
    let note = shimmer_store::text::shorten(&note, 1024).into_owned();
    match notes {
        Some(n) => {
            n.push_str("; ");
            n.push_str(&note);
        }
        None => *notes = Some(note),
    }
}

/// Reads a small blob whole; `None` (and no more bytes read) once it is over `limit` bytes, by
/// its descriptor's size before any download or by what the stream delivers.
async fn read_small_blob(
    backend: &BackendReader,
    repository: &str,
    blob: &Desc,
    limit: usize,
    run: &mut Run,
) -> Result<Option<Vec<u8>>, IndexError> {
    if blob.size > limit as u64 {
        return Ok(None);
    }
    let mut stream = Box::pin(backend.blob(repository, &blob.digest).await?);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(RegistryError::from)?;
        run.downloaded += chunk.len() as u64;
        if out.len() + chunk.len() > limit {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out))
}

/// Streams one layer through the xpkg reader on a blocking thread, then drains what the reader
/// left (past the tar's end) so the blob's digest is verified. Memory stays bounded by the
/// reader's limits whatever the blob size.
/// A layer the package can do without (examples, extensions) whose blob the registry does not
/// have: a note, like a layer that cannot be read, not a failure retried until the job gives
/// up with the package never indexed. Other registry errors stay errors (retried).
fn optional_layer(
    read: Result<Result<LayerContents, Rejection>, IndexError>,
) -> Result<Result<LayerContents, String>, IndexError> {
    match read {
        Ok(contents) => Ok(contents.map_err(|r| r.to_string())),
        Err(IndexError::Registry(e)) if e.is_blob_unknown() => {
            Ok(Err("its blob is missing from the registry".to_owned()))
        }
        Err(e) => Err(e),
    }
}

/// Why a manifest or image config holding U+0000 is rejected.
const NUL_MANIFEST: &str =
    "the manifest or image config holds a NUL character (U+0000), which cannot be stored";

/// Whether any string or key in `v` holds U+0000, which PostgreSQL stores in neither text nor
/// `jsonb` (the job failed at the database, retried to `failed`, with nothing shown).
fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

async fn read_layer(
    backend: &BackendReader,
    repository: &str,
    layer: &Desc,
    limits: &Limits,
    run: &mut Run,
) -> Result<Result<LayerContents, Rejection>, IndexError> {
    // A compressed layer is never smaller than its tar by much: one declared larger than the
    // decompression cap would pass it, so it is refused before a byte is read.
    if layer.size
        > limits
            .layer
            .max_decompressed_bytes
            .saturating_add(1024 * 1024)
    {
        return Ok(Err(Rejection::limit(
            xpkg::Limit::DecompressedBytes,
            limits.layer.max_decompressed_bytes,
            format!("the layer's descriptor declares {} bytes", layer.size),
        )));
    }
    let stream = backend.blob(repository, &layer.digest).await?;
    let watch = std::sync::Arc::new(StreamWatch::default());
    let counted = count(stream, watch.clone());
    let media_type = layer.media_type.clone();
    let limits = limits.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut reader = SyncIoBridge::new(StreamReader::new(counted));
        let contents = xpkg::layers::read_layer(&mut reader, &media_type, &limits);
        // Drain to the end so the digest check (in the stream) runs; a mismatch is an error.
        let drained = std::io::copy(&mut reader, &mut std::io::sink());
        (contents, drained)
    })
    .await?;
    run.downloaded += watch.bytes.load(std::sync::atomic::Ordering::Relaxed);
    let (contents, drained) = result;
    // A rejection stands only on the bytes the registry really holds. A stream that broke (the
    // connection dropped, the read timed out) or ended with a digest mismatch is the registry's
    // failure: the job fails and is retried, rather than storing "not a readable gzip tar" for
    // good about a package that may be fine.
    let failed = watch.error.lock().expect("not poisoned").take();
    if let Some(error) = failed {
        return Err(RegistryError::Io(std::io::Error::other(error)).into());
    }
    drained.map_err(RegistryError::Io)?;
    Ok(contents)
}

/// What a layer's stream did: bytes received, and its first error.
#[derive(Default)]
struct StreamWatch {
    bytes: std::sync::atomic::AtomicU64,
    error: std::sync::Mutex<Option<String>>,
}

fn count(
    stream: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    watch: std::sync::Arc<StreamWatch>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static {
    Box::pin(stream.inspect(move |c| match c {
        Ok(b) => {
            watch
                .bytes
                .fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Err(e) => {
            watch
                .error
                .lock()
                .expect("not poisoned")
                .get_or_insert_with(|| e.to_string());
        }
    }))
}

/// Why `manifest` is not parsed, if it is over `limit` bytes.
fn oversized(manifest: &[u8], limit: u64) -> Option<String> {
    let len = manifest.len() as u64;
    (len > limit).then(|| format!("manifest is {len} bytes, over the limit of {limit}"))
}

async fn reject(
    pool: &PgPool,
    mut version: VersionRecord,
    mut outcome: Outcome,
    run: &Run,
    reason: String,
) -> Result<Outcome, IndexError> {
    let reason = shimmer_store::text::shorten(&reason, shimmer_store::text::MAX_KEPT_TEXT_BYTES)
        .into_owned();
    tracing::info!(repository = %version.repository, digest = %version.manifest_digest, %reason, "package rejected");
    version.kind = "rejected".into();
    version.rejection = Some(reason.clone());
    outcome.rejection = Some(reason);
    finish(pool, version, outcome, run).await
}

async fn finish(
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

async fn store_package(
    pool: &PgPool,
    mut version: VersionRecord,
    mut outcome: Outcome,
    run: &Run,
    mut parsed: ParsedPackage,
    extension_files: Vec<xpkg::layers::ExtensionFile>,
    options_limits: &Limits,
) -> Result<Outcome, IndexError> {
    let meta = &parsed.meta;
    version.kind = "package".into();
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
    let max_meta = options_limits.version.max_meta_bytes;
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
    outcome.kind = "package".into();
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

#[cfg(test)]
mod tests {
    use super::{is_tar_layer, media_type_of};

    #[test]
    fn a_manifest_without_a_media_type_is_taken_for_what_its_fields_make_it() {
        let t = |v: serde_json::Value| media_type_of(&v).to_owned();
        let docker = "application/vnd.docker.distribution.manifest.v2+json";
        assert_eq!(
            t(serde_json::json!({"mediaType": docker, "config": {}})),
            docker
        );
        assert_eq!(
            t(serde_json::json!({"schemaVersion": 2, "config": {}, "layers": []})),
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            t(serde_json::json!({"schemaVersion": 2, "mediaType": "", "manifests": []})),
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(t(serde_json::json!({"schemaVersion": 2})), "");
        assert_eq!(t(serde_json::json!({"config": "not an object"})), "");
    }

    #[test]
    fn tar_layers_are_told_from_other_layer_types() {
        for t in [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "Application/VND.oci.image.layer.v1.tar+gzip",
        ] {
            assert!(is_tar_layer(t), "{t}");
        }
        for t in [
            "",
            "application/vnd.dev.cosign.simplesigning.v1+json",
            "application/vnd.dsse.envelope.v1+json",
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+bzip2",
            "application/spdx+json",
        ] {
            assert!(!is_tar_layer(t), "{t}");
        }
    }
}
