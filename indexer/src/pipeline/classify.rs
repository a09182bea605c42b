//! Deciding what a manifest is from its JSON alone, before any blob is read: pure functions, no
//! I/O. An index's entries and the one Crossplane reads; an image manifest's shape (a Helm
//! chart, an artifact, an image with or without package layer roles); the roles an image
//! config's labels give; whether a roleless image may be flattened.

use serde_json::Value;

use super::manifest::{
    DOCKER_LIST, Desc, HELM_CONFIG, IMAGE_CONFIGS, NUL_MANIFEST, OCI_INDEX, holds_nul,
    is_tar_layer, oversized,
};

/// A manifest parsed after its checks: at most `max` bytes, JSON, no U+0000. `what` names it in
/// the reason ("" or "platform ").
pub(super) fn open(bytes: &[u8], max: u64, what: &str) -> Result<Value, String> {
    if let Some(reason) = oversized(bytes, max) {
        return Err(format!("{what}{reason}"));
    }
    let Ok(manifest) = serde_json::from_slice::<Value>(bytes) else {
        return Err(format!("{what}manifest is not valid JSON"));
    };
    if holds_nul(&manifest) {
        return Err(NUL_MANIFEST.into());
    }
    Ok(manifest)
}

/// Whether a manifest is an index (by its media type, or by listing `manifests`).
pub(super) fn is_index(manifest: &Value, media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST || manifest.get("manifests").is_some()
}

/// An index's entries and the one Crossplane reads: the sole image, else `linux/amd64`.
pub(super) struct IndexChoice {
    pub(super) children: Vec<String>,
    /// `os/architecture` of each image entry.
    pub(super) platforms: Vec<String>,
    pub(super) chosen: Option<Desc>,
    /// The `xpkg-extensions` manifest, if the index lists one.
    pub(super) extensions: Option<Desc>,
}

pub(super) fn choose(index: &Value) -> IndexChoice {
    let entries: Vec<Desc> = index["manifests"]
        .as_array()
        .map(|a| a.iter().filter_map(Desc::parse).collect())
        .unwrap_or_default();
    let extensions = entries
        .iter()
        .find(|d| d.role() == Some("xpkg-extensions"))
        .cloned();
    let images: Vec<&Desc> = entries
        .iter()
        .filter(|d| {
            d.role() != Some("xpkg-extensions")
                && d.platform.as_ref().is_none_or(|(os, _)| os != "unknown")
        })
        .collect();
    let linux_amd64 = |d: &&&Desc| {
        d.platform
            .as_ref()
            .is_some_and(|(os, arch)| os == "linux" && arch == "amd64")
    };
    let chosen = match images.as_slice() {
        [one] => Some(*one),
        many => many.iter().find(linux_amd64).copied(),
    };
    IndexChoice {
        children: entries.iter().map(|d| d.digest.clone()).collect(),
        platforms: images
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|(os, arch)| format!("{os}/{arch}")))
            .collect(),
        chosen: chosen.cloned(),
        extensions,
    }
}

/// What an image manifest is, before any blob is read.
pub(super) enum Shape {
    /// A Helm chart (its config type says so).
    Helm,
    /// An artifact: an `artifactType`, or a config that is no image config.
    Artifact,
    /// An image config but no tar layer and no roles (a cosign signature or attestation, an
    /// artifact pushed the old way): the layers' distinct types, in order.
    NoTarLayer(Vec<String>),
    /// An image that may hold a package.
    Image(Image),
}

/// An image manifest's parts.
pub(super) struct Image {
    pub(super) layers: Vec<Desc>,
    pub(super) config: Option<Desc>,
    /// Layer roles from descriptor annotations (more may come from the config's labels).
    pub(super) roles: Vec<(String, Desc)>,
    pub(super) tar_layers: Vec<Desc>,
}

/// An image manifest's shape, its `artifactType` and the bytes its blobs add up to.
pub(super) fn shape(manifest: &Value) -> (Shape, Option<String>, u64) {
    let layers: Vec<Desc> = manifest["layers"]
        .as_array()
        .map(|a| a.iter().filter_map(Desc::parse).collect())
        .unwrap_or_default();
    let config = Desc::parse(&manifest["config"]);
    let artifact_type = manifest["artifactType"].as_str().map(str::to_owned);
    let image_bytes =
        layers.iter().map(|l| l.size).sum::<u64>() + config.as_ref().map_or(0, |c| c.size);
    let config_type = config.as_ref().map_or("", |c| c.media_type.as_str());
    let shape = if config_type == HELM_CONFIG {
        Shape::Helm
    } else if artifact_type.is_some() || !IMAGE_CONFIGS.contains(&config_type) {
        Shape::Artifact
    } else {
        let roles: Vec<(String, Desc)> = layers
            .iter()
            .filter_map(|l| Some((l.role()?.to_owned(), l.clone())))
            .collect();
        let tar_layers: Vec<Desc> = layers
            .iter()
            .filter(|l| is_tar_layer(&l.media_type))
            .cloned()
            .collect();
        if roles.is_empty() && !layers.is_empty() && tar_layers.is_empty() {
            let mut types: Vec<String> = layers.iter().map(|l| l.media_type.clone()).collect();
            types.dedup();
            Shape::NoTarLayer(types)
        } else {
            Shape::Image(Image {
                layers,
                config,
                roles,
                tar_layers,
            })
        }
    };
    (shape, artifact_type, image_bytes)
}

/// The roles an image config's `io.crossplane.xpkg:<layer digest>` labels give its layers.
pub(super) fn label_roles(config: &Value, layers: &[Desc]) -> Vec<(String, Desc)> {
    let Some(labels) = config["config"]["Labels"].as_object() else {
        return Vec::new();
    };
    labels
        .iter()
        .filter_map(|(key, role)| {
            let digest = key.strip_prefix("io.crossplane.xpkg:")?;
            let layer = layers.iter().find(|l| l.digest == digest)?;
            Some((role.as_str()?.to_owned(), layer.clone()))
        })
        .collect()
}

/// What becomes of an image without layer roles.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Roleless {
    /// Something to run (an entrypoint or command), or no tar layer: an image.
    Image,
    /// Looks like a package, but its tar layers add up to more than the flatten limit.
    TooLarge(u64),
    /// Looks like a package (nothing to run): its tar layers are searched for `package.yaml`.
    Flatten,
}

pub(super) fn roleless(config: &Value, tar_layers: &[Desc], flatten_limit: u64) -> Roleless {
    let runnable = !config["config"]["Entrypoint"].is_null() || !config["config"]["Cmd"].is_null();
    let total: u64 = tar_layers.iter().map(|l| l.size).sum();
    if runnable || tar_layers.is_empty() {
        Roleless::Image
    } else if total > flatten_limit {
        Roleless::TooLarge(total)
    } else {
        Roleless::Flatten
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TAR: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    const CONFIG: &str = "application/vnd.oci.image.config.v1+json";

    fn layer(digest: &str, media: &str, role: Option<&str>) -> Value {
        let mut l = json!({"mediaType": media, "digest": digest, "size": 10});
        if let Some(r) = role {
            l["annotations"] = json!({"io.crossplane.xpkg": r});
        }
        l
    }

    #[test]
    fn an_index_gives_its_sole_image_else_linux_amd64() {
        let entry = |d: &str, os: &str, arch: &str| json!({"digest": d, "mediaType": "m", "size": 1, "platform": {"os": os, "architecture": arch}});
        let one = choose(&json!({"manifests": [entry("sha256:a", "linux", "arm64")]}));
        assert_eq!(one.chosen.unwrap().digest, "sha256:a");
        let many = choose(&json!({"manifests": [
            entry("sha256:a", "linux", "arm64"),
            entry("sha256:b", "linux", "amd64"),
            entry("sha256:c", "unknown", "unknown"),
        ]}));
        assert_eq!(many.chosen.unwrap().digest, "sha256:b");
        assert_eq!(many.platforms, ["linux/arm64", "linux/amd64"]);
        assert_eq!(many.children.len(), 3);
        let none = choose(&json!({"manifests": [
            entry("sha256:a", "linux", "arm64"),
            entry("sha256:b", "windows", "amd64"),
        ]}));
        assert!(none.chosen.is_none());
    }

    #[test]
    fn shapes_are_told_from_the_manifest_alone() {
        let m = |config: &str, layers: Vec<Value>| json!({"config": {"mediaType": config, "digest": "sha256:c", "size": 2}, "layers": layers});
        let (s, _, bytes) = shape(&m(HELM_CONFIG, vec![layer("sha256:l", TAR, None)]));
        assert!(matches!(s, Shape::Helm));
        assert_eq!(bytes, 12);
        let (s, _, _) = shape(&m("application/vnd.example", vec![]));
        assert!(matches!(s, Shape::Artifact));
        let mut with_type = m(CONFIG, vec![]);
        with_type["artifactType"] = "application/vnd.sbom".into();
        let (s, t, _) = shape(&with_type);
        assert!(matches!(s, Shape::Artifact));
        assert_eq!(t.as_deref(), Some("application/vnd.sbom"));
        let sig = "application/vnd.dev.cosign.simplesigning.v1+json";
        let (s, _, _) = shape(&m(CONFIG, vec![layer("sha256:s", sig, None)]));
        assert!(matches!(s, Shape::NoTarLayer(ref t) if t == &[sig.to_owned()]));
        let (s, _, _) = shape(&m(CONFIG, vec![layer("sha256:b", TAR, Some("base"))]));
        assert!(matches!(s, Shape::Image(ref i) if i.roles.len() == 1 && i.tar_layers.len() == 1));
    }

    #[test]
    fn labels_give_roles_and_roleless_images_are_flattened_only_when_nothing_runs() {
        let layers = vec![Desc::parse(&layer("sha256:b", TAR, None)).unwrap()];
        let config =
            json!({"config": {"Labels": {"io.crossplane.xpkg:sha256:b": "base", "other": "x"}}});
        let roles = label_roles(&config, &layers);
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].0, "base");
        assert!(label_roles(&json!({}), &layers).is_empty());
        assert_eq!(roleless(&json!({}), &layers, 100), Roleless::Flatten);
        assert_eq!(roleless(&json!({}), &layers, 5), Roleless::TooLarge(10));
        let runs = json!({"config": {"Entrypoint": ["/bin/x"]}});
        assert_eq!(roleless(&runs, &layers, 100), Roleless::Image);
        assert_eq!(roleless(&json!({}), &[], 100), Roleless::Image);
    }
}
