//! Why a package (or one of its layers) could not be read.
//!
//! Error policy: a [`Rejection`] is final for the input it names and is stored with the package
//! version so the marketplace can show it; it is never a transient failure (I/O errors on the
//! registry stream are the worker's business, not this module's). Each variant carries the
//! facts a person needs to find the problem: which stream, which document (0-based, counting
//! empty documents), which line, which tar entry, which limit.

use std::fmt;

use serde::Serialize;

/// A precise reason for refusing an input. `kind()` is a stable code for storage; `Display` is
/// the message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rejection {
    /// The stream is not valid YAML (or not UTF-8).
    #[error(
        "{stream}: invalid YAML in document {document} at line {line}, column {column}: {message}"
    )]
    InvalidYaml {
        /// Which stream.
        stream: Stream,
        /// 0-based document index in the stream, empty documents counted.
        document: usize,
        /// 1-based line in the stream (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// The parser's message, on one line.
        message: String,
    },
    /// A configured limit was exceeded.
    #[error("{limit} exceeded (limit {max}): {message}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// Its configured value (bytes, documents, levels or events).
        max: u64,
        /// Where and by how much, e.g. `"package.yaml" is 314572800 bytes`.
        message: String,
    },
    /// `package.yaml` holds no `meta.pkg.crossplane.io` Provider, Configuration or Function.
    #[error(
        "package.yaml has no package meta object (meta.pkg.crossplane.io Provider, Configuration or Function)"
    )]
    NoMeta,
    /// `package.yaml` holds more than one meta object; Crossplane requires exactly one.
    #[error("package.yaml has {} package meta objects (documents {documents:?}); Crossplane requires exactly one", documents.len())]
    MultipleMeta {
        /// Positions of the meta objects among the non-empty documents.
        documents: Vec<usize>,
    },
    /// A tar entry that could escape the extraction root or is not a plain file or folder.
    #[error("layer entry {path:?} is rejected: {reason}")]
    UnsafeTarEntry {
        /// The entry's path as written in the tar.
        path: String,
        /// What is wrong with it.
        reason: UnsafeReason,
    },
    /// The blob is not a readable (compressed) tar.
    #[error("layer is not a readable {compression} tar: {message}")]
    CorruptLayer {
        /// `plain`, `gzip` or `zstd` as detected, or `unknown` when the blob could not be read.
        compression: String,
        /// The decoder's or tar reader's error.
        message: String,
    },
}

impl Rejection {
    /// Stable code of the variant, e.g. `invalid_yaml`, for a database column.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidYaml { .. } => "invalid_yaml",
            Self::LimitExceeded { .. } => "limit_exceeded",
            Self::NoMeta => "no_meta",
            Self::MultipleMeta { .. } => "multiple_meta",
            Self::UnsafeTarEntry { .. } => "unsafe_tar_entry",
            Self::CorruptLayer { .. } => "corrupt_layer",
        }
    }

    pub(crate) fn limit(limit: Limit, max: u64, message: impl Into<String>) -> Self {
        Self::LimitExceeded {
            limit,
            max,
            message: message.into(),
        }
    }
}

/// Which YAML stream of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// `package.yaml` of the base layer.
    PackageYaml,
    /// `.up/examples.yaml` of the upbound layer.
    ExamplesYaml,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PackageYaml => "package.yaml",
            Self::ExamplesYaml => ".up/examples.yaml",
        })
    }
}

/// The limit that was exceeded (see [`crate::xpkg::Limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// `layer.max_decompressed_bytes`.
    DecompressedBytes,
    /// `layer.max_entries`.
    TarEntries,
    /// `package_yaml.max_input_bytes` (tar entry or stream).
    PackageYamlBytes,
    /// `examples_yaml.max_input_bytes` (tar entry or stream).
    ExamplesYamlBytes,
    /// `layer.max_extension_file_bytes`.
    ExtensionFileBytes,
    /// `layer.max_extension_files`.
    ExtensionFiles,
    /// `max_documents` of a YAML stream.
    YamlDocuments,
    /// `max_depth` of a YAML stream.
    YamlDepth,
    /// `max_alias_events` / `max_alias_expanded_bytes` of a YAML stream.
    YamlAliasExpansion,
    /// `max_object_bytes`: one object's canonical JSON.
    ObjectBytes,
    /// `layer.max_path_bytes`: one tar entry's path.
    PathBytes,
    /// `layer.max_extended_header_bytes`: one PAX or GNU long-name record.
    ExtendedHeaderBytes,
    /// `version.max_extension_bytes`: the extension files of a version, summed.
    ExtensionBytes,
    /// `version.max_meta_bytes`: a version's stored metadata.
    MetaBytes,
    /// `version.max_objects_bytes`: a version's objects' canonical JSON, summed.
    ObjectsBytes,
    /// `version.max_api_types`: API types (CRDs, XRDs, function inputs) of a version.
    ApiTypes,
    /// `version.max_api_versions`: versions of one API type.
    ApiVersions,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DecompressedBytes => "decompressed layer size",
            Self::TarEntries => "number of tar entries",
            Self::PackageYamlBytes => "package.yaml size",
            Self::ExamplesYamlBytes => ".up/examples.yaml size",
            Self::ExtensionFileBytes => "extension file size",
            Self::ExtensionFiles => "number of extension files",
            Self::YamlDocuments => "number of YAML documents",
            Self::YamlDepth => "YAML nesting depth",
            Self::YamlAliasExpansion => "YAML alias expansion budget",
            Self::ObjectBytes => "object size",
            Self::PathBytes => "tar entry path length",
            Self::ExtendedHeaderBytes => "tar extended header size",
            Self::ExtensionBytes => "total size of extension files",
            Self::MetaBytes => "version metadata size",
            Self::ObjectsBytes => "total size of the package's objects",
            Self::ApiTypes => "number of API types",
            Self::ApiVersions => "number of versions of one API type",
        })
    }
}

/// Why a tar entry is unsafe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsafeReason {
    /// A `..` path component.
    ParentComponent,
    /// A path starting at `/`.
    AbsolutePath,
    /// A symbolic link.
    Symlink,
    /// A hard link.
    Hardlink,
    /// A character or block device.
    Device,
    /// A named pipe.
    Fifo,
    /// Any other non-file type (GNU sparse files, unknown types).
    UnsupportedType,
}

impl fmt::Display for UnsafeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ParentComponent => "its path has a `..` component (path traversal)",
            Self::AbsolutePath => "its path is absolute",
            Self::Symlink => "it is a symbolic link",
            Self::Hardlink => "it is a hard link",
            Self::Device => "it is a device node",
            Self::Fifo => "it is a fifo",
            Self::UnsupportedType => "its entry type is not a plain file or folder",
        })
    }
}
