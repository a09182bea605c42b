//! Docker Hub's official images live under `library/`: a short name sent for docker.io, with
//! `ns` or in the host-in-path form, reaches the upstream as `library/<name>`.

use reqwest::StatusCode;
use testkit::{
    oci::{ImageSpec, LayerSpec, tar_gz},
    registry::{Registry, RegistryOptions},
};

use crate::harness::{Shim, http, push, scratch_layout};
use testkit::http::Sent;

#[tokio::test]
async fn short_docker_hub_names_reach_library_upstream() {
    // A docker-registry stands in for Docker Hub, holding `library/busybox` only.
    let hub = Registry::start(RegistryOptions::default()).await;
    let (_tmp, layout) = scratch_layout();
    let d = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"official")]))],
        ..Default::default()
    });
    layout.tag("v1", &d);
    push(&layout, "v1", &hub, "library/busybox:v1").await;
    let shim = Shim::start(&format!(
        "[[upstream]]\nname = \"hub\"\nhosts = [\"docker.io\"]\nurl = \"{}\"\n",
        hub.url()
    ))
    .await;
    let accept = "application/vnd.oci.image.manifest.v1+json";
    for path in [
        "/v2/busybox/manifests/v1?ns=docker.io",
        "/v2/busybox/manifests/v1?ns=registry-1.docker.io",
        "/v2/docker.io/busybox/manifests/v1",
        "/v2/index.docker.io/busybox/manifests/v1",
        "/v2/library/busybox/manifests/v1?ns=docker.io",
        "/v2/docker.io/library/busybox/manifests/v1",
    ] {
        let r = http()
            .get(format!("{}{path}", shim.url()))
            .header("accept", accept)
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(
            r.headers()["docker-content-digest"],
            d.digest.as_str(),
            "{path}"
        );
    }
    // Names with a namespace are left alone: `team/busybox` is not `library/...`.
    let r = http()
        .get(shim.v2("team/busybox/manifests/v1?ns=docker.io"))
        .header("accept", accept)
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
