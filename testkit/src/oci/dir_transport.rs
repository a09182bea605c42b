//! skopeo's `dir:` transport, the one way to push Docker-typed manifests from local files verbatim
//! (skopeo's `oci:` reader ignores index.json entries with Docker media types).
//!
//! Format (containers/image `directory`, version 1.1): `version`, `manifest.json`, each blob named
//! by its bare hex digest, and for a manifest list each instance as `<hex>.manifest.json`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{DOCKER_LIST, DOCKER_MANIFEST, Descriptor, OciLayout};

const FOLDER: &str = "dir-transport";
const VERSION: &[u8] = b"Directory Transport Version: 1.1\n";

/// The `dir:` copy of `tag`, if it has one.
pub(super) fn path(layout: &OciLayout, tag: &str) -> Option<PathBuf> {
    let dir = layout.dir.join(FOLDER).join(tag);
    dir.join("manifest.json").exists().then_some(dir)
}

/// (Re)writes the `dir:` copy of `tag` when `descriptor` has a Docker media type; otherwise
/// removes a stale one, so [`path`] reflects the tag's current target.
pub(super) fn write(layout: &OciLayout, tag: &str, descriptor: &Descriptor) {
    let dir = layout.dir.join(FOLDER).join(tag);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove old dir: copy");
    }
    if descriptor.media_type != DOCKER_MANIFEST && descriptor.media_type != DOCKER_LIST {
        return;
    }
    std::fs::create_dir_all(&dir).expect("create dir: copy");
    super::write(&dir.join("version"), VERSION);
    let manifest = layout.read_blob(&descriptor.digest);
    super::write(&dir.join("manifest.json"), &manifest);
    let parsed: ManifestRefs = serde_json::from_slice(&manifest).expect("parse manifest");
    if descriptor.media_type == DOCKER_LIST {
        for instance in &parsed.manifests {
            let bytes = layout.read_blob(&instance.digest);
            super::write(
                &dir.join(format!("{}.manifest.json", hex(&instance.digest))),
                &bytes,
            );
            link_blobs(
                layout,
                &dir,
                &serde_json::from_slice(&bytes).expect("parse manifest"),
            );
        }
    } else {
        link_blobs(layout, &dir, &parsed);
    }
}

/// The digests a manifest or index refers to.
#[derive(Deserialize)]
struct ManifestRefs {
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

fn link_blobs(layout: &OciLayout, dir: &Path, manifest: &ManifestRefs) {
    for blob in manifest.config.iter().chain(&manifest.layers) {
        let target = dir.join(hex(&blob.digest));
        if target.exists() {
            continue;
        }
        let source = layout.blob_path(&blob.digest);
        // A hard link costs nothing even for a 256 MiB layer; copy if linking is not allowed.
        if std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target)
                .unwrap_or_else(|e| panic!("copy {} to dir: copy: {e}", source.display()));
        }
    }
}

fn hex(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}
