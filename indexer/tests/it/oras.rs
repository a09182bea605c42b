//! Manifests pushed by oras-py (the ORAS project's Python client) through the shim: a Helm
//! chart laid out as `helm push` lays it out, and an artifact with its own config type. Each is
//! recorded as what it is, from its manifest alone.

use testkit::{
    oci::tar_gz,
    oras::{Oras, PushOptions},
    skopeo,
};

use crate::harness::Env;

#[tokio::test]
async fn a_helm_chart_and_an_artifact_from_oras_are_recorded_without_reading_a_layer() {
    let env = Env::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let chart_yaml = "apiVersion: v2\nname: podinfo\nversion: 6.5.0\nappVersion: 6.5.0\n";
    // A chart layer of a few hundred KiB, so reading it would show in the download count.
    // (xorshift bytes: gzip cannot shrink them).
    let mut x = 0x2545_f491_u32;
    let templates: Vec<u8> = (0..400_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(
        tmp.path().join("podinfo-6.5.0.tgz"),
        tar_gz(&[
            ("podinfo/Chart.yaml", chart_yaml.as_bytes()),
            ("podinfo/templates/blob.bin", &templates),
        ]),
    )
    .unwrap();
    std::fs::write(
        tmp.path().join("chart.json"),
        br#"{"apiVersion":"v2","name":"podinfo","version":"6.5.0","appVersion":"6.5.0"}"#,
    )
    .unwrap();
    std::fs::write(tmp.path().join("model.bin"), &templates).unwrap();
    std::fs::write(tmp.path().join("model.json"), br#"{"framework":"none"}"#).unwrap();

    let oras = Oras::new(&env.shim);
    oras.push(
        tmp.path(),
        "charts/podinfo:6.5.0",
        &["podinfo-6.5.0.tgz:application/vnd.cncf.helm.chart.content.v1.tar+gzip"],
        PushOptions {
            config: Some("chart.json:application/vnd.cncf.helm.config.v1+json"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    oras.push(
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
    let rows: Vec<Row> = sqlx::query_as(
        "select p.repository, v.kind, v.media_type, v.bytes_downloaded, v.image_bytes, v.rejection
         from versions v join packages p on p.id = v.package_id order by p.repository",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
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
        // Only the manifest was read, though the layers are far larger.
        let manifest = skopeo::inspect_raw(
            &format!("docker://{}/{repo}:{tag}", env.registry.host_port()),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(*downloaded, manifest.len() as i64, "{repo}");
        assert!(*size > 400_000, "{repo}: {size}");
    }
    let tags: Vec<(String, String)> = sqlx::query_as(
        "select p.repository, t.tag from tags t join versions v on v.id = t.version_id
         join packages p on p.id = v.package_id order by 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        tags,
        [
            ("charts/podinfo".to_owned(), "6.5.0".to_owned()),
            ("ml/model".to_owned(), "v1".to_owned())
        ]
    );
}
