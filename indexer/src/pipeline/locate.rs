//! Finding the package in a manifest: an index resolved to the image Crossplane reads, the
//! image's shape ([`classify`](super::classify)), the roles its config's labels give, and then
//! the `package.yaml`, from the base layer or from a roleless image's flattened tar layers. Only
//! what a step needs is downloaded. What is found along the way is written on the version (its
//! media and artifact types, children, platforms, size) and the outcome (notes).

use serde_json::Value;
use shimmer_registry::Client;
use shimmer_store::{VersionKind, packages::VersionRecord};

use super::{
    IndexError, Options, Outcome, Run,
    classify::{self, Roleless, Shape},
    fetch::{read_layer, read_small_blob},
    manifest::{CONFIG_LIMIT, Desc, NUL_MANIFEST, holds_nul, media_type_of},
};
use crate::xpkg::{self, Limits};

/// Where a manifest leads.
pub(super) enum Located {
    /// Recorded as this kind, nothing more read (the outcome's note may say why).
    Kind(VersionKind),
    /// Refused, with the reason stored on the version.
    Rejected(String),
    /// A package: its `package.yaml`, its layer roles, its `xpkg-extensions` manifest.
    Package {
        package_yaml: Vec<u8>,
        roles: Vec<(String, Desc)>,
        extensions: Option<Desc>,
    },
}

/// What one run reads with and writes to.
pub(super) struct Reading<'a> {
    pub(super) backend: &'a Client,
    pub(super) repository: &'a str,
    pub(super) options: &'a Options,
    pub(super) limits: &'a Limits,
    pub(super) version: &'a mut VersionRecord,
    pub(super) outcome: &'a mut Outcome,
    pub(super) run: &'a mut Run,
}

impl Reading<'_> {
    /// Where the manifest `bytes` (of `digest`) leads.
    pub(super) async fn locate(
        &mut self,
        digest: &str,
        bytes: &[u8],
    ) -> Result<Located, IndexError> {
        let manifest = match classify::open(bytes, self.options.max_manifest_bytes, "") {
            Ok(m) => m,
            Err(reason) => return Ok(Located::Rejected(reason)),
        };
        let mut media_type = media_type_of(&manifest).to_owned();
        self.version.media_type = Some(media_type.clone()).filter(|m| !m.is_empty());
        let (manifest, extensions) = if classify::is_index(&manifest, &media_type) {
            match self.resolve_index(digest, &manifest).await? {
                Ok((child, child_type, extensions)) => {
                    media_type = child_type;
                    (child, extensions)
                }
                Err(located) => return Ok(located),
            }
        } else {
            (manifest, None)
        };
        let (shape, artifact_type, image_bytes) = classify::shape(&manifest);
        self.version.artifact_type = artifact_type;
        self.version.image_bytes = image_bytes as i64;
        let image = match shape {
            Shape::Helm => return Ok(Located::Kind(VersionKind::Helm)),
            Shape::Artifact => return Ok(Located::Kind(VersionKind::Artifact)),
            Shape::NoTarLayer(types) => {
                self.version.media_type = Some(media_type);
                if self.version.artifact_type.is_none() {
                    // No `artifactType`: the layers' type is what says what it is.
                    self.version.artifact_type = types.first().cloned();
                }
                self.outcome.note = Some(format!(
                    "not a package: no layer is a tar layer ({})",
                    types.join(", ")
                ));
                return Ok(Located::Kind(VersionKind::Artifact));
            }
            Shape::Image(image) => image,
        };
        self.image(image, media_type, extensions).await
    }

    /// The image an index leads to, with its media type and the index's extensions manifest;
    /// `Err` when the index itself is what gets recorded (no image to read, or a bad child).
    async fn resolve_index(
        &mut self,
        digest: &str,
        index: &Value,
    ) -> Result<Result<(Value, String, Option<Desc>), Located>, IndexError> {
        let choice = classify::choose(index);
        self.version.children = choice.children;
        self.version.platforms = choice.platforms;
        self.version.index_digest = Some(digest.to_owned());
        let Some(chosen) = choice.chosen else {
            self.outcome.note = Some("index has no single or linux/amd64 manifest".into());
            return Ok(Err(Located::Kind(VersionKind::Index)));
        };
        self.outcome.index_digest = Some(digest.to_owned());
        let (child, _) = self
            .backend
            .manifest(self.repository, &chosen.digest)
            .await?;
        self.run.downloaded += child.len() as u64;
        let child = match classify::open(&child, self.options.max_manifest_bytes, "platform ") {
            Ok(c) => c,
            Err(reason) => return Ok(Err(Located::Rejected(reason))),
        };
        let media_type = child["mediaType"]
            .as_str()
            .unwrap_or(&chosen.media_type)
            .to_owned();
        Ok(Ok((child, media_type, choice.extensions)))
    }

    /// An image that may hold a package: roles from its annotations or its config's labels,
    /// then the `package.yaml` from its base layer, or from its flattened layers without roles.
    async fn image(
        &mut self,
        mut image: classify::Image,
        media_type: String,
        extensions: Option<Desc>,
    ) -> Result<Located, IndexError> {
        let mut config = Value::Null;
        if image.roles.is_empty()
            && let Some(c) = &image.config
        {
            self.version.media_type = Some(media_type.clone());
            match self.read_config(c).await? {
                Ok(parsed) => config = parsed,
                Err(located) => return Ok(located),
            }
            image.roles = classify::label_roles(&config, &image.layers);
        }
        self.version.media_type = Some(media_type);
        let base = image.roles.iter().find(|(r, _)| r == "base");
        let package_yaml = match base {
            Some((_, layer)) => {
                let read = read_layer(self.backend, self.repository, layer, self.limits, self.run);
                match read.await? {
                    Ok(contents) => contents.package_yaml.map(|f| f.bytes),
                    Err(r) => return Ok(Located::Rejected(r.to_string())),
                }
            }
            None => match self.flatten(&config, &image.tar_layers).await? {
                Ok(found) => found,
                Err(located) => return Ok(located),
            },
        };
        let Some(package_yaml) = package_yaml else {
            return Ok(Located::Rejected(
                "the base layer holds no package.yaml".into(),
            ));
        };
        Ok(Located::Package {
            package_yaml,
            roles: image.roles,
            extensions,
        })
    }

    /// An image config, read to find role labels; `Err` when it cannot be (over the read cap,
    /// not JSON: the version is then an image saying why; holding U+0000: rejected).
    async fn read_config(&mut self, c: &Desc) -> Result<Result<Value, Located>, IndexError> {
        let read = read_small_blob(self.backend, self.repository, c, CONFIG_LIMIT, self.run);
        let Some(raw) = read.await? else {
            // Truncated, the config would read as empty and the image as a roleless package.
            self.outcome.note = Some(format!(
                "image config is larger than the {CONFIG_LIMIT}-byte read cap ({} bytes declared); \
                 its labels were not read and its layers were not searched for a package",
                c.size
            ));
            return Ok(Err(Located::Kind(VersionKind::Image)));
        };
        let Ok(parsed) = serde_json::from_slice::<Value>(&raw) else {
            // Read as nothing, it would look like a roleless package image and be flattened.
            self.outcome.note = Some(
                "image config is not valid JSON; its layers were not searched for a package".into(),
            );
            return Ok(Err(Located::Kind(VersionKind::Image)));
        };
        if holds_nul(&parsed) {
            return Ok(Err(Located::Rejected(NUL_MANIFEST.into())));
        }
        Ok(Ok(parsed))
    }

    /// A roleless image's `package.yaml`: only an image that looks like a package (nothing to
    /// run) is flattened, only its tar layers, only up to `flatten_limit` bytes; later layers
    /// win, as they would in the image's filesystem. These are ordinary image layers, where
    /// symlinks and the like are normal: they are skipped, not rejected (the base and upbound
    /// layers keep the strict policy).
    async fn flatten(
        &mut self,
        config: &Value,
        tar_layers: &[Desc],
    ) -> Result<Result<Option<Vec<u8>>, Located>, IndexError> {
        let limit = self.options.flatten_limit;
        match classify::roleless(config, tar_layers, limit) {
            Roleless::Image => return Ok(Err(Located::Kind(VersionKind::Image))),
            Roleless::TooLarge(total) => {
                self.outcome.note = Some(format!(
                    "no package layer roles; not flattening {total} bytes of layers (limit {limit})"
                ));
                self.run.note = self.outcome.note.clone();
                return Ok(Err(Located::Kind(VersionKind::Image)));
            }
            Roleless::Flatten => {}
        }
        let mut limits = self.limits.clone();
        limits.layer.unsafe_entries = xpkg::limits::UnsafeEntryPolicy::Skip;
        let mut found = None;
        for layer in tar_layers {
            match read_layer(self.backend, self.repository, layer, &limits, self.run).await? {
                Ok(c) => found = c.package_yaml.map(|f| f.bytes).or(found),
                Err(r) => return Ok(Err(Located::Rejected(r.to_string()))),
            }
        }
        match found {
            Some(yaml) => Ok(Ok(Some(yaml))),
            None => Ok(Err(Located::Kind(VersionKind::Image))),
        }
    }
}
