//! Every bound the indexer puts on untrusted package content, in one place.
//!
//! Defaults follow Crossplane where it has a number (it reads `package.yaml` up to 200 MiB) and
//! are otherwise generous for real packages: the full AWS provider is about 100 MB of YAML in
//! about 2,000 documents, 12 levels deep at most, with no anchors at all.

use serde::Serialize;

const MIB: u64 = 1024 * 1024;

/// All limits for reading one package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Limits on layer blobs (decompression and tar walking).
    pub layer: LayerLimits,
    /// Limits on the `package.yaml` stream; its `max_input_bytes` also caps the tar entry.
    pub package_yaml: YamlLimits,
    /// Limits on the `.up/examples.yaml` stream; its `max_input_bytes` also caps the tar entry.
    pub examples_yaml: YamlLimits,
    /// Bytes of one `package.yaml` object's canonical JSON. The marketplace loads and renders an
    /// object whole for its docs page: a 120 MiB ConfigMap made a 126 MB page and GBs of
    /// memory under a few requests. Default 16 MiB, ten times the largest real CRD here (the AWS
    /// provider's `deliverystreams`, 1.7 MB of YAML).
    pub max_object_bytes: u64,
    /// Limits on one version as a whole, summed over its layers and objects.
    pub version: VersionLimits,
}

impl Limits {
    /// The limits of a guarded run (a job whose worker stopped mid-job before): every bound on
    /// memory a quarter of these, so a package that took a process down is read, if at all, in
    /// a fraction of what it had.
    pub fn guarded(&self) -> Self {
        let quarter = |n: u64| (n / 4).max(1);
        let mut g = self.clone();
        g.layer.max_decompressed_bytes = quarter(g.layer.max_decompressed_bytes);
        g.layer.max_extension_file_bytes = quarter(g.layer.max_extension_file_bytes);
        for y in [&mut g.package_yaml, &mut g.examples_yaml] {
            y.max_input_bytes = quarter(y.max_input_bytes);
            y.max_alias_expanded_bytes = quarter(y.max_alias_expanded_bytes);
        }
        g.max_object_bytes = quarter(g.max_object_bytes);
        g.version.max_extension_bytes = 0;
        g.version.max_meta_bytes = quarter(g.version.max_meta_bytes);
        g.version.max_objects_bytes = quarter(g.version.max_objects_bytes);
        g
    }
}

/// Limits on one version as a whole. Per-layer and per-object caps alone let one small push
/// list the same 370 KB docs layer (60 files of 4 MiB) 8 times: 2 GB of `meta`, a crashed
/// worker, and a 251 MB package page for the one-layer case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionLimits {
    /// Bytes of extension files (`readme/`, `icons/`, `docs/`, `release-notes/`) kept for one
    /// version, over all its extension layers; a layer that would pass it is left out with a
    /// note. Each distinct layer is read once however often a manifest lists it. Default 4 MiB.
    pub max_extension_bytes: u64,
    /// Bytes of the version's stored metadata (`versions.meta`: the meta object's fields, its
    /// extension files, notes) as JSON; over it the version is rejected. Default 8 MiB.
    pub max_meta_bytes: u64,
    /// Bytes of canonical JSON of all the version's objects and examples; over it the version is
    /// rejected. Default 512 MiB (the AWS provider is about 100 MB of YAML).
    pub max_objects_bytes: u64,
    /// API types (CRDs, XRDs, function inputs) in one version. Default 5,000 (the largest real
    /// provider, the AWS monolith, has about 900).
    pub max_api_types: usize,
    /// Versions (`spec.versions`) of one API type. Default 64; real CRDs have a handful. A
    /// `v1beta1` CRD whose 20,000-field shared schema served 1,000 versions made a 5.9 GB
    /// docs page.
    pub max_api_versions: usize,
}

impl Default for VersionLimits {
    fn default() -> Self {
        Self {
            max_extension_bytes: 4 * MIB,
            max_meta_bytes: 8 * MIB,
            max_objects_bytes: 512 * MIB,
            max_api_types: 5_000,
            max_api_versions: 64,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            layer: LayerLimits::default(),
            package_yaml: YamlLimits::default(),
            examples_yaml: YamlLimits {
                max_input_bytes: 64 * MIB,
                ..YamlLimits::default()
            },
            max_object_bytes: 16 * MIB,
            version: VersionLimits::default(),
        }
    }
}

/// Limits on one layer blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerLimits {
    /// Bytes of decompressed tar stream read from one layer, entries we skip included. This is
    /// what stops a decompression bomb. Default 256 MiB.
    pub max_decompressed_bytes: u64,
    /// Tar entries in one layer. Default 100,000.
    pub max_entries: u64,
    /// Size of one collected extension file (`readme/`, `icons/`, `docs/`, `release-notes/`).
    /// Default 4 MiB.
    pub max_extension_file_bytes: u64,
    /// Collected extension files in one layer. Default 1,000.
    pub max_extension_files: usize,
    /// What to do with entries that could escape the extraction root or are not plain files.
    pub unsafe_entries: UnsafeEntryPolicy,
    /// Bytes of one entry's path (PAX paths included); a longer one rejects the layer. Default
    /// 4,096 (Linux's `PATH_MAX`). A 153 KB push with a 150 MiB symlink path stored a 157 MB
    /// rejection before.
    pub max_path_bytes: usize,
    /// Bytes of one tar extended header (PAX `x`/`g` records, GNU long names), which the tar
    /// reader holds whole; a larger one rejects the layer before it is read. Default 1 MiB.
    pub max_extended_header_bytes: u64,
}

impl Default for LayerLimits {
    fn default() -> Self {
        Self {
            max_decompressed_bytes: 256 * MIB,
            max_entries: 100_000,
            max_extension_file_bytes: 4 * MIB,
            max_extension_files: 1_000,
            unsafe_entries: UnsafeEntryPolicy::Reject,
            max_path_bytes: 4096,
            max_extended_header_bytes: MIB,
        }
    }
}

/// Handling of `..` components, absolute paths, links, devices and fifos in a layer tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsafeEntryPolicy {
    /// Reject the layer, naming the entry. Right for package layers, which hold only YAML.
    Reject,
    /// Skip the entry and list it in the result. For flattening old packages without layer
    /// annotations, whose runtime layers legitimately contain symlinks.
    Skip,
}

/// Limits on one YAML stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct YamlLimits {
    /// Size of the stream. Default 200 MiB (Crossplane's own cap on `package.yaml`).
    pub max_input_bytes: u64,
    /// Documents in the stream, empty ones included. Default 50,000.
    pub max_documents: usize,
    /// Nesting of mappings and sequences. Default 128 (real CRDs stay under 20).
    pub max_depth: usize,
    /// Parser events replayed or recorded for aliases and anchors; a billion-laughs document
    /// exhausts it within milliseconds. Default 100,000.
    pub max_alias_events: usize,
    /// Scalar text that alias expansion may add beyond the input's own size. Default 32 MiB.
    pub max_alias_expanded_bytes: u64,
}

impl Default for YamlLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 200 * MIB,
            max_documents: 50_000,
            max_depth: 128,
            max_alias_events: 100_000,
            max_alias_expanded_bytes: 32 * MIB,
        }
    }
}
