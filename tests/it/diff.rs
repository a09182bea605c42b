//! `shimmer diff OLD NEW`: two real versions of provider-nop compared as source folders, as
//! `.xpkg` image tarballs and as references in a real docker-registry; the same changes every
//! way, the same bytes every run, exit 0/1/2, rules files, and one-line errors.

use std::{io::Write, path::Path, process::Output};

use serde_json::Value;
use testkit::{
    registry::{Registry, RegistryOptions},
    xpkg_image, xpkg_source,
};

use crate::helpers::{primary_backend, push, scratch_layout, shimmer, write_config};

fn diff(args: &[&str]) -> Output {
    shimmer().arg("diff").args(args).output().unwrap()
}

fn source(name: &str) -> String {
    xpkg_source::testdata_root()
        .join(name)
        .display()
        .to_string()
}

fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// An image tarball as `crossplane xpkg build` writes one (`manifest.json`, a config, one
/// gzipped layer holding `package.yaml`), of the package source `name`.
fn xpkg_file(dir: &Path, name: &str) -> String {
    let image = xpkg_image::from_source(&xpkg_source::testdata_root().join(name));
    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(image.package_yaml.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    layer
        .append_data(&mut header, "package.yaml", image.package_yaml.as_slice())
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer.into_inner().unwrap()).unwrap();
    let layer = gz.finish().unwrap();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let manifest = br#"[{"Config":"sha256:c0nf","RepoTags":[],"Layers":["l4y3r.tar.gz"]}]"#;
    let path = dir.join(format!("{name}.xpkg"));
    let mut out = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (entry, bytes) in [
        ("sha256:c0nf", config.as_slice()),
        ("l4y3r.tar.gz", layer.as_slice()),
        ("manifest.json", manifest.as_slice()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        out.append_data(&mut h, entry, bytes).unwrap();
    }
    out.finish().unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn diff_compares_folders_files_and_references_alike() {
    let (old, new) = (source("provider-nop-v0.2.0"), source("provider-nop-main"));

    // Folders: v0.2.0 to main removes spec.providerRef (breaking): exit 1.
    let out = diff(&[&old, &new, "--json"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let folders = json_of(&out);
    assert!(folders["breaking"].as_u64().unwrap() >= 1, "{folders}");
    let removed = folders["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["change"] == "field-removed")
        .expect("a field removed");
    assert_eq!(removed["api"], "nop.crossplane.io/NopResource");
    assert_eq!(removed["version"], "v1alpha1");
    assert_eq!(removed["path"], "spec.providerRef");
    assert_eq!(removed["breaking"], true);
    assert_eq!(removed["severity"], "error");
    // The same input prints the same bytes; a version against itself breaks nothing.
    assert_eq!(diff(&[&old, &new, "--json"]).stdout, out.stdout);
    let same = diff(&[&new, &new]);
    assert_eq!(same.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&same.stdout)
            .starts_with("0 breaking changes, 0 warnings, 0 changes")
    );
    // Text and Markdown.
    let text = String::from_utf8(diff(&[&old, &new]).stdout).unwrap();
    assert!(text.contains("BREAKING field-removed"), "{text}");
    let md = String::from_utf8(diff(&[&old, &new, "--format", "markdown"]).stdout).unwrap();
    assert!(
        md.contains("| BREAKING | `field-removed` | `spec.providerRef` |"),
        "{md}"
    );

    // A rules file turns the breaking codes into warnings: the gate passes.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[rules]\nfield-removed = \"warn\"\nlist-type-changed = \"warn\"\n",
    )
    .unwrap();
    let out = diff(&[&old, &new, "--json", "--rules", rules.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let warned = json_of(&out);
    assert_eq!(warned["breaking"], 0);
    assert_eq!(warned["warnings"], folders["breaking"]);

    // `.xpkg` files of the same sources: the same changes.
    let files = diff(&[
        &xpkg_file(dir.path(), "provider-nop-v0.2.0"),
        &xpkg_file(dir.path(), "provider-nop-main"),
        "--json",
    ]);
    assert_eq!(
        files.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&files.stderr)
    );
    assert_eq!(json_of(&files)["changes"], folders["changes"]);

    // Registry references through the configured backend: the same changes again.
    let registry = Registry::start(RegistryOptions::default()).await;
    let (scratch, layout) = scratch_layout();
    for (name, tag) in [
        ("provider-nop-v0.2.0", "v0.2.0"),
        ("provider-nop-main", "main"),
    ] {
        let image = xpkg_image::from_source(&xpkg_source::testdata_root().join(name));
        xpkg_image::write(&layout, tag, &image);
        push(&layout, tag, &registry, &format!("acme/nop:{tag}"), &[]).await;
    }
    let config = write_config(&scratch, &primary_backend(&registry.url(), "acme/"));
    let config = config.to_str().unwrap();
    let refs = diff(&[
        "--config",
        config,
        "acme/nop:v0.2.0",
        "acme/nop:main",
        "--json",
    ]);
    assert_eq!(
        refs.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&refs.stderr)
    );
    assert_eq!(json_of(&refs)["changes"], folders["changes"]);
    assert_eq!(json_of(&refs)["from"], "acme/nop:v0.2.0");

    // Errors: exit 2, one line naming what could not be read.
    for (args, said) in [
        (
            vec![old.as_str(), "/no/such/folder"],
            "/no/such/folder: no such folder or file",
        ),
        (
            vec!["--config", config, "acme/nop:v9.9.9", new.as_str()],
            "acme/nop:v9.9.9: ",
        ),
        (
            vec!["--config", config, "other/nop:v1", new.as_str()],
            "no route covers other/nop",
        ),
        (
            vec![old.as_str(), new.as_str(), "--rules", "/no/rules.toml"],
            "--rules /no/rules.toml: cannot be read",
        ),
        (
            vec![dir.path().to_str().unwrap(), new.as_str()],
            "no crossplane.yaml in this folder",
        ),
    ] {
        let out = diff(&args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with("shimmer diff: ") && err.contains(said),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
        assert!(out.stdout.is_empty());
    }
    std::fs::write(&rules, "[rules]\nfield-gone = \"warn\"\n").unwrap();
    let out = diff(&[&old, &new, "--rules", rules.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown change code `field-gone`"));
}

/// Real version pairs from testdata, each checked for a real change it holds.
#[test]
fn real_version_pairs_show_their_real_changes() {
    let has = |v: &Value, code: &str, api: &str, version: Option<&str>, path: Option<&str>| {
        v["changes"].as_array().unwrap().iter().any(|c| {
            c["change"] == code
                && c["api"] == api
                && c["version"].as_str() == version
                && c["path"].as_str() == path
        })
    };
    let run = |old: &str, new: &str| {
        let out = diff(&[&source(old), &source(new), "--json"]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        json_of(&out)
    };
    // provider-kubernetes v0.18.0 -> v1.2.1: spec.publishConnectionDetailsTo removed from Object
    // in both served versions; the namespaced kubernetes.m.crossplane.io group added.
    let k = run("provider-kubernetes-v0.18.0", "provider-kubernetes-v1.2.1");
    for version in ["v1alpha1", "v1alpha2"] {
        assert!(
            has(
                &k,
                "field-removed",
                "kubernetes.crossplane.io/Object",
                Some(version),
                Some("spec.publishConnectionDetailsTo")
            ),
            "{version}: {k}"
        );
    }
    assert!(
        has(
            &k,
            "api-added",
            "kubernetes.m.crossplane.io/Object",
            None,
            None
        ),
        "{k}"
    );
    // provider-kubernetes v0.9.0 -> v0.18.0: Object's storage moved to v1alpha2, which is new;
    // v1alpha1 deprecated; status.conditions became a map list.
    let k0 = run("provider-kubernetes-v0.9.0", "provider-kubernetes-v0.18.0");
    assert!(
        has(
            &k0,
            "storage-version-changed",
            "kubernetes.crossplane.io/Object",
            None,
            None
        ),
        "{k0}"
    );
    assert!(
        has(
            &k0,
            "version-deprecated",
            "kubernetes.crossplane.io/Object",
            Some("v1alpha1"),
            None
        ),
        "{k0}"
    );
    assert!(
        has(
            &k0,
            "list-type-changed",
            "kubernetes.crossplane.io/Object",
            Some("v1alpha1"),
            Some("status.conditions")
        ),
        "{k0}"
    );
    // provider-helm v0.9.0 -> v0.21.0 -> v1.4.0: new identity types allowed; then Release lost
    // spec.publishConnectionDetailsTo and gained spec.forProvider.maxHistory.
    let h1 = run("provider-helm-v0.9.0", "provider-helm-v0.21.0");
    assert!(
        has(
            &h1,
            "enum-value-added",
            "helm.crossplane.io/ProviderConfig",
            Some("v1beta1"),
            Some("spec.identity.type")
        ),
        "{h1}"
    );
    let h2 = run("provider-helm-v0.21.0", "provider-helm-v1.4.0");
    assert!(
        has(
            &h2,
            "field-removed",
            "helm.crossplane.io/Release",
            Some("v1beta1"),
            Some("spec.publishConnectionDetailsTo")
        ),
        "{h2}"
    );
    assert!(
        has(
            &h2,
            "field-added",
            "helm.crossplane.io/Release",
            Some("v1beta1"),
            Some("spec.forProvider.maxHistory")
        ),
        "{h2}"
    );
    // configuration-aws-network v0.9.0 -> v0.15.0 (an XRD): two parameters became required.
    let n = run(
        "configuration-aws-network-v0.9.0",
        "configuration-aws-network-v0.15.0",
    );
    for p in ["spec.parameters.subnets", "spec.parameters.vpcCidrBlock"] {
        assert!(
            has(
                &n,
                "field-became-required",
                "aws.platform.upbound.io/XNetwork",
                Some("v1alpha1"),
                Some(p)
            ),
            "{p}: {n}"
        );
    }
    assert_eq!(n["breaking"], 2, "{n}");
    // provider-aws-ec2 v1.23.0 -> v2.6.0: hundreds of changes, the namespaced group added.
    let e = run("provider-aws-ec2-v1.23.0", "provider-aws-ec2-v2.6.0");
    let changes = e["changes"].as_array().unwrap();
    assert!(changes.len() > 500, "{}", changes.len());
    let namespaced = changes
        .iter()
        .filter(|c| {
            c["change"] == "api-added"
                && c["api"]
                    .as_str()
                    .unwrap()
                    .starts_with("ec2.aws.m.upbound.io/")
        })
        .count();
    assert!(namespaced > 100, "{namespaced} namespaced APIs added");
    assert!(has(
        &e,
        "api-added",
        "ec2.aws.m.upbound.io/Instance",
        None,
        None
    ));
}
