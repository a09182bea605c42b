//! `shimmer indexer` processes: a job survives the death of the worker holding it.

use crate::helpers::{migrate, primary_config, push, spawn};
use testkit::{
    oci::OciLayout,
    registry::{Registry, RegistryOptions},
    xpkg_image, xpkg_source,
};

/// A `shimmer indexer` process SIGKILLed in the middle of a job: after its lease runs out a
/// second process takes the job over and finishes it, and the package is indexed once. The
/// backend is a real registry behind a real nginx that reads it at 128 KiB/s, so the job is
/// still downloading when the first worker dies.
#[tokio::test]
async fn a_killed_indexer_process_leaves_its_job_to_another() {
    use std::time::Duration;

    let registry = Registry::start(RegistryOptions::default()).await;
    let slow = testkit::nginx::Nginx::start(&format!(
        "location / {{ proxy_pass {}; proxy_set_header Host $http_host; proxy_limit_rate 128k; }}",
        registry.url()
    ))
    .await;
    let db = testkit::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    // A real package whose package.yaml carries 2 MiB of incompressible comments.
    let source = xpkg_source::testdata_root().join("provider-nop-main");
    let mut image = xpkg_image::from_source(&source);
    let mut x = 0x9e37_79b9_u32;
    let mut padding = String::from("# ");
    while padding.len() < 2 * 1024 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        padding.push(char::from(b'a' + (x % 26) as u8));
        if padding.len() % 100 == 0 {
            padding.push_str("\n# ");
        }
    }
    image
        .package_yaml
        .extend_from_slice(format!("\n{padding}\n").as_bytes());
    let layout = OciLayout::create(dir.path().join("layout"));
    let desc = xpkg_image::write(&layout, "v1", &image);
    push(&layout, "v1", &registry, "xpkg/provider-nop:v1", &[]).await;
    let config = primary_config(
        &dir,
        &db.url,
        "[indexer]\nworkers = 1\nlease = \"2s\"\npoll_interval = \"200ms\"\nretry_base = \"1s\"\n",
        &slow.url(),
        "",
    );
    assert!(migrate(&config).success());
    let pool = shimmer_store::PgPool::connect(&db.url).await.unwrap();
    shimmer_store::jobs::enqueue(
        &pool,
        &shimmer_store::jobs::NewJob {
            backend: "primary".into(),
            repository: "xpkg/provider-nop".into(),
            reference: "v1".into(),
            digest: desc.digest.clone(),
            media_type: None,
            source: shimmer_store::jobs::JobSource::Push,
            at: std::time::SystemTime::now(),
        },
    )
    .await
    .unwrap();
    let state = || async {
        testkit::pg::row::<(String, i32)>(&pool, "select state, attempts from index_jobs").await
    };

    let mut first = spawn("indexer", &config);
    testkit::wait_until(
        "the first worker runs the job",
        Duration::from_secs(20),
        || async { state().await.0 == "running" },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.start_kill().unwrap(); // SIGKILL: no chance to release the job
    first.wait().await.unwrap();
    assert_eq!(
        state().await,
        ("running".to_owned(), 1),
        "the dead worker still holds its lease"
    );
    let versions =
        || async { testkit::pg::scalar::<i64>(&pool, "select count(*) from versions").await };
    assert_eq!(versions().await, 0, "killed before it stored anything");

    let mut second = spawn("indexer", &config);
    testkit::wait_until(
        "the second worker finishes the job",
        Duration::from_secs(60),
        || async { state().await.0 == "done" },
    )
    .await;
    second.start_kill().unwrap();
    assert_eq!(state().await, ("done".to_owned(), 2));
    assert_eq!(versions().await, 1, "indexed once");
    let kind: String = testkit::pg::scalar(&pool, "select kind from versions").await;
    assert_eq!(kind, "package");
}
