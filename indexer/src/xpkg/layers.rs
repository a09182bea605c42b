//! Reading one layer blob: decompress under a cap, walk the tar safely, collect what a package
//! needs.
//!
//! The worker streams each blob from the registry into [`read_layer`] (synchronously, inside
//! `spawn_blocking`). Nothing is written to disk and nothing is buffered beyond the files we keep,
//! each of which is capped before it is read (from its tar header) and while it is read.
//!
//! Compression is chosen by magic bytes first (gzip `1f 8b`, zstd `28 b5 2f fd`), so mislabelled
//! layers still read, then by the media type (`+gzip`, `.tar.gzip`, `+zstd`); anything else is
//! read as a plain tar. Every decompressed byte counts against `max_decompressed_bytes`, the bytes
//! of entries we skip included, which is what stops a decompression bomb.

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::rc::Rc;

use serde::Serialize;
use tar::EntryType;

use shimmer_store::text::shorten;

use super::limits::{Limits, UnsafeEntryPolicy};
use super::rejection::{Limit, Rejection, UnsafeReason};

mod streams;
use streams::{Capped, Counting, HeaderGuard, ZstdFrames, read_up_to};

/// What a layer held that the indexer uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerContents {
    /// The compression detected.
    pub compression: Compression,
    /// The first entry whose base name is `package.yaml`.
    pub package_yaml: Option<CollectedFile>,
    /// `.up/examples.yaml`.
    pub examples_yaml: Option<CollectedFile>,
    /// Files under `readme/`, `icons/`, `docs/` and `release-notes/`, in tar order.
    pub extension_files: Vec<ExtensionFile>,
    /// Entries skipped under [`UnsafeEntryPolicy::Skip`].
    pub skipped_entries: Vec<SkippedEntry>,
    /// Tar entries seen (extended headers excluded).
    pub entries: u64,
    /// Bytes read from the blob. Reading stops at the tar end-of-archive marker, so a caller
    /// that verifies the blob's digest drains its reader afterwards.
    pub compressed_bytes: u64,
    /// Bytes of tar stream decompressed.
    pub decompressed_bytes: u64,
}

/// One collected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedFile {
    /// Normalised path in the layer (no leading `./`).
    pub path: String,
    /// The file's content.
    pub bytes: Vec<u8>,
}

/// One file of an extensions layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionFile {
    /// The top-level folder: which kind of extension.
    pub folder: ExtensionFolder,
    /// The file; its path includes the folder.
    pub file: CollectedFile,
}

/// The top-level folders of the extensions manifest we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtensionFolder {
    /// `readme/`.
    Readme,
    /// `icons/`.
    Icons,
    /// `docs/`.
    Docs,
    /// `release-notes/`.
    ReleaseNotes,
}

/// An entry left out under [`UnsafeEntryPolicy::Skip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedEntry {
    /// The entry's path as written in the tar.
    pub path: String,
    /// Why it was skipped.
    pub reason: UnsafeReason,
}

/// How a blob is compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    #[default]
    /// A plain tar.
    None,
    /// gzip, one or more members.
    Gzip,
    /// zstd, one or more frames.
    Zstd,
}

impl Compression {
    /// What a layer media type declares (`None` for a plain or unknown tar type).
    pub fn from_media_type(media_type: &str) -> Self {
        let media_type = media_type.trim().to_ascii_lowercase();
        if media_type.ends_with("+zstd") || media_type.ends_with(".zstd") {
            Self::Zstd
        } else if media_type.ends_with("+gzip")
            || media_type.ends_with(".gzip")
            || media_type.ends_with(".gz")
        {
            Self::Gzip
        } else {
            Self::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::None => "plain",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Reads one layer blob of `media_type` under `limits`.
///
/// Kept whole: one pass over the tar stream, each entry checked in the order it comes; the budgets' running totals live in its locals.
pub fn read_layer<R: Read>(
    blob: R,
    media_type: &str,
    limits: &Limits,
) -> Result<LayerContents, Rejection> {
    let compressed = Rc::new(Cell::new(0u64));
    let mut blob = Counting {
        inner: blob,
        count: Rc::clone(&compressed),
    };
    let mut magic = [0u8; 4];
    let peeked = read_up_to(&mut blob, &mut magic).map_err(|e| Rejection::CorruptLayer {
        compression: "unknown".into(),
        message: e.to_string(),
    })?;
    let head = &magic[..peeked];
    let compression = if head.starts_with(&ZSTD_MAGIC) {
        Compression::Zstd
    } else if head.starts_with(&GZIP_MAGIC) {
        Compression::Gzip
    } else {
        Compression::from_media_type(media_type)
    };
    let corrupt = |e: &dyn std::fmt::Display| Rejection::CorruptLayer {
        compression: compression.name().to_owned(),
        message: e.to_string(),
    };

    let source = io::Cursor::new(magic).take(peeked as u64).chain(blob);
    let decoder: Box<dyn Read> = match compression {
        Compression::None => Box::new(source),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(source)),
        Compression::Zstd => {
            Box::new(ZstdFrames::new(BufReader::new(source)).map_err(|e| corrupt(&e))?)
        }
    };
    let decompressed = Rc::new(Cell::new(0u64));
    let max = limits.layer.max_decompressed_bytes;
    let capped = Capped {
        inner: decoder,
        count: Rc::clone(&decompressed),
        max,
    };
    let oversized_header = Rc::new(Cell::new(None));
    let guarded = HeaderGuard {
        inner: capped,
        block: Vec::with_capacity(512),
        skip: 0,
        max: limits.layer.max_extended_header_bytes,
        oversized: Rc::clone(&oversized_header),
    };
    let over_cap = |count: &Rc<Cell<u64>>| count.get() > max;
    let fail = |e: io::Error| {
        if let Some(size) = oversized_header.get() {
            Rejection::limit(
                Limit::ExtendedHeaderBytes,
                limits.layer.max_extended_header_bytes,
                format!("a tar extended header (a PAX or GNU long name record) is {size} bytes"),
            )
        } else if over_cap(&decompressed) {
            Rejection::limit(
                Limit::DecompressedBytes,
                max,
                format!("the layer decompresses to more than {max} bytes"),
            )
        } else {
            corrupt(&e)
        }
    };

    let mut out = LayerContents {
        compression,
        ..LayerContents::default()
    };
    let mut archive = tar::Archive::new(guarded);
    let mut extension_bytes = 0u64;
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        let path_bytes = entry.path_bytes();
        if path_bytes.len() > limits.layer.max_path_bytes {
            let start = &path_bytes[..path_bytes.len().min(200)];
            return Err(Rejection::limit(
                Limit::PathBytes,
                limits.layer.max_path_bytes as u64,
                format!(
                    "entry {:?} has a {}-byte path",
                    shorten(&String::from_utf8_lossy(start), 100),
                    path_bytes.len()
                ),
            ));
        }
        let raw_path = String::from_utf8_lossy(&path_bytes).into_owned();
        drop(path_bytes);
        let entry_type = entry.header().entry_type();
        if entry_type == EntryType::XGlobalHeader {
            continue;
        }
        out.entries += 1;
        if out.entries > limits.layer.max_entries {
            return Err(Rejection::limit(
                Limit::TarEntries,
                limits.layer.max_entries,
                format!(
                    "the layer has more than {} entries",
                    limits.layer.max_entries
                ),
            ));
        }
        if let Some(reason) = unsafe_reason(&raw_path, entry_type) {
            match limits.layer.unsafe_entries {
                UnsafeEntryPolicy::Reject => {
                    return Err(Rejection::UnsafeTarEntry {
                        path: raw_path,
                        reason,
                    });
                }
                UnsafeEntryPolicy::Skip => {
                    out.skipped_entries.push(SkippedEntry {
                        path: raw_path,
                        reason,
                    });
                    continue;
                }
            }
        }
        if entry_type == EntryType::Directory {
            continue;
        }
        let path = normalise(&raw_path);
        let size = entry.size();
        let base_name = path.rsplit('/').next().unwrap_or_default();

        if base_name == "package.yaml" && out.package_yaml.is_none() {
            let max = limits.package_yaml.max_input_bytes;
            let bytes = read_capped(&mut entry, &path, size, max, Limit::PackageYamlBytes)
                .map_err(|e| e.or(&fail))?;
            out.package_yaml = Some(CollectedFile { path, bytes });
        } else if path == ".up/examples.yaml" && out.examples_yaml.is_none() {
            let max = limits.examples_yaml.max_input_bytes;
            let bytes = read_capped(&mut entry, &path, size, max, Limit::ExamplesYamlBytes)
                .map_err(|e| e.or(&fail))?;
            out.examples_yaml = Some(CollectedFile { path, bytes });
        } else if let Some(folder) = extension_folder(&path) {
            if out.extension_files.len() >= limits.layer.max_extension_files {
                return Err(Rejection::limit(
                    Limit::ExtensionFiles,
                    limits.layer.max_extension_files as u64,
                    format!("{:?} is one extension file too many", shorten(&path, 200)),
                ));
            }
            let max = limits.layer.max_extension_file_bytes;
            let bytes = read_capped(&mut entry, &path, size, max, Limit::ExtensionFileBytes)
                .map_err(|e| e.or(&fail))?;
            extension_bytes += bytes.len() as u64;
            if extension_bytes > limits.version.max_extension_bytes {
                return Err(Rejection::limit(
                    Limit::ExtensionBytes,
                    limits.version.max_extension_bytes,
                    format!(
                        "the extension files reach {extension_bytes} bytes at {:?}",
                        shorten(&path, 200)
                    ),
                ));
            }
            out.extension_files.push(ExtensionFile {
                folder,
                file: CollectedFile { path, bytes },
            });
        }
    }
    drop(archive);
    out.compressed_bytes = compressed.get();
    out.decompressed_bytes = decompressed.get();
    Ok(out)
}

/// Why an entry is unsafe, if it is: a `..` component, an absolute path, or a type other than
/// file or folder.
fn unsafe_reason(path: &str, entry_type: EntryType) -> Option<UnsafeReason> {
    if path.starts_with('/') || path.starts_with('\\') {
        return Some(UnsafeReason::AbsolutePath);
    }
    if path.split(['/', '\\']).any(|c| c == "..") {
        return Some(UnsafeReason::ParentComponent);
    }
    match entry_type {
        EntryType::Regular | EntryType::Continuous | EntryType::Directory => None,
        EntryType::Symlink => Some(UnsafeReason::Symlink),
        EntryType::Link => Some(UnsafeReason::Hardlink),
        EntryType::Char | EntryType::Block => Some(UnsafeReason::Device),
        EntryType::Fifo => Some(UnsafeReason::Fifo),
        _ => Some(UnsafeReason::UnsupportedType),
    }
}

/// `./a//b/` → `a/b`.
fn normalise(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

fn extension_folder(path: &str) -> Option<ExtensionFolder> {
    let (folder, rest) = path.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    match folder {
        "readme" => Some(ExtensionFolder::Readme),
        "icons" => Some(ExtensionFolder::Icons),
        "docs" => Some(ExtensionFolder::Docs),
        "release-notes" => Some(ExtensionFolder::ReleaseNotes),
        _ => None,
    }
}

/// A read failure while collecting a file: either our cap on the file or the stream's own error.
enum ReadError {
    Limit(Rejection),
    Io(io::Error),
}

impl ReadError {
    fn or(self, fail: &dyn Fn(io::Error) -> Rejection) -> Rejection {
        match self {
            Self::Limit(rejection) => rejection,
            Self::Io(e) => fail(e),
        }
    }
}

/// Reads an entry of declared `size`, refusing it before reading when the header already says it
/// is too large, and while reading otherwise.
fn read_capped(
    entry: &mut impl Read,
    path: &str,
    size: u64,
    max: u64,
    limit: Limit,
) -> Result<Vec<u8>, ReadError> {
    let too_large = |size: u64| {
        ReadError::Limit(Rejection::limit(
            limit,
            max,
            format!("{path:?} is {size} bytes"),
        ))
    };
    if size > max {
        return Err(too_large(size));
    }
    // The header's size is a claim, not a promise: grow past a modest first allocation.
    let mut bytes = Vec::with_capacity(size.min(8 << 20) as usize);
    entry
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
