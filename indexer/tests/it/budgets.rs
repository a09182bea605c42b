//! Version budgets and guarded re-runs, through a real shim, registry and PostgreSQL.

use testkit::{
    attacks::Attack,
    oci::{ImageSpec, LayerSpec, tar_gz},
    xpkg_image, xpkg_source,
};

use crate::harness::{Env, scratch_layout, tag_with_extensions};

/// `configuration-aws-network` with examples, and a readme in an extensions manifest.
fn package_with_extras(layout: &testkit::oci::OciLayout) {
    let package = xpkg_image::write(
        layout,
        "pkg",
        &xpkg_image::from_source(
            &xpkg_source::testdata_root().join("configuration-aws-network-v0.15.0"),
        ),
    );
    let mut readme = LayerSpec::bytes(tar_gz(&[("readme/README.md", b"# Network\n".as_slice())]));
    readme
        .annotations
        .insert("io.crossplane.xpkg".into(), "readme".into());
    let extensions = layout.add_image(ImageSpec {
        config: b"{}".to_vec(),
        config_media_type: Some("application/vnd.oci.empty.v1+json".into()),
        layers: vec![readme],
        ..Default::default()
    });
    tag_with_extensions(layout, "v1", package, extensions);
}

/// (examples stored, extension files recorded, the version's note) of the version tagged v1.
async fn extras(env: &Env) -> (i64, usize, Option<String>) {
    let (examples, meta): (i64, serde_json::Value) = testkit::pg::row(
        &env.pool,
        "select (select count(*) from examples e where e.version_id = v.id), v.meta
         from versions v join tags t on t.version_id = v.id where t.tag = 'v1'",
    )
    .await;
    let files = meta["extensions"].as_array().map_or(0, Vec::len);
    (examples, files, meta["note"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn a_job_whose_worker_died_runs_guarded_and_reads_only_the_package() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    package_with_extras(&layout);
    env.push(&layout, "v1", "xpkg/network", &["--all"]).await;
    // The shim queued the push; as if a worker had died on it once already.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    testkit::pg::exec(&env.pool, "update index_jobs set lease_expiries = 1").await;
    env.index_all().await;
    let (examples, files, note) = extras(&env).await;
    assert_eq!(
        (examples, files),
        (0, 0),
        "guarded: no examples or extensions"
    );
    assert!(note.unwrap().contains("indexed in guarded mode"));
    assert!(env.package_versions().await >= 1);

    // The same package indexed normally has both.
    let env = Env::start().await;
    env.push(&layout, "v1", "xpkg/network", &["--all"]).await;
    env.index_all().await;
    let (examples, files, note) = extras(&env).await;
    assert!(
        examples > 0 && files == 1,
        "{examples} examples, {files} files"
    );
    assert!(note.is_none_or(|n| !n.contains("guarded")));
}

#[tokio::test]
async fn a_version_rejected_for_a_budget_is_not_queued_again_by_reconcile() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    Attack::WideSchema { versions: 65 }.write(&layout, "v1");
    env.push(&layout, "v1", "attacks/wide", &[]).await;
    env.index_all().await;
    let rejection: String = testkit::pg::scalar(
        &env.pool,
        "select rejection from versions where kind = 'rejected'",
    )
    .await;
    assert!(
        rejection.contains("number of versions of one API type exceeded (limit 64)"),
        "{rejection}"
    );
    let reader = env.indexer.backend("primary").unwrap();
    let report = shimmer_indexer::reconcile::reconcile(&env.pool, reader, |_| true)
        .await
        .unwrap();
    assert_eq!((report.enqueued, report.requeued), (0, 0), "{report:?}");
}

#[tokio::test]
async fn a_crd_repeated_in_a_package_is_one_api_type() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let crd = testkit::attacks::wide_crd(2);
    let yaml = format!(
        "{}---\n{crd}\n---\n{crd}\n",
        testkit::attacks::provider(None)
    );
    xpkg_image::write(
        &layout,
        "v1",
        &xpkg_image::PackageImage {
            package_yaml: yaml.into_bytes(),
            ..Default::default()
        },
    );
    env.push(&layout, "v1", "xpkg/twice", &[]).await;
    env.index_all().await;
    assert_eq!(env.count("select count(*) from api_types").await, 1);
}
