//! Kept whole (about 500 lines): the specs, the private JSON shapes they serialise through and
//! the layout writer change together, one OCI document format at a time.
//!
//! Writes OCI image layouts (and `dir:` copies for Docker media types) that skopeo pushes byte for
//! byte, so a test knows every digest before the push.
//!
//! What skopeo 1.9 (containers/image 5.23) does with what this module writes, found by trying:
//! - `oci:DIR:TAG` with OCI media types is copied verbatim: the manifest digest in the registry
//!   equals the one written here (whatever the JSON formatting), descriptor annotations included.
//!   An OCI index tag is pushed whole with `--all`; without it skopeo picks the linux/amd64 entry.
//! - An OCI artifact (`artifactType`, `subject`, config `application/vnd.oci.empty.v1+json` = `{}`,
//!   custom layer media types) is also copied verbatim from `oci:`; docker-registry 2.8 stores it
//!   and serves it by tag and digest, though it has no referrers API.
//! - `oci:` cannot read Docker media types: a `index.json` entry typed
//!   `application/vnd.docker.distribution.manifest.v2+json` (or `.list.v2+json`) fails with
//!   "no descriptor found for reference" (entries of other types in the same file do no harm).
//!   skopeo's `dir:` transport does copy them verbatim (`manifest.json`, blobs named by bare hex,
//!   a list's instances as `<hex>.manifest.json`, and a `version` file), so [`OciLayout::tag`]
//!   also writes a `dir:` copy (hard links, no data copied) for Docker-typed tags and
//!   [`OciLayout::skopeo_ref`] returns `dir:...` for them. This yields a real
//!   `application/vnd.docker.distribution.manifest.v2+json` manifest (or a manifest list with
//!   `--all`) in the registry with the digest written here.
//! - `skopeo copy --format v2s2` is no substitute: it converts, so the pushed manifest (and its
//!   config media type) are skopeo's, not ours.
//! - Image configs: skopeo does not check `rootfs.diff_ids` when copying without conversion, so
//!   [`config_json`] may leave them empty; an empty [`ImageSpec::config`] gets a generated config
//!   with correct diff IDs (needed by clients that unpack, such as `ctr images pull`).

mod dir_transport;
mod layer;
mod tagged;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use layer::{diff_id, incompressible, tar_gz};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The OCI 1.1 empty descriptor's media type; its content is [`EMPTY_JSON`].
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY_JSON: &[u8] = b"{}";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// The index.json annotation that names a tag in an OCI layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI content descriptor; serializes to the spec's JSON (empty fields omitted).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "DescriptorJson", from = "DescriptorJson")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub annotations: BTreeMap<String, String>,
    /// (os, architecture)
    pub platform: Option<(String, String)>,
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// The same descriptor with another media type.
    pub fn with_media_type(mut self, media_type: &str) -> Self {
        media_type.clone_into(&mut self.media_type);
        self
    }

    /// The same descriptor with `platform` set (as index entries need).
    pub fn with_platform(mut self, os: &str, architecture: &str) -> Self {
        self.platform = Some((os.to_owned(), architecture.to_owned()));
        self
    }

    /// The same descriptor with one more annotation.
    pub fn with_annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_owned(), value.to_owned());
        self
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<PlatformJson>,
}

#[derive(Serialize, Deserialize)]
struct PlatformJson {
    architecture: String,
    os: String,
}

impl From<Descriptor> for DescriptorJson {
    fn from(d: Descriptor) -> Self {
        DescriptorJson {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
            artifact_type: d.artifact_type,
            annotations: d.annotations,
            platform: d
                .platform
                .map(|(os, architecture)| PlatformJson { architecture, os }),
        }
    }
}

impl From<DescriptorJson> for Descriptor {
    fn from(d: DescriptorJson) -> Self {
        Descriptor {
            media_type: d.media_type,
            digest: d.digest,
            size: d.size,
            annotations: d.annotations,
            platform: d.platform.map(|p| (p.os, p.architecture)),
            artifact_type: d.artifact_type,
        }
    }
}

/// Which manifest family an image or index belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// `application/vnd.oci.image.*`
    #[default]
    Oci,
    /// Docker schema 2 (`application/vnd.docker.distribution.manifest.v2+json`, manifest lists).
    DockerV2,
}

impl Flavor {
    fn manifest(self) -> &'static str {
        match self {
            Flavor::Oci => OCI_MANIFEST,
            Flavor::DockerV2 => DOCKER_MANIFEST,
        }
    }

    fn index(self) -> &'static str {
        match self {
            Flavor::Oci => OCI_INDEX,
            Flavor::DockerV2 => DOCKER_LIST,
        }
    }

    fn config(self) -> &'static str {
        match self {
            Flavor::Oci => OCI_CONFIG,
            Flavor::DockerV2 => DOCKER_CONFIG,
        }
    }

    fn layer(self) -> &'static str {
        match self {
            Flavor::Oci => OCI_LAYER_GZIP,
            Flavor::DockerV2 => DOCKER_LAYER_GZIP,
        }
    }
}

/// An image (or OCI artifact) manifest to write; fields left empty get the flavor's defaults.
#[derive(Debug, Clone, Default)]
pub struct ImageSpec {
    pub flavor: Flavor,
    /// Config blob bytes, written verbatim; empty means "generate one" ([`config_json`] with
    /// no labels and the layers' correct diff IDs).
    pub config: Vec<u8>,
    /// Default: the flavor's image config type.
    pub config_media_type: Option<String>,
    pub layers: Vec<LayerSpec>,
    pub artifact_type: Option<String>,
    pub subject: Option<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

/// One layer of an [`ImageSpec`].
#[derive(Debug, Clone)]
pub struct LayerSpec {
    /// Default: the flavor's gzip tar layer type.
    pub media_type: Option<String>,
    pub source: LayerSource,
    pub annotations: BTreeMap<String, String>,
}

impl LayerSpec {
    /// A layer of these exact bytes (e.g. from [`tar_gz`]) with the default media type.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Self {
        LayerSpec {
            media_type: None,
            source: LayerSource::Bytes(bytes.into()),
            annotations: BTreeMap::new(),
        }
    }

    /// A gzip tar holding `size` pseudo-random bytes, streamed to disk.
    pub fn random_gzip(size: u64, seed: u64) -> Self {
        LayerSpec {
            media_type: None,
            source: LayerSource::RandomGzip { size, seed },
            annotations: BTreeMap::new(),
        }
    }
}

/// Where a layer's bytes come from.
#[derive(Debug, Clone)]
pub enum LayerSource {
    Bytes(Vec<u8>),
    /// A gzip tar with one file of `size` pseudo-random bytes derived from `seed`, written and
    /// hashed in constant memory (for layers of hundreds of MiB).
    RandomGzip {
        size: u64,
        seed: u64,
    },
}

/// An image index (OCI) or manifest list (Docker) to write.
#[derive(Debug, Clone, Default)]
pub struct IndexSpec {
    pub flavor: Flavor,
    /// Entries; Docker manifest lists need `platform` on each.
    pub manifests: Vec<Descriptor>,
    pub artifact_type: Option<String>,
    pub subject: Option<Descriptor>,
    pub annotations: BTreeMap<String, String>,
}

/// A minimal valid image config (linux/amd64) with these labels and empty `rootfs.diff_ids`,
/// which skopeo accepts for copies.
pub fn config_json(labels: &BTreeMap<String, String>) -> Vec<u8> {
    config_json_with_diff_ids(labels, &[])
}

/// Like [`config_json`] with `rootfs.diff_ids` filled in (see [`diff_id`]).
pub fn config_json_with_diff_ids(
    labels: &BTreeMap<String, String>,
    diff_ids: &[String],
) -> Vec<u8> {
    #[derive(Serialize)]
    struct Config<'a> {
        architecture: &'a str,
        os: &'a str,
        config: ContainerConfig<'a>,
        rootfs: RootFs<'a>,
    }
    #[derive(Serialize)]
    struct ContainerConfig<'a> {
        #[serde(rename = "Labels", skip_serializing_if = "BTreeMap::is_empty")]
        labels: &'a BTreeMap<String, String>,
    }
    #[derive(Serialize)]
    struct RootFs<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        diff_ids: &'a [String],
    }
    serde_json::to_vec(&Config {
        architecture: "amd64",
        os: "linux",
        config: ContainerConfig { labels },
        rootfs: RootFs {
            kind: "layers",
            diff_ids,
        },
    })
    .expect("serialize image config")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson<'a> {
    schema_version: u32,
    media_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact_type: Option<&'a str>,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson {
    schema_version: u32,
    media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    artifact_type: Option<String>,
    manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/`) that tests fill
/// with images and hand to skopeo. Methods do blocking file I/O and panic on I/O errors.
#[derive(Debug, Clone)]
pub struct OciLayout {
    pub dir: PathBuf,
}

impl OciLayout {
    /// Makes `dir` an OCI layout (creating it if needed; an existing layout keeps its content).
    pub fn create(dir: impl Into<PathBuf>) -> OciLayout {
        let layout = OciLayout { dir: dir.into() };
        std::fs::create_dir_all(layout.blobs_dir()).expect("create layout blobs dir");
        write(
            &layout.dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );
        if !layout.index_path().exists() {
            layout.write_index(&IndexJson {
                schema_version: 2,
                media_type: OCI_INDEX.to_owned(),
                artifact_type: None,
                manifests: Vec::new(),
                subject: None,
                annotations: BTreeMap::new(),
            });
        }
        layout
    }

    /// Stores `bytes` as a blob; the descriptor's media type is `application/octet-stream`
    /// (change it with [`Descriptor::with_media_type`]).
    pub fn add_blob(&self, bytes: &[u8]) -> Descriptor {
        let digest = crate::skopeo::digest_of(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            write(&path, bytes);
        }
        Descriptor {
            media_type: "application/octet-stream".to_owned(),
            digest,
            size: bytes.len() as u64,
            ..Descriptor::default()
        }
    }

    /// Writes the layers, config and manifest; returns the manifest's descriptor.
    pub fn add_image(&self, spec: ImageSpec) -> Descriptor {
        let mut layers = Vec::with_capacity(spec.layers.len());
        let mut diff_ids = Vec::with_capacity(spec.layers.len());
        for layer in &spec.layers {
            let (descriptor, diff_id) = self.add_layer(spec.flavor, layer);
            layers.push(descriptor);
            diff_ids.push(diff_id);
        }
        let config_bytes = if spec.config.is_empty() {
            config_json_with_diff_ids(&BTreeMap::new(), &diff_ids)
        } else {
            spec.config
        };
        let config_media_type = spec.config_media_type.as_deref();
        let config = self
            .add_blob(&config_bytes)
            .with_media_type(config_media_type.unwrap_or(spec.flavor.config()));
        let manifest = serde_json::to_vec(&ManifestJson {
            schema_version: 2,
            media_type: spec.flavor.manifest(),
            artifact_type: spec.artifact_type.as_deref(),
            config: &config,
            layers: &layers,
            subject: spec.subject.as_ref(),
            annotations: &spec.annotations,
        })
        .expect("serialize manifest");
        Descriptor {
            artifact_type: spec.artifact_type,
            ..self
                .add_blob(&manifest)
                .with_media_type(spec.flavor.manifest())
        }
    }

    /// Writes an image index (OCI) or manifest list (Docker); returns its descriptor.
    pub fn add_index(&self, spec: IndexSpec) -> Descriptor {
        let media_type = spec.flavor.index();
        let artifact_type = spec.artifact_type.clone();
        let index = serde_json::to_vec(&IndexJson {
            schema_version: 2,
            media_type: media_type.to_owned(),
            artifact_type: spec.artifact_type,
            manifests: spec.manifests,
            subject: spec.subject,
            annotations: spec.annotations,
        })
        .expect("serialize index");
        Descriptor {
            artifact_type,
            ..self.add_blob(&index).with_media_type(media_type)
        }
    }

    /// Points tag `name` at `descriptor` in `index.json` (replacing an older entry of that name);
    /// for Docker media types also writes the `dir:` copy skopeo needs (see the module doc).
    pub fn tag(&self, name: &str, descriptor: &Descriptor) {
        assert!(
            !name.is_empty() && !name.contains(['/', ':']) && name != "." && name != "..",
            "bad tag name {name:?}"
        );
        let mut index = self.read_index();
        index
            .manifests
            .retain(|d| d.annotations.get(REF_NAME).map(String::as_str) != Some(name));
        index
            .manifests
            .push(descriptor.clone().with_annotation(REF_NAME, name));
        self.write_index(&index);
        dir_transport::write(self, name, descriptor);
    }

    /// The skopeo source for a tag: `oci:DIR:TAG`, or `dir:DIR/dir-transport/TAG` for Docker
    /// media types.
    pub fn skopeo_ref(&self, tag: &str) -> String {
        match dir_transport::path(self, tag) {
            Some(path) => format!("dir:{}", path.display()),
            None => format!("oci:{}:{tag}", self.dir.display()),
        }
    }

    /// Where blob `digest` (`sha256:<hex>`) is stored.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
        self.blobs_dir().join(hex)
    }

    /// The bytes of blob `digest` (for manifests and configs; layers may be large).
    pub fn read_blob(&self, digest: &str) -> Vec<u8> {
        let path = self.blob_path(digest);
        std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    fn add_layer(&self, flavor: Flavor, spec: &LayerSpec) -> (Descriptor, String) {
        let (descriptor, diff_id) = match &spec.source {
            LayerSource::Bytes(bytes) => (self.add_blob(bytes), diff_id(bytes)),
            LayerSource::RandomGzip { size, seed } => {
                let blob = layer::write_random_gzip(&self.blobs_dir(), *size, *seed);
                let descriptor = Descriptor {
                    digest: blob.digest,
                    size: blob.size,
                    ..Descriptor::default()
                };
                (descriptor, blob.diff_id)
            }
        };
        let media_type = spec.media_type.as_deref().unwrap_or(flavor.layer());
        let descriptor = Descriptor {
            annotations: spec.annotations.clone(),
            ..descriptor.with_media_type(media_type)
        };
        (descriptor, diff_id)
    }

    fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    fn read_index(&self) -> IndexJson {
        serde_json::from_slice(&std::fs::read(self.index_path()).expect("read index.json"))
            .expect("parse index.json")
    }

    fn write_index(&self, index: &IndexJson) {
        write(
            &self.index_path(),
            &serde_json::to_vec(index).expect("serialize index.json"),
        );
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[cfg(test)]
mod tests;
