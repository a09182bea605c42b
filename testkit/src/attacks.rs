//! The packages of issue 23's availability probe, built in code (no stored blobs): each is small
//! to push and was, before the version and page budgets, enough to stall or kill `shimmer serve`.
//! Shared by the tests that show the budgets hold (`tests/budgets.rs`) and the benchmark that
//! measures them (`bench/attacks.sh`).

use std::io::Write;

use flate2::{Compression, write::GzEncoder};

use crate::oci::{Descriptor, ImageSpec, IndexSpec, LayerSpec, OciLayout, tar_gz};

/// One attack: its name and the tag it is written under in a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// A v1beta1 CRD whose shared 20,000-field schema is served as `versions` versions.
    WideSchema { versions: usize },
    /// An index whose `xpkg-extensions` manifest lists one docs layer (60 files of 4 MiB)
    /// `times` times.
    RepeatedDocsLayer { times: usize },
    /// A readme of `">" * 200_000 + " x"`.
    NestedQuotes,
    /// A readme of 100,000 nested `<b><i><u><s>`.
    NestedHtml,
    /// A base layer whose symlink entry has a 150 MiB PAX path.
    HugeTarPath,
}

impl Attack {
    /// Every attack, as the probe ran them.
    pub const ALL: [Attack; 6] = [
        Attack::WideSchema { versions: 1_000 },
        Attack::WideSchema { versions: 64 },
        Attack::RepeatedDocsLayer { times: 8 },
        Attack::NestedQuotes,
        Attack::NestedHtml,
        Attack::HugeTarPath,
    ];

    /// A short name, usable as a repository name.
    pub fn name(self) -> String {
        match self {
            Attack::WideSchema { versions } => format!("wide-schema-{versions}"),
            Attack::RepeatedDocsLayer { times } => format!("repeated-docs-{times}"),
            Attack::NestedQuotes => "nested-quotes".into(),
            Attack::NestedHtml => "nested-html".into(),
            Attack::HugeTarPath => "huge-tar-path".into(),
        }
    }

    /// Writes the attack's image (or index) into `layout` as `tag`.
    pub fn write(self, layout: &OciLayout, tag: &str) -> Descriptor {
        match self {
            Attack::WideSchema { versions } => {
                let yaml = format!("{}---\n{}\n", provider(None), wide_crd(versions));
                package(layout, tag, tar_gz(&[("package.yaml", yaml.as_bytes())]))
            }
            Attack::RepeatedDocsLayer { times } => {
                let base = tar_gz(&[("package.yaml", provider(None).as_bytes())]);
                let pkg = package(layout, &format!("{tag}-package"), base);
                let docs = LayerSpec::bytes(docs_layer(60, 4 * 1024 * 1024));
                let ext = layout.add_image(ImageSpec {
                    layers: vec![docs; times],
                    ..Default::default()
                });
                let index = layout.add_index(IndexSpec {
                    manifests: vec![
                        pkg.with_platform("linux", "amd64"),
                        ext.with_annotation("io.crossplane.xpkg", "xpkg-extensions"),
                    ],
                    ..Default::default()
                });
                layout.tag(tag, &index);
                index
            }
            Attack::NestedQuotes => {
                let readme = format!("{} x", ">".repeat(200_000));
                let base = tar_gz(&[("package.yaml", provider(Some(&readme)).as_bytes())]);
                package(layout, tag, base)
            }
            Attack::NestedHtml => {
                let readme = format!("{}x", "<b><i><u><s>".repeat(100_000));
                let base = tar_gz(&[("package.yaml", provider(Some(&readme)).as_bytes())]);
                package(layout, tag, base)
            }
            Attack::HugeTarPath => package(layout, tag, huge_path_layer(150 * 1024 * 1024)),
        }
    }
}

/// A Provider meta object (one line of JSON, which is YAML), with `readme` as its readme
/// annotation.
pub fn provider(readme: Option<&str>) -> String {
    let mut meta = serde_json::json!({
        "apiVersion": "meta.pkg.crossplane.io/v1",
        "kind": "Provider",
        "metadata": {"name": "attack"},
        "spec": {"controller": {"image": "example.com/attack:v1"}},
    });
    if let Some(r) = readme {
        meta["metadata"]["annotations"] = serde_json::json!({"meta.crossplane.io/readme": r});
    }
    format!("{meta}\n")
}

/// A v1beta1 CRD with a shared 20,000-field schema and `versions` versions.
pub fn wide_crd(versions: usize) -> String {
    let props: serde_json::Map<String, serde_json::Value> = (0..20_000)
        .map(|i| (format!("f{i}"), serde_json::json!({"type": "string"})))
        .collect();
    let versions: Vec<serde_json::Value> = (0..versions)
        .map(|i| serde_json::json!({"name": format!("v{i}"), "served": true, "storage": i == 0}))
        .collect();
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1beta1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.attack.example.org"},
        "spec": {
            "group": "attack.example.org",
            "names": {"kind": "Thing", "plural": "things"},
            "scope": "Cluster",
            "validation": {"openAPIV3Schema": {"type": "object", "properties": props}},
            "versions": versions,
        },
    })
    .to_string()
}

/// A package image of one base layer (annotated `io.crossplane.xpkg: base`), tagged.
fn package(layout: &OciLayout, tag: &str, base: Vec<u8>) -> Descriptor {
    let mut layer = LayerSpec::bytes(base);
    layer
        .annotations
        .insert("io.crossplane.xpkg".into(), "base".into());
    let desc = layout.add_image(ImageSpec {
        layers: vec![layer],
        ..Default::default()
    });
    layout.tag(tag, &desc);
    desc
}

/// A gzip tar of `files` markdown files under `docs/`, each `size` bytes.
fn docs_layer(files: usize, size: usize) -> Vec<u8> {
    let line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n";
    let content: Vec<u8> = line.iter().copied().cycle().take(size).collect();
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for i in 0..files {
        let mut header = tar::Header::new_ustar();
        header.set_size(size as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("docs/doc-{i}.md"), &content[..])
            .expect("docs entry");
    }
    tar.into_inner()
        .and_then(GzEncoder::finish)
        .expect("docs layer")
}

/// A gzip tar whose only entry is a symlink with a PAX `path` of `len` bytes.
fn huge_path_layer(len: usize) -> Vec<u8> {
    // A PAX record is "<length> path=<value>\n", its length counting its own digits.
    let body = len + " path=\n".len();
    let mut record_len = body + 1;
    while body + record_len.to_string().len() != record_len {
        record_len = body + record_len.to_string().len();
    }
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let mut pax = tar::Header::new_ustar();
    pax.set_path("PaxHeaders/link").unwrap();
    pax.set_size(record_len as u64);
    pax.set_mode(0o644);
    pax.set_entry_type(tar::EntryType::XHeader);
    pax.set_cksum();
    gz.write_all(pax.as_bytes()).unwrap();
    write!(gz, "{record_len} path=").unwrap();
    let chunk = vec![b'a'; 1024 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        gz.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    gz.write_all(b"\n").unwrap();
    gz.write_all(&vec![0u8; (512 - record_len % 512) % 512])
        .unwrap();
    let mut link = tar::Header::new_ustar();
    link.set_path("link").unwrap();
    link.set_link_name("target").unwrap();
    link.set_size(0);
    link.set_mode(0o777);
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_cksum();
    gz.write_all(link.as_bytes()).unwrap();
    gz.write_all(&[0u8; 1024]).unwrap();
    gz.finish().unwrap()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn the_huge_path_layer_is_a_tar_whose_symlink_has_that_path() {
        let layer = huge_path_layer(10_000);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&layer[..]));
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
        assert_eq!(entry.path_bytes().len(), 10_000);
        let mut rest = Vec::new();
        entry.read_to_end(&mut rest).unwrap();
        assert!(entries.next().is_none());
    }
}
