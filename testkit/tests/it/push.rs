//! OciLayout + skopeo + docker-registry: what is written is what the registry serves.

use std::collections::BTreeMap;

use serde_json::Value;
use testkit::http::Sent;
use testkit::oci::{
    self, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, Flavor, ImageSpec, IndexSpec, LayerSpec,
    OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, OciLayout,
};
use testkit::registry::{Registry, RegistryOptions};
use testkit::skopeo;

fn image(layout: &OciLayout, flavor: Flavor, content: &str) -> Descriptor {
    let mut layer = LayerSpec::bytes(oci::tar_gz(&[("package.yaml", content.as_bytes())]));
    layer
        .annotations
        .insert("io.crossplane.xpkg".to_owned(), "base".to_owned());
    let labels = BTreeMap::from([("org.example/label".to_owned(), content.to_owned())]);
    layout.add_image(ImageSpec {
        flavor,
        config: oci::config_json(&labels),
        layers: vec![layer],
        ..ImageSpec::default()
    })
}

async fn push_and_inspect(
    layout: &OciLayout,
    registry: &Registry,
    tag: &str,
    all: bool,
) -> Vec<u8> {
    let dst = format!("docker://{}/test/{tag}:v1", registry.host_port());
    let extra: &[&str] = if all { &["--all"] } else { &[] };
    skopeo::copy(&layout.skopeo_ref(tag), &dst, extra)
        .await
        .unwrap();
    skopeo::inspect_raw(&dst, &[]).await.unwrap()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[tokio::test]
async fn oci_image_is_pushed_byte_for_byte_with_annotations() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    let manifest = image(&layout, Flavor::Oci, "kind: Provider");
    layout.tag("img", &manifest);

    let served = push_and_inspect(&layout, &registry, "img", false).await;

    assert_eq!(skopeo::digest_of(&served), manifest.digest);
    let served = json(&served);
    assert_eq!(served["mediaType"], OCI_MANIFEST);
    assert_eq!(
        served["layers"][0]["annotations"]["io.crossplane.xpkg"],
        "base"
    );
}

#[tokio::test]
async fn docker_v2_image_is_a_real_schema2_manifest_in_the_registry() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    let manifest = image(&layout, Flavor::DockerV2, "docker");
    layout.tag("docker", &manifest);
    assert!(layout.skopeo_ref("docker").starts_with("dir:"));

    let served = push_and_inspect(&layout, &registry, "docker", false).await;

    assert_eq!(skopeo::digest_of(&served), manifest.digest);
    let response = crate::http()
        .get(format!("{}/v2/test/docker/manifests/v1", registry.url()))
        .header("accept", DOCKER_MANIFEST)
        .sent()
        .await;
    assert_eq!(response.headers()["content-type"], DOCKER_MANIFEST);
    assert_eq!(
        response.headers()["docker-content-digest"],
        manifest.digest.as_str()
    );
}

#[tokio::test]
async fn indexes_of_both_flavors_are_pushed_whole_with_all() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    for (flavor, tag, media_type) in [
        (Flavor::Oci, "oci-index", OCI_INDEX),
        (Flavor::DockerV2, "docker-list", DOCKER_LIST),
    ] {
        let amd = image(&layout, flavor, &format!("{tag} amd64")).with_platform("linux", "amd64");
        let arm = image(&layout, flavor, &format!("{tag} arm64")).with_platform("linux", "arm64");
        let index = layout.add_index(IndexSpec {
            flavor,
            manifests: vec![amd.clone(), arm.clone()],
            ..IndexSpec::default()
        });
        layout.tag(tag, &index);

        let served = push_and_inspect(&layout, &registry, tag, true).await;

        assert_eq!(skopeo::digest_of(&served), index.digest, "{tag}");
        assert_eq!(json(&served)["mediaType"], media_type);
        let arm_ref = format!(
            "docker://{}/test/{tag}@{}",
            registry.host_port(),
            arm.digest
        );
        let served_arm = skopeo::inspect_raw(&arm_ref, &[]).await.unwrap();
        assert_eq!(skopeo::digest_of(&served_arm), arm.digest, "{tag} arm64");
    }
}

#[tokio::test]
async fn artifact_with_subject_is_stored_verbatim() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    let subject = image(&layout, Flavor::Oci, "subject");
    layout.tag("subject", &subject);
    push_and_inspect(&layout, &registry, "subject", false).await;
    let mut layer = LayerSpec::bytes(b"a signature".to_vec());
    layer.media_type = Some("application/vnd.example.signature".to_owned());
    let artifact = layout.add_image(ImageSpec {
        config: oci::EMPTY_JSON.to_vec(),
        config_media_type: Some(OCI_EMPTY.to_owned()),
        layers: vec![layer],
        artifact_type: Some("application/vnd.example.signature".to_owned()),
        subject: Some(subject.clone()),
        ..ImageSpec::default()
    });
    layout.tag("artifact", &artifact);

    let dst = format!("docker://{}/test/subject:sig", registry.host_port());
    skopeo::copy(&layout.skopeo_ref("artifact"), &dst, &[])
        .await
        .unwrap();
    let served = skopeo::inspect_raw(&dst, &[]).await.unwrap();

    assert_eq!(skopeo::digest_of(&served), artifact.digest);
    let served = json(&served);
    assert_eq!(served["artifactType"], "application/vnd.example.signature");
    assert_eq!(served["subject"]["digest"], subject.digest.as_str());
}

#[tokio::test]
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test reports what it measured or wrote"
)]
async fn random_layer_of_256_mib_is_written_in_constant_memory_and_pushed() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    let started = std::time::Instant::now();
    let manifest = tokio::task::spawn_blocking({
        let layout = layout.clone();
        move || {
            layout.add_image(ImageSpec {
                layers: vec![LayerSpec::random_gzip(256 << 20, 1)],
                ..ImageSpec::default()
            })
        }
    })
    .await
    .unwrap();
    eprintln!("wrote 256 MiB layer in {:?}", started.elapsed());
    layout.tag("big", &manifest);
    let started = std::time::Instant::now();

    let served = push_and_inspect(&layout, &registry, "big", false).await;

    eprintln!("pushed it in {:?}", started.elapsed());
    assert_eq!(skopeo::digest_of(&served), manifest.digest);
    let layer = &json(&served)["layers"][0];
    assert!(layer["size"].as_u64().unwrap() > 256 << 20);
}
