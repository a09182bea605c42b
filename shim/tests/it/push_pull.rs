//! skopeo (and containerd) push through the shim and pull back: every byte as the backend has it.

use testkit::{
    oci::{Flavor, ImageSpec, IndexSpec, LayerSpec, OciLayout, tar_gz},
    registry::{Registry, RegistryOptions},
    skopeo,
};

use crate::harness::{Shim, backend_toml, dir_digests, docker};

/// Pushes `tag` of `layout` through the shim to `repo`, then checks the manifest the backend
/// stored is the one written, and that a pull through the shim equals a direct pull.
async fn round_trip(
    shim: &Shim,
    reg: &Registry,
    layout: &OciLayout,
    tag: &str,
    repo: &str,
    all: bool,
) {
    let extra: &[&str] = if all { &["--all"] } else { &[] };
    let dest = shim.docker(&format!("{repo}:{tag}"));
    skopeo::copy(&layout.skopeo_ref(tag), &dest, extra)
        .await
        .unwrap_or_else(|e| panic!("push of {tag} through the shim failed: {e}"));

    let via_shim = skopeo::inspect_raw(&dest, &[]).await.unwrap();
    let direct = skopeo::inspect_raw(&docker(&reg.host_port(), &format!("{repo}:{tag}")), &[])
        .await
        .unwrap();
    assert_eq!(
        via_shim, direct,
        "{tag}: manifest differs between shim and backend"
    );

    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("shim"), tmp.path().join("direct"));
    skopeo::copy(&dest, &format!("dir:{}", a.display()), extra)
        .await
        .unwrap();
    skopeo::copy(
        &docker(&reg.host_port(), &format!("{repo}:{tag}")),
        &format!("dir:{}", b.display()),
        extra,
    )
    .await
    .unwrap();
    let (da, db) = (dir_digests(&a), dir_digests(&b));
    assert!(da.len() >= 3, "{tag}: pulled too little: {da:?}");
    assert_eq!(
        da, db,
        "{tag}: pull through the shim differs from a direct pull"
    );
}

fn layer(name: &str) -> LayerSpec {
    LayerSpec::bytes(tar_gz(&[(name, format!("contents of {name}").as_bytes())]))
}

#[tokio::test]
async fn skopeo_round_trips_docker_oci_index_and_artifact() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));

    let oci = layout.add_image(ImageSpec {
        layers: vec![layer("a"), layer("b")],
        ..Default::default()
    });
    layout.tag("oci", &oci);
    let docker_v2 = layout.add_image(ImageSpec {
        flavor: Flavor::DockerV2,
        layers: vec![layer("c")],
        ..Default::default()
    });
    layout.tag("docker", &docker_v2);
    let amd = layout.add_image(ImageSpec {
        layers: vec![layer("amd64")],
        ..Default::default()
    });
    let arm = layout.add_image(ImageSpec {
        layers: vec![layer("arm64")],
        ..Default::default()
    });
    let index = layout.add_index(IndexSpec {
        manifests: vec![
            amd.with_platform("linux", "amd64"),
            arm.with_platform("linux", "arm64"),
        ],
        ..Default::default()
    });
    layout.tag("index", &index);
    let artifact = layout.add_image(ImageSpec {
        artifact_type: Some("application/vnd.example.signature.v1".into()),
        config: b"{}".to_vec(),
        config_media_type: Some("application/vnd.oci.empty.v1+json".into()),
        layers: vec![LayerSpec {
            media_type: Some("application/vnd.example.signature.v1+json".into()),
            ..LayerSpec::bytes(br#"{"signed":"yes"}"#.to_vec())
        }],
        subject: Some(oci.clone()),
        ..Default::default()
    });
    layout.tag("sig", &artifact);

    round_trip(&shim, &reg, &layout, "oci", "acme/images", false).await;
    round_trip(&shim, &reg, &layout, "docker", "acme/images", false).await;
    round_trip(&shim, &reg, &layout, "index", "acme/images", true).await;
    round_trip(&shim, &reg, &layout, "sig", "acme/images", false).await;

    // The backend holds exactly the manifests written, byte for byte.
    for (tag, desc) in [
        ("oci", &oci),
        ("docker", &docker_v2),
        ("index", &index),
        ("sig", &artifact),
    ] {
        let raw = skopeo::inspect_raw(&shim.docker(&format!("acme/images:{tag}")), &[])
            .await
            .unwrap();
        assert_eq!(skopeo::digest_of(&raw), desc.digest, "{tag}");
    }
    let docker_manifest = skopeo::inspect_raw(&shim.docker("acme/images:docker"), &[])
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&docker_manifest).unwrap();
    assert_eq!(
        v["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[tokio::test]
async fn a_256_mib_layer_streams_through_unchanged() {
    let reg = Registry::quiet().await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    let image = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::random_gzip(256 * 1024 * 1024, 7)],
        ..Default::default()
    });
    layout.tag("big", &image);
    let manifest: serde_json::Value =
        serde_json::from_slice(&layout.read_blob(&image.digest)).unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    assert!(size > 256 * 1024 * 1024);

    shim.push(&layout, "big", "acme/big:v1", &[]).await;
    let out = tmp.path().join("pulled");
    skopeo::copy(
        &shim.docker("acme/big:v1"),
        &format!("dir:{}", out.display()),
        &[],
    )
    .await
    .unwrap();
    let direct = tmp.path().join("direct");
    skopeo::copy(
        &docker(&reg.host_port(), "acme/big:v1"),
        &format!("dir:{}", direct.display()),
        &[],
    )
    .await
    .unwrap();
    let hex = layer_digest.strip_prefix("sha256:").unwrap();
    assert_eq!(std::fs::metadata(out.join(hex)).unwrap().len(), size);
    // skopeo verifies digests as it pulls; check the stored files independently too: every
    // file (manifest, config, the layer) is identical to a direct pull from the backend.
    let (via_shim, from_backend) = (dir_digests(&out), dir_digests(&direct));
    assert_eq!(via_shim.get(hex), Some(&layer_digest));
    assert_eq!(
        via_shim, from_backend,
        "a pull through the shim differs from a direct pull"
    );
}

/// containerd (`ctr`) as an ordinary client of the shim, not a mirror: it pulls an image pushed
/// by skopeo, then pushes it to another repository, where it asks the backend to mount the
/// blobs from the repository it pulled them from (its `distribution.source` labels) instead of
/// uploading them again.
#[tokio::test]
async fn containerd_pulls_and_pushes_through_the_shim_mounting_what_it_can() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let rec = testkit::recorder::Recorder::start(&reg.url()).await;
    let shim = Shim::start(&backend_toml("primary", &rec.url(), "")).await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    let image = layout.add_image(ImageSpec {
        layers: vec![layer("bin/app"), layer("etc/app.conf")],
        ..Default::default()
    });
    layout.tag("v1", &image);
    shim.push(&layout, "v1", "team/app:v1", &[]).await;

    let ctrd = testkit::containerd::Containerd::start().await;
    let source = format!("{}/team/app:v1", shim.host_port);
    let target = format!("{}/team/copy:v1", shim.host_port);
    ctrd.pull(&source, &[]).await.unwrap();
    ctrd.ctr(&["images", "push", "--plain-http", &target, &source])
        .await
        .unwrap();

    let (copy, app) = (
        docker(&reg.host_port(), "team/copy:v1"),
        docker(&reg.host_port(), "team/app:v1"),
    );
    assert_eq!(
        skopeo::inspect_raw(&copy, &[]).await.unwrap(),
        skopeo::inspect_raw(&app, &[]).await.unwrap()
    );
    let reqs = rec.requests();
    let mounts = reqs
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path_and_query
                    .starts_with("/v2/team/copy/blobs/uploads/?")
                && r.path_and_query.contains("mount=sha256")
                && r.path_and_query.contains("from=team")
        })
        .count();
    let uploads = reqs
        .iter()
        .filter(|r| r.method == "PUT" && r.path_and_query.starts_with("/v2/team/copy/blobs/"))
        .count();
    assert!(mounts >= 2, "{mounts} mounts: {reqs:#?}");
    assert_eq!(uploads, 0, "nothing uploaded again: {reqs:#?}");
}
