//! What other clients push through the shim, as they write it: a chart from the real `helm`, an
//! artifact with its own config type from oras-py (the ORAS project's Python client), an index
//! without the optional `mediaType` field.

use testkit::{
    helm::Helm,
    oras::{Oras, PushOptions},
    skopeo, xpkg_image, xpkg_source,
};

use crate::harness::{Env, scratch_layout};

#[tokio::test]
async fn a_chart_from_helm_and_an_artifact_from_oras_are_recorded_without_reading_a_layer() {
    let env = Env::start().await;
    let helm = Helm::new();
    let chart = helm.package("podinfo", "6.5.0").await;
    helm.run(&[
        "push",
        chart.to_str().unwrap(),
        &format!("oci://{}/charts", env.shim),
        "--plain-http",
    ])
    .await
    .unwrap();

    // (xorshift bytes: a model gzip cannot shrink, far larger than the manifest.)
    let mut x = 0x2545_f491_u32;
    let model: Vec<u8> = (0..400_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("model.bin"), &model).unwrap();
    std::fs::write(tmp.path().join("model.json"), br#"{"framework":"none"}"#).unwrap();
    Oras::new(&env.shim)
        .push(
            tmp.path(),
            "ml/model:v1",
            &["model.bin:application/vnd.example.model.v1"],
            PushOptions {
                config: Some("model.json:application/vnd.example.config.v1+json"),
                chunk_size: Some(128 * 1024),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    env.index_all().await;

    /// repository, kind, media type, bytes downloaded, image bytes, rejection
    type Row = (String, String, Option<String>, i64, i64, Option<String>);
    let rows: Vec<Row> = testkit::pg::rows(
        &env.pool,
        "select p.repository, v.kind, v.media_type, v.bytes_downloaded, v.image_bytes, v.rejection
         from versions v join packages p on p.id = v.package_id order by p.repository",
    )
    .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for ((repo, kind, media_type, downloaded, size, rejection), (want_repo, want_kind, tag)) in
        rows.iter().zip([
            ("charts/podinfo", "helm", "6.5.0"),
            ("ml/model", "artifact", "v1"),
        ])
    {
        assert_eq!((repo.as_str(), kind.as_str()), (want_repo, want_kind));
        assert_eq!(rejection, &None, "{repo}");
        assert_eq!(
            media_type.as_deref(),
            Some("application/vnd.oci.image.manifest.v1+json"),
            "{repo}"
        );
        // Only the manifest was read; its config and layers were counted, not fetched.
        let raw = skopeo::inspect_raw(
            &format!("docker://{}/{repo}:{tag}", env.registry.host_port()),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(*downloaded, raw.len() as i64, "{repo}");
        let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let blobs = manifest["config"]["size"].as_i64().unwrap()
            + manifest["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["size"].as_i64().unwrap())
                .sum::<i64>();
        assert_eq!(*size, blobs, "{repo}");
        assert!(blobs > 3 * raw.len() as i64, "{repo}: {blobs}");
    }
    let tags: Vec<(String, String)> = testkit::pg::rows(
        &env.pool,
        "select p.repository, t.tag from tags t join versions v on v.id = t.version_id
         join packages p on p.id = v.package_id order by 1",
    )
    .await;
    assert_eq!(
        tags,
        [
            ("charts/podinfo".to_owned(), "6.5.0".to_owned()),
            ("ml/model".to_owned(), "v1".to_owned())
        ]
    );
}

/// OCI lets an index leave out `mediaType` (the registry goes by the `Content-Type` it was
/// pushed with). Such an index of a package is still read as an index: the package's version,
/// with its platform image as a child, recorded (as for any index) with the media type of the
/// platform manifest read.
#[tokio::test]
async fn an_index_without_a_media_type_field_is_read_as_an_index() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let dir = xpkg_source::testdata_root().join("provider-nop-main");
    let amd = xpkg_image::write(&layout, "amd", &xpkg_image::from_source(&dir));
    let bare = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [amd.clone().with_platform("linux", "amd64")],
    }))
    .unwrap();
    let index = layout
        .add_blob(&bare)
        .with_media_type("application/vnd.oci.image.index.v1+json");
    layout.tag("bare", &index);
    env.push(&layout, "bare", "nop/bare", &["--all"]).await;
    let stored = skopeo::inspect_raw(
        &format!("docker://{}/nop/bare:bare", env.registry.host_port()),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(stored, bare, "skopeo pushed the index as it is");
    env.index_all().await;

    /// media type, kind, package type, index digest, children, platforms, rejection
    type Row = (
        Option<String>,
        String,
        Option<String>,
        Option<String>,
        Vec<String>,
        Vec<String>,
        Option<String>,
    );
    let (media_type, kind, package_type, index_digest, children, platforms, rejection): Row =
        testkit::pg::row(&env.pool, "select v.media_type, v.kind, v.package_type, v.index_digest, v.children, v.platforms, v.rejection
         from versions v join tags t on t.version_id = v.id where t.tag = 'bare'").await;
    assert_eq!(kind, "package", "{rejection:?}");
    assert_eq!(
        media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(package_type.as_deref(), Some("Provider"));
    assert_eq!(index_digest.as_deref(), Some(index.digest.as_str()));
    assert_eq!(children, [amd.digest]);
    assert_eq!(platforms, ["linux/amd64"]);
}
