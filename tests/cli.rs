//! The `shimmer` binary itself: configuration errors, `migrate`, `index --json`.

use std::process::Command;

use testkit::{
    oci::OciLayout,
    registry::{Registry, RegistryOptions},
    skopeo, xpkg_image, xpkg_source,
};

fn shimmer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shimmer"));
    c.env_remove("RUST_LOG");
    c
}

#[test]
fn invalid_configuration_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shimmer.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_manifest_bytes = -1\n",
    )
    .unwrap();
    let out = shimmer()
        .args(["migrate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_manifest_bytes"), "{err}");

    let out = shimmer()
        .args(["migrate", "--config"])
        .arg(&path)
        .env("SHIMMER_SERVER__MAX_MANIFEST_BYTES", "10")
        .env("SHIMMER_ROUTE", r#"[{prefix="", backend="missing"}]"#)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("route[0].backend"), "{err}");
}

#[tokio::test]
async fn index_prints_one_json_object() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path().join("layout"));
    let source = xpkg_source::testdata_root().join("function-patch-and-transform-v0.10.8");
    xpkg_image::write(&layout, "v0.10.8", &xpkg_image::from_source(&source));
    skopeo::copy(
        &layout.skopeo_ref("v0.10.8"),
        &format!("docker://{}/fn/pat:v0.10.8", registry.host_port()),
        &[],
    )
    .await
    .unwrap();
    let config = dir.path().join("shimmer.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n[[backend]]\nname = \"primary\"\nurl = \"{}\"\n[[route]]\nprefix = \"fn/\"\nbackend = \"primary\"\n",
            db.url,
            registry.url()
        ),
    )
    .unwrap();
    let run = |reference: &str| {
        let out = shimmer()
            .args(["index", reference, "--json", "--config"])
            .arg(&config)
            .output()
            .unwrap();
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
    assert_eq!(
        v["objects_new"],
        v["objects"].as_u64().unwrap() + v["examples"].as_u64().unwrap()
    );
    assert!(v["bytes_downloaded"].as_u64().unwrap() > 0);
    assert!(v["image_bytes"].as_u64().unwrap() > 0);
    // Again: the same objects, none new.
    let again = run(&format!(
        "127.0.0.1:5000/fn/pat@{}",
        v["manifest_digest"].as_str().unwrap()
    ));
    assert_eq!(again["objects_new"], 0);
    assert_eq!(again["objects"], v["objects"]);
}
