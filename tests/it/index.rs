//! `shimmer index REF --json`: one JSON object, for a package and for a plain image.

use crate::helpers::{index_json, primary_config, push, scratch_layout};
use testkit::{
    registry::{Registry, RegistryOptions},
    xpkg_image, xpkg_source,
};

#[tokio::test]
async fn index_prints_one_json_object() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let (dir, layout) = scratch_layout();
    let source = xpkg_source::testdata_root().join("function-patch-and-transform-v0.10.8");
    xpkg_image::write(&layout, "v0.10.8", &xpkg_image::from_source(&source));
    push(&layout, "v0.10.8", &registry, "fn/pat:v0.10.8", &[]).await;
    let config = primary_config(&dir, &db.url, "", &registry.url(), "fn/");
    let run = |reference: &str| {
        let out = index_json(reference, &config);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let v = run("fn/pat:v0.10.8");
    assert_eq!(v["package_type"], "Function");
    assert_eq!(v["name"], "function-patch-and-transform");
    let apis = v["apis"].as_array().unwrap();
    assert!(!apis.is_empty());
    assert!(
        apis.iter()
            .all(|a| a["group"].is_string() && a["kind"].is_string() && a["versions"].is_array())
    );
    assert!(v["objects"].as_u64().unwrap() >= 2);
    // `objects` counts the version's distinct objects, examples included; a first run stores
    // them all.
    assert_eq!(v["objects_new"], v["objects"]);
    assert!(v["objects"].as_u64().unwrap() > v["examples"].as_u64().unwrap());
    assert!(v["bytes_downloaded"].as_u64().unwrap() > 0);
    assert!(v["image_bytes"].as_u64().unwrap() > 0);
    // Again: the same objects, none new.
    let again = run(&format!(
        "127.0.0.1:5000/fn/pat@{}",
        v["manifest_digest"].as_str().unwrap()
    ));
    assert_eq!(again["objects_new"], 0);
    assert_eq!(again["objects"], v["objects"]);
    assert_eq!(again["package_type"], "Function");
}

#[tokio::test]
async fn index_json_of_a_non_package_has_a_null_package_type() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let (dir, layout) = scratch_layout();
    let layer = testkit::oci::tar_gz(&[("app", b"#!/bin/sh\necho hi\n")]);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/app"]},
        "rootfs": {"type": "layers", "diff_ids": [testkit::oci::diff_id(&layer)]},
    }))
    .unwrap();
    let image = layout.add_image(testkit::oci::ImageSpec {
        config,
        layers: vec![testkit::oci::LayerSpec::bytes(layer)],
        ..Default::default()
    });
    layout.tag("v1", &image);
    push(&layout, "v1", &registry, "apps/web:v1", &[]).await;
    let config = primary_config(&dir, &db.url, "", &registry.url(), "");
    let out = index_json("apps/web:v1", &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let object = v.as_object().unwrap();
    assert!(
        object.contains_key("package_type") && v["package_type"].is_null(),
        "package_type is present and null: {v}"
    );
    assert_eq!(v["kind"], "image");
    assert!(v["name"].is_null(), "{v}");
    assert_eq!(v["apis"], serde_json::json!([]));
    assert_eq!(
        (v["objects"].as_u64(), v["objects_new"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(v["manifest_digest"], image.digest.as_str());
    assert!(v["image_bytes"].as_u64().unwrap() > 0, "{v}");
}
