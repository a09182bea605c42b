//! Reading a manifest without downloading anything: its media type, its descriptors and their
//! layer roles, which layers are filesystem tars, and the checks that refuse a manifest before it
//! is parsed or stored (size, U+0000).

use std::collections::BTreeMap;

use serde_json::Value;

pub const ROLE_ANNOTATION: &str = "io.crossplane.xpkg";
pub(super) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(super) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(super) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(super) const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub(super) const IMAGE_CONFIGS: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];
/// Largest image config read (to find role labels).
pub(super) const CONFIG_LIMIT: usize = 1024 * 1024;

/// A manifest's media type: its `mediaType`, else what its fields make it. The field is
/// optional in OCI's image manifest and index (helm's and oras-go's manifests leave it out;
/// registries go by the `Content-Type` they were pushed with), and Docker's schema 2 types
/// require it, so a manifest without one is OCI's: an index if it lists `manifests`, an image
/// manifest if it has a `config`.
pub(super) fn media_type_of(manifest: &Value) -> &str {
    match manifest["mediaType"].as_str() {
        Some(t) if !t.is_empty() => t,
        _ if manifest["manifests"].is_array() => OCI_INDEX,
        _ if manifest["config"].is_object() => OCI_MANIFEST,
        _ => "",
    }
}

/// Whether a layer media type is a filesystem layer: a tar, plain or compressed (OCI, its
/// non-distributable variants, Docker v2). Signatures, attestations, SBOMs and other artifacts
/// put other types in `layers`; only tar layers can hold a `package.yaml`.
pub fn is_tar_layer(media_type: &str) -> bool {
    let m = media_type.trim().to_ascii_lowercase();
    let m = m.as_str();
    [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
    ]
    .iter()
    .any(|t| {
        m == *t
            || m.strip_prefix(t)
                .is_some_and(|s| ["+gzip", "+zstd"].contains(&s))
    }) || [
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    ]
    .contains(&m)
}

/// A descriptor as found in a manifest.
#[derive(Debug, Clone)]
pub(super) struct Desc {
    pub(super) media_type: String,
    pub(super) digest: String,
    pub(super) size: u64,
    pub(super) annotations: BTreeMap<String, String>,
    pub(super) platform: Option<(String, String)>,
}

impl Desc {
    pub(super) fn parse(v: &Value) -> Option<Self> {
        Some(Self {
            media_type: v["mediaType"].as_str().unwrap_or_default().to_owned(),
            digest: v["digest"].as_str()?.to_owned(),
            size: v["size"].as_u64().unwrap_or(0),
            annotations: v["annotations"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default(),
            platform: v["platform"]["os"].as_str().map(|os| {
                (
                    os.to_owned(),
                    v["platform"]["architecture"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned(),
                )
            }),
        })
    }

    pub(super) fn role(&self) -> Option<&str> {
        self.annotations.get(ROLE_ANNOTATION).map(String::as_str)
    }
}

/// Why a manifest or image config holding U+0000 is rejected.
pub(super) const NUL_MANIFEST: &str =
    "the manifest or image config holds a NUL character (U+0000), which cannot be stored";

/// Whether any string or key in `v` holds U+0000, which PostgreSQL stores in neither text nor
/// `jsonb` (the job failed at the database, retried to `failed`, with nothing shown).
pub(super) fn holds_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

/// Why `manifest` is not parsed, if it is over `limit` bytes.
pub(super) fn oversized(manifest: &[u8], limit: u64) -> Option<String> {
    let len = manifest.len() as u64;
    (len > limit).then(|| format!("manifest is {len} bytes, over the limit of {limit}"))
}

#[cfg(test)]
mod tests {
    use super::{is_tar_layer, media_type_of};

    #[test]
    fn a_manifest_without_a_media_type_is_taken_for_what_its_fields_make_it() {
        let t = |v: serde_json::Value| media_type_of(&v).to_owned();
        let docker = "application/vnd.docker.distribution.manifest.v2+json";
        assert_eq!(
            t(serde_json::json!({"mediaType": docker, "config": {}})),
            docker
        );
        assert_eq!(
            t(serde_json::json!({"schemaVersion": 2, "config": {}, "layers": []})),
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            t(serde_json::json!({"schemaVersion": 2, "mediaType": "", "manifests": []})),
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(t(serde_json::json!({"schemaVersion": 2})), "");
        assert_eq!(t(serde_json::json!({"config": "not an object"})), "");
    }

    #[test]
    fn tar_layers_are_told_from_other_layer_types() {
        for t in [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            "Application/VND.oci.image.layer.v1.tar+gzip",
        ] {
            assert!(is_tar_layer(t), "{t}");
        }
        for t in [
            "",
            "application/vnd.dev.cosign.simplesigning.v1+json",
            "application/vnd.dsse.envelope.v1+json",
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+bzip2",
            "application/spdx+json",
        ] {
            assert!(!is_tar_layer(t), "{t}");
        }
    }
}
