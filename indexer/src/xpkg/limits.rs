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
}

impl Default for LayerLimits {
    fn default() -> Self {
        Self {
            max_decompressed_bytes: 256 * MIB,
            max_entries: 100_000,
            max_extension_file_bytes: 4 * MIB,
            max_extension_files: 1_000,
            unsafe_entries: UnsafeEntryPolicy::Reject,
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
