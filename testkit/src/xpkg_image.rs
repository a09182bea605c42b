//! Builds Crossplane package images as `crossplane xpkg build` would: a gzip tar layer with
//! `package.yaml` (role `base`), a layer with `.up/examples.yaml` (role `upbound`), optionally a
//! large stand-in for the controller binary, and the roles recorded as descriptor annotations
//! and as config labels `io.crossplane.xpkg:<layer digest>`.

use std::collections::BTreeMap;

use crate::oci::{
    Descriptor, Flavor, ImageSpec, LayerSpec, OciLayout, config_json_with_diff_ids, diff_id, tar_gz,
};
use crate::skopeo::digest_of;

/// Where the layer roles are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Roles {
    /// Descriptor annotations and config labels (what the build tools write).
    #[default]
    AnnotationsAndLabels,
    /// Config labels only (a copy that dropped descriptor annotations; Docker v2 manifests).
    LabelsOnly,
    /// No roles at all (old packages): `package.yaml` in a single layer.
    None,
}

/// A package image to build.
#[derive(Debug, Clone, Default)]
pub struct PackageImage {
    pub package_yaml: Vec<u8>,
    pub examples_yaml: Option<Vec<u8>>,
    /// Size of a pseudo-random runtime layer (the controller), if any.
    pub runtime_bytes: Option<u64>,
    pub flavor: Flavor,
    pub roles: Roles,
    /// Seed of the runtime layer's contents.
    pub seed: u64,
}

/// Writes the image into `layout` and tags it; returns the manifest descriptor.
pub fn write(layout: &OciLayout, tag: &str, image: &PackageImage) -> Descriptor {
    let base = tar_gz(&[("package.yaml", &image.package_yaml)]);
    let mut layers = vec![("base", base)];
    if let Some(examples) = &image.examples_yaml {
        layers.push(("upbound", tar_gz(&[(".up/examples.yaml", examples)])));
    }
    let mut labels = BTreeMap::new();
    let mut diff_ids = Vec::new();
    let mut specs = Vec::new();
    for (role, bytes) in &layers {
        if image.roles != Roles::None {
            labels.insert(
                format!("io.crossplane.xpkg:{}", digest_of(bytes)),
                role.to_string(),
            );
        }
        diff_ids.push(diff_id(bytes));
        let mut spec = LayerSpec::bytes(bytes.clone());
        if image.roles == Roles::AnnotationsAndLabels && image.flavor == Flavor::Oci {
            spec.annotations
                .insert("io.crossplane.xpkg".into(), role.to_string());
        }
        specs.push(spec);
    }
    let config = if let Some(size) = image.runtime_bytes {
        specs.push(LayerSpec::random_gzip(size, image.seed));
        // The runtime layer's diff ID is not known before it is written; configs with partial
        // diff IDs are accepted by skopeo copies (no conversion happens).
        config_json_with_diff_ids(&labels, &[])
    } else {
        config_json_with_diff_ids(&labels, &diff_ids)
    };
    let desc = layout.add_image(ImageSpec {
        flavor: image.flavor,
        config,
        layers: specs,
        ..Default::default()
    });
    layout.tag(tag, &desc);
    desc
}

/// The package image of a source tree in `testdata/xpkg-sources`.
pub fn from_source(dir: &std::path::Path) -> PackageImage {
    PackageImage {
        package_yaml: crate::xpkg_source::package_yaml(dir),
        examples_yaml: crate::xpkg_source::examples_yaml(dir),
        ..Default::default()
    }
}
