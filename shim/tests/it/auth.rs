//! Credentials: a backend's challenge reaches the client; a client's credentials reach only the
//! backend that asked for them.

use reqwest::{StatusCode, header};
use testkit::{
    oci::{ImageSpec, LayerSpec, OciLayout, tar_gz},
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
    skopeo,
};

use crate::harness::{Shim, backend_toml, docker, http};

#[tokio::test]
async fn basic_auth_backend_challenges_and_credentials_never_reach_the_open_backend() {
    let secure = Registry::start(RegistryOptions {
        htpasswd: Some(("alice".into(), "s3cret-pass".into())),
        ..Default::default()
    })
    .await;
    let open = Registry::start(RegistryOptions::default()).await;
    // A logging relay in front of the real open registry: it records what reached it.
    let open_rec = Recorder::start(&open.url()).await;
    let toml = format!(
        "[server]\nping_backend = \"secure\"\n{}{}",
        backend_toml("secure", &secure.url(), "private/"),
        backend_toml("open", &open_rec.url(), "public/")
    );
    let shim = Shim::start(&toml).await;
    let c = http();

    // Without credentials: the backend's own challenge, unchanged.
    let r = c.get(format!("{}/v2/", shim.url())).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let r = c
        .get(format!("{}/v2/private/x/tags/list", shim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    let image = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"auth")]))],
        ..Default::default()
    });
    layout.tag("v1", &image);

    let err = skopeo::copy(&layout.skopeo_ref("v1"), &shim.docker("private/x:v1"), &[])
        .await
        .unwrap_err();
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
    let creds = ["--dest-creds", "alice:s3cret-pass"];
    skopeo::copy(
        &layout.skopeo_ref("v1"),
        &shim.docker("private/x:v1"),
        &creds,
    )
    .await
    .unwrap();
    // skopeo sends the same credentials for every repository on the shim's host.
    skopeo::copy(
        &layout.skopeo_ref("v1"),
        &shim.docker("public/y:v1"),
        &creds,
    )
    .await
    .unwrap();
    skopeo::inspect_raw(&docker(&open.host_port(), "public/y:v1"), &[])
        .await
        .unwrap();

    let reached_open = open_rec.requests();
    assert!(
        reached_open.len() >= 4,
        "the push went through the open backend"
    );
    for r in &reached_open {
        assert!(
            r.header("authorization").is_none(),
            "credentials for the secure backend reached the open one: {r:?}"
        );
    }
    // The secure backend did receive them (the push succeeded only with them).
    let with = c
        .get(format!("{}/v2/private/x/tags/list", shim.url()))
        .basic_auth("alice", Some("s3cret-pass"))
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), StatusCode::OK);
}
