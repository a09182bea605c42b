use std::io::{Cursor, Write};
use std::time::Instant;

use flate2::Compression as Level;
use flate2::write::GzEncoder;

use super::*;
use crate::xpkg::limits::LayerLimits;

const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// A tar header with `path` written verbatim (tar::Builder refuses `..` and absolute paths,
/// which is exactly what these tests need to produce).
fn header(path: &str, entry_type: EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    let name = &mut header.as_gnu_mut().unwrap().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_entry_type(entry_type);
    header.set_size(size);
    header.set_mode(0o644);
    if matches!(entry_type, EntryType::Symlink | EntryType::Link) {
        header.set_link_name("target").unwrap();
    }
    header.set_cksum();
    header
}

fn tar_of(entries: &[(&str, EntryType, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, entry_type, data) in entries {
        builder
            .append(&header(path, *entry_type, data.len() as u64), *data)
            .unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Level::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn read(bytes: &[u8], media_type: &str) -> Result<LayerContents, Rejection> {
    read_layer(Cursor::new(bytes), media_type, &Limits::default())
}

#[test]
fn layers_collect_package_examples_and_extension_files() {
    let tar = tar_of(&[
        ("./", EntryType::Directory, b""),
        ("./package.yaml", EntryType::Regular, b"kind: Provider\n"),
        ("nested/package.yaml", EntryType::Regular, b"second\n"),
        (".up/examples.yaml", EntryType::Regular, b"kind: Example\n"),
        ("readme/README.md", EntryType::Regular, b"# Hi\n"),
        ("icons/icon.svg", EntryType::Regular, b"<svg/>"),
        ("release-notes/v1.md", EntryType::Regular, b"notes"),
        ("other/ignored.txt", EntryType::Regular, b"x"),
    ]);
    for (blob, media_type, compression) in [
        (tar.clone(), TAR, Compression::None),
        (gzip(&tar), GZIP, Compression::Gzip),
        (gzip(&tar), TAR, Compression::Gzip),
    ] {
        let layer = read(&blob, media_type).unwrap();
        assert_eq!(layer.compression, compression);
        let package = layer.package_yaml.unwrap();
        assert_eq!(
            (package.path.as_str(), package.bytes.as_slice()),
            ("package.yaml", &b"kind: Provider\n"[..])
        );
        assert_eq!(layer.examples_yaml.unwrap().bytes, b"kind: Example\n");
        let ext: Vec<(ExtensionFolder, &str)> = layer
            .extension_files
            .iter()
            .map(|f| (f.folder, f.file.path.as_str()))
            .collect();
        assert_eq!(
            ext,
            vec![
                (ExtensionFolder::Readme, "readme/README.md"),
                (ExtensionFolder::Icons, "icons/icon.svg"),
                (ExtensionFolder::ReleaseNotes, "release-notes/v1.md"),
            ]
        );
        assert_eq!(layer.entries, 8);
        // Reading stops at the tar end-of-archive marker, before the record padding.
        assert!(layer.compressed_bytes > 0 && layer.compressed_bytes <= blob.len() as u64);
        assert!(
            layer.decompressed_bytes >= 8 * 512 && layer.decompressed_bytes <= tar.len() as u64
        );
    }
}

#[test]
fn layers_accept_package_yaml_under_any_folder() {
    let tar = tar_of(&[("opt/pkg/package.yaml", EntryType::Regular, b"a: 1\n")]);
    assert_eq!(
        read(&tar, TAR).unwrap().package_yaml.unwrap().path,
        "opt/pkg/package.yaml"
    );
}

#[test]
fn layers_read_zstd_by_media_type_and_magic() {
    let tar = tar_of(&[("package.yaml", EntryType::Regular, b"a: 1\n")]);
    let zstd =
        ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
    let layer = read(&zstd, "application/vnd.oci.image.layer.v1.tar+zstd").unwrap();
    assert_eq!(
        (layer.compression, layer.package_yaml.unwrap().bytes),
        (Compression::Zstd, b"a: 1\n".to_vec())
    );
    // Two frames back to back, labelled as plain tar: still read.
    let half = tar.len() / 2;
    let mut frames = ruzstd::encoding::compress_to_vec(
        &tar[..half],
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    frames.extend(ruzstd::encoding::compress_to_vec(
        &tar[half..],
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    assert!(read(&frames, TAR).unwrap().package_yaml.is_some());
}

#[test]
fn layers_reject_parent_traversal_naming_the_entry() {
    let tar = tar_of(&[
        ("package.yaml", EntryType::Regular, b"a"),
        ("foo/../../x", EntryType::Regular, b"evil"),
    ]);
    let err = read(&gzip(&tar), GZIP).unwrap_err();
    assert_eq!(
        err,
        Rejection::UnsafeTarEntry {
            path: "foo/../../x".into(),
            reason: UnsafeReason::ParentComponent
        }
    );
    assert!(err.to_string().contains("\"foo/../../x\""), "{err}");
    let err = read(&tar_of(&[("../x", EntryType::Regular, b"")]), TAR).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::UnsafeTarEntry {
                reason: UnsafeReason::ParentComponent,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn layers_reject_absolute_paths_links_devices_and_fifos() {
    let cases = [
        (
            "/etc/passwd",
            EntryType::Regular,
            UnsafeReason::AbsolutePath,
        ),
        ("package.yaml", EntryType::Symlink, UnsafeReason::Symlink),
        ("hard", EntryType::Link, UnsafeReason::Hardlink),
        ("dev/null", EntryType::Char, UnsafeReason::Device),
        ("dev/sda", EntryType::Block, UnsafeReason::Device),
        ("pipe", EntryType::Fifo, UnsafeReason::Fifo),
    ];
    for (path, entry_type, reason) in cases {
        let err = read(&tar_of(&[(path, entry_type, b"")]), TAR).unwrap_err();
        assert_eq!(
            err,
            Rejection::UnsafeTarEntry {
                path: path.into(),
                reason
            },
            "{path}"
        );
        assert_eq!(err.kind(), "unsafe_tar_entry");
    }
}

#[test]
fn layers_skip_unsafe_entries_when_told_to() {
    let tar = tar_of(&[
        ("bin", EntryType::Symlink, b""),
        ("package.yaml", EntryType::Regular, b"a: 1\n"),
    ]);
    let limits = Limits {
        layer: LayerLimits {
            unsafe_entries: UnsafeEntryPolicy::Skip,
            ..LayerLimits::default()
        },
        ..Limits::default()
    };
    let layer = read_layer(Cursor::new(tar), TAR, &limits).unwrap();
    assert_eq!(
        layer.skipped_entries,
        vec![SkippedEntry {
            path: "bin".into(),
            reason: UnsafeReason::Symlink
        }]
    );
    assert!(layer.package_yaml.is_some());
}

/// 10 GiB of zeros in about 10 MiB of gzip: one member holding a tar header that declares a
/// 10 GiB file, then 160 identical members of 64 MiB of zeros each. Built once, in memory.
#[test]
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test reports what it measured or wrote"
)]
fn layers_stop_a_gzip_bomb_at_the_decompressed_cap() {
    const MEMBER: u64 = 64 << 20;
    const TOTAL: u64 = 10 << 30;
    let mut zeros = GzEncoder::new(Vec::new(), Level::best());
    std::io::copy(&mut std::io::repeat(0).take(MEMBER), &mut zeros).unwrap();
    let zeros = zeros.finish().unwrap();
    let mut bomb = gzip(header("blob.bin", EntryType::Regular, TOTAL).as_bytes());
    for _ in 0..TOTAL / MEMBER {
        bomb.extend_from_slice(&zeros);
    }
    assert!(bomb.len() < 16 << 20, "bomb is {} bytes", bomb.len());

    let started = Instant::now();
    let err = read(&bomb, GZIP).unwrap_err();
    let limit = Limits::default().layer.max_decompressed_bytes;
    assert_eq!(
        err,
        Rejection::LimitExceeded {
            limit: Limit::DecompressedBytes,
            max: limit,
            message: format!("the layer decompresses to more than {limit} bytes"),
        }
    );
    eprintln!(
        "gzip bomb ({} compressed bytes) stopped in {:?}",
        bomb.len(),
        started.elapsed()
    );
}

#[test]
fn layers_refuse_an_oversized_package_yaml_from_its_header() {
    // A 300 MiB package.yaml, generated as it is read: the header alone refuses it.
    const SIZE: u64 = 300 << 20;
    let stream = Cursor::new(
        header("package.yaml", EntryType::Regular, SIZE)
            .as_bytes()
            .to_vec(),
    )
    .chain(std::io::repeat(b'a').take(SIZE));
    let err = read_layer(stream, TAR, &Limits::default()).unwrap_err();
    let max = Limits::default().package_yaml.max_input_bytes;
    assert_eq!(
        err,
        Rejection::LimitExceeded {
            limit: Limit::PackageYamlBytes,
            max,
            message: format!("\"package.yaml\" is {SIZE} bytes"),
        }
    );
}

#[test]
fn layers_cap_extension_files_and_entries() {
    let big = vec![b'x'; 5 << 20];
    let err = read(&tar_of(&[("docs/big.md", EntryType::Regular, &big)]), TAR).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::LimitExceeded {
                limit: Limit::ExtensionFileBytes,
                max: 4194304,
                ..
            }
        ),
        "{err:?}"
    );

    let limits = Limits {
        layer: LayerLimits {
            max_entries: 2,
            ..LayerLimits::default()
        },
        ..Limits::default()
    };
    let tar = tar_of(&[
        ("a", EntryType::Regular, b""),
        ("b", EntryType::Regular, b""),
        ("c", EntryType::Regular, b""),
    ]);
    let err = read_layer(Cursor::new(tar), TAR, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::LimitExceeded {
                limit: Limit::TarEntries,
                max: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn layers_report_corrupt_compression() {
    let mut blob = gzip(&tar_of(&[("package.yaml", EntryType::Regular, b"a: 1\n")]));
    blob.truncate(blob.len() / 2);
    let err = read(&blob, GZIP).unwrap_err();
    assert!(
        matches!(&err, Rejection::CorruptLayer { compression, .. } if compression == "gzip"),
        "{err:?}"
    );
    let err = read(b"\x28\xb5\x2f\xfdnot really zstd", TAR).unwrap_err();
    assert!(
        matches!(&err, Rejection::CorruptLayer { compression, .. } if compression == "zstd"),
        "{err:?}"
    );
}

#[test]
fn layers_media_types_map_to_compression() {
    assert_eq!(
        Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        Compression::Gzip
    );
    assert_eq!(
        Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
        Compression::Zstd
    );
    assert_eq!(
        Compression::from_media_type(
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        ),
        Compression::Gzip
    );
    assert_eq!(Compression::from_media_type(TAR), Compression::None);
}
