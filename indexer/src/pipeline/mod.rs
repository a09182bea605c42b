//! What one index job does: read a manifest, decide what it is without downloading layers
//! (`classify`, pure), download only the layers a Crossplane package is read from
//! (`locate`, `fetch`), parse them ([`xpkg`]), store the result (`record`).
//!
//! Errors split in two: a [`Rejection`](crate::xpkg::Rejection) of the content is a permanent answer, stored on the
//! version (`kind = rejected`) so the job is done; anything else (registry or database trouble)
//! is an [`IndexError`] and the job is retried.

pub mod changes;
mod classify;
mod fetch;
mod locate;
mod manifest;
mod outcome;
mod record;
mod records;

use shimmer_config::Visibility;
use shimmer_store::VersionKind;
use shimmer_store::{
    PgPool,
    packages::{self, VersionRecord},
};

use shimmer_registry::Client;

use crate::xpkg;
use fetch::{optional_layer, read_extensions, read_layer};
use locate::{Located, Reading};
use manifest::Desc;
pub use manifest::{ROLE_ANNOTATION, is_tar_layer};
pub use outcome::{ApiSummary, IndexError, Options, Outcome};
use record::{add_note, finish, reject, store_package};

/// Per-run accounting.
#[derive(Default)]
struct Run {
    downloaded: u64,
    note: Option<String>,
}

/// The `package.yaml` of `reference` in `repository`, found as indexing finds it (only the
/// layers it needs are downloaded), without the database: `shimmer diff` reads a registry
/// reference with it. The inner `Err` says why the manifest is not a package that can be read.
pub async fn read_package_yaml(
    backend: &Client,
    repository: &str,
    reference: &str,
    options: &Options,
) -> Result<Result<Vec<u8>, String>, IndexError> {
    let (bytes, digest) = backend.manifest(repository, reference).await?;
    let mut run = Run {
        downloaded: bytes.len() as u64,
        ..Default::default()
    };
    let asked_at = shimmer_store::unix_now();
    let (mut version, mut outcome) =
        start(backend, repository, reference, &digest, asked_at, options).await;
    let mut reading = Reading {
        backend,
        repository,
        options,
        limits: &options.limits,
        version: &mut version,
        outcome: &mut outcome,
        run: &mut run,
    };
    Ok(match reading.locate(&digest, &bytes).await? {
        Located::Package { package_yaml, .. } => Ok(package_yaml),
        Located::Rejected(reason) => Err(reason),
        Located::Kind(kind) => Err(format!("it is not a Crossplane package ({kind})")),
    })
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
    let mut run = Run {
        downloaded: bytes.len() as u64,
        ..Default::default()
    };
    let (base, mut outcome) =
        start(backend, repository, reference, &digest, asked_at, options).await;
    let stored = match options.force {
        true => None,
        false => packages::stored_kind(pool, repository, &digest).await?,
    };
    if let Some(kind) = stored {
        // Only the tag may have moved: store_version with nothing new records that, and a tag
        // moved may change the chain of releases.
        let stored = packages::store_version(pool, &base, &[], &[], &[]).await?;
        if kind == VersionKind::Package {
            changes::record(pool, stored.package_id).await?;
        }
        outcome.already_indexed = true;
        outcome.kind = kind;
        return Ok(outcome);
    }
    let mut version = base;
    let guarded = options.limits.guarded();
    let limits = match options.guarded {
        true => {
            add_note(&mut outcome.note, GUARDED_NOTE.into());
            &guarded
        }
        false => &options.limits,
    };
    let mut reading = Reading {
        backend,
        repository,
        options,
        limits,
        version: &mut version,
        outcome: &mut outcome,
        run: &mut run,
    };
    match reading.locate(&digest, &bytes).await? {
        Located::Kind(kind) => {
            version.kind = kind;
            finish(pool, version, outcome, &run).await
        }
        Located::Rejected(reason) => reject(pool, version, outcome, &run, reason).await,
        Located::Package {
            package_yaml,
            roles,
            extensions,
        } => {
            let (examples, files) = reading.extras(&roles, extensions).await?;
            let parse_limits = limits.clone();
            let parsed = tokio::task::spawn_blocking(move || {
                xpkg::parse_package(&package_yaml, examples.as_deref(), &parse_limits)
            })
            .await?;
            match parsed {
                Ok(p) => store_package(pool, version, outcome, &run, p, files, limits).await,
                Err(r) => reject(pool, version, outcome, &run, r.to_string()).await,
            }
        }
    }
}

/// The version as first recorded (a rejection until found otherwise) and the outcome to fill:
/// the tag and when it was asked, and the repository's visibility, configured or found out by an
/// anonymous read.
async fn start(
    backend: &Client,
    repository: &str,
    reference: &str,
    digest: &str,
    asked_at: f64,
    options: &Options,
) -> (VersionRecord, Outcome) {
    let tag = (!reference.contains(':')).then(|| reference.to_owned());
    let digest = digest.to_owned();
    let version = VersionRecord {
        tag_resolved_at: tag.is_some().then_some(asked_at),
        tag,
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
        ..VersionRecord::new(backend.name(), repository, &digest, VersionKind::Rejected)
    };
    let outcome = Outcome {
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
    (version, outcome)
}

impl Reading<'_> {
    /// What a package has besides its `package.yaml`: the examples of its `upbound` layer and
    /// the files of its `xpkg-extensions` manifest, neither read in guarded mode; either one
    /// that cannot be read is a note, not a failure.
    async fn extras(
        &mut self,
        roles: &[(String, Desc)],
        extensions: Option<Desc>,
    ) -> Result<(Option<Vec<u8>>, Vec<xpkg::layers::ExtensionFile>), IndexError> {
        let (mut examples, mut files) = (None, Vec::new());
        if self.options.guarded {
            return Ok((examples, files));
        }
        if let Some((_, layer)) = roles.iter().find(|(r, _)| r == "upbound") {
            let read = read_layer(self.backend, self.repository, layer, self.limits, self.run);
            match optional_layer(read.await)? {
                Ok(c) => examples = c.examples_yaml.map(|f| f.bytes),
                Err(r) => add_note(
                    &mut self.outcome.note,
                    format!("examples layer not read: {r}"),
                ),
            }
        }
        if let Some(ext) = extensions {
            let (backend, repository, limits) = (self.backend, self.repository, self.limits);
            files =
                read_extensions(backend, repository, &ext, limits, self.run, self.outcome).await?;
        }
        Ok((examples, files))
    }
}

/// What a guarded run says on the version.
const GUARDED_NOTE: &str = "indexed in guarded mode: a worker stopped while indexing this \
     version before, so it was read under tighter limits and without examples or extension files";
