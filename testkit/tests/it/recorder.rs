//! The recorder forwards verbatim and records what it saw.

use testkit::http::Sent;
use testkit::oci::{self, ImageSpec, LayerSpec, OciLayout};
use testkit::recorder::Recorder;
use testkit::registry::{Registry, RegistryOptions};
use testkit::skopeo;

#[tokio::test]
async fn records_headers_and_forwards_host_so_locations_point_at_it() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let recorder = Recorder::start(&registry.url()).await;

    let response = crate::http()
        .post(format!("{}/v2/a/b/blobs/uploads/?x=1", recorder.url()))
        .header("x-probe", "hello")
        .sent()
        .await;

    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{}/v2/a/b/blobs/uploads/", recorder.url())),
        "{location}"
    );
    let requests = recorder.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path_and_query, "/v2/a/b/blobs/uploads/?x=1");
    assert_eq!(requests[0].header("X-Probe"), Some("hello"));
    assert_eq!(
        requests[0].header("host"),
        Some(recorder.host_port().as_str())
    );
}

#[tokio::test]
async fn skopeo_push_and_head_through_the_recorder() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let recorder = Recorder::start(&registry.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    let layer = oci::tar_gz(&[("f", &[7u8; 100_000][..])]);
    let manifest = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(layer.clone())],
        ..ImageSpec::default()
    });
    layout.tag("v1", &manifest);
    let dst = format!("docker://{}/via/recorder:v1", recorder.host_port());

    skopeo::copy(&layout.skopeo_ref("v1"), &dst, &[])
        .await
        .unwrap();
    let head = crate::http()
        .head(format!(
            "{}/v2/via/recorder/blobs/{}",
            recorder.url(),
            skopeo::digest_of(&layer)
        ))
        .sent()
        .await;

    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        layer.len().to_string().as_str()
    );
    let served = skopeo::inspect_raw(&dst, &[]).await.unwrap();
    assert_eq!(skopeo::digest_of(&served), manifest.digest);
    let requests = recorder.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.method == "PUT" && r.path_and_query.contains("/manifests/v1"))
    );
    assert!(requests.iter().all(|r| {
        r.header("user-agent")
            .is_some_and(|ua| ua.contains("skopeo"))
            || r.method == "HEAD"
    }));
}
