//! Registry options and lifecycle.

use testkit::http::Sent;
use testkit::oci::{self, Flavor, ImageSpec, LayerSpec, OciLayout};
use testkit::registry::{Registry, RegistryOptions};
use testkit::skopeo;

#[tokio::test]
async fn htpasswd_registry_demands_credentials() {
    let registry = Registry::start(RegistryOptions {
        htpasswd: Some(("alice".to_owned(), "s3cret".to_owned())),
        ..RegistryOptions::default()
    })
    .await;
    let url = format!("{}/v2/", registry.url());

    let anonymous = crate::http().get(&url).sent().await;
    let wrong = crate::http()
        .get(&url)
        .basic_auth("alice", Some("nope"))
        .sent()
        .await;
    let right = crate::http()
        .get(&url)
        .basic_auth("alice", Some("s3cret"))
        .sent()
        .await;

    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(wrong.status(), 401);
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn logs_requests_and_restarts_with_the_same_port_and_data() {
    let mut registry = Registry::start(RegistryOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    let manifest = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(oci::tar_gz(&[("f", b"restart")]))],
        ..ImageSpec::default()
    });
    layout.tag("v1", &manifest);
    let dst = format!("docker://{}/restart/me:v1", registry.host_port());
    skopeo::copy(&layout.skopeo_ref("v1"), &dst, &[])
        .await
        .unwrap();
    let url = registry.url();

    registry.stop().await;
    assert!(
        crate::http()
            .get(format!("{url}/v2/"))
            .send()
            .await
            .is_err()
    );
    registry.start_again().await;

    assert_eq!(registry.url(), url);
    let served = skopeo::inspect_raw(&dst, &[]).await.unwrap();
    assert_eq!(skopeo::digest_of(&served), manifest.digest);
    assert!(
        registry.log().contains("/v2/restart/me/manifests/v1"),
        "{}",
        registry.log()
    );
    assert!(
        registry
            .data_dir()
            .join("docker/registry/v2/repositories/restart/me")
            .is_dir()
    );
}

#[tokio::test]
async fn location_headers_are_absolute_or_relative_as_configured() {
    for (relative_urls, expected_prefix) in [(false, "http://"), (true, "/v2/")] {
        let registry = Registry::start(RegistryOptions {
            relative_urls,
            ..RegistryOptions::default()
        })
        .await;
        let response = crate::http()
            .post(format!("{}/v2/x/y/blobs/uploads/", registry.url()))
            .sent()
            .await;
        assert_eq!(response.status(), 202);
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(expected_prefix), "{location}");
    }
}

#[tokio::test]
async fn proxy_mode_serves_the_upstreams_content() {
    let upstream = Registry::start(RegistryOptions::default()).await;
    let cache = Registry::start(RegistryOptions {
        proxy_remote_url: Some(upstream.url()),
        ..RegistryOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    let manifest = layout.add_image(ImageSpec {
        flavor: Flavor::DockerV2,
        layers: vec![LayerSpec::bytes(oci::tar_gz(&[("f", b"proxied")]))],
        ..ImageSpec::default()
    });
    layout.tag("v1", &manifest);
    let src = format!("docker://{}/lib/app:v1", upstream.host_port());
    skopeo::copy(&layout.skopeo_ref("v1"), &src, &[])
        .await
        .unwrap();

    let served = skopeo::inspect_raw(&format!("docker://{}/lib/app:v1", cache.host_port()), &[])
        .await
        .unwrap();

    assert_eq!(skopeo::digest_of(&served), manifest.digest);
}
