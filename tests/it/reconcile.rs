//! `shimmer reconcile --backend NAME`.

use crate::helpers::{push, scratch_layout, shimmer, write_config};
use testkit::{
    registry::{Registry, RegistryOptions},
    xpkg_image, xpkg_source,
};

#[tokio::test]
async fn reconcile_with_backend_walks_only_that_backend() {
    let primary = Registry::start(RegistryOptions::default()).await;
    let other = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let (dir, layout) = scratch_layout();
    let source = xpkg_source::testdata_root().join("provider-nop-main");
    xpkg_image::write(&layout, "v1", &xpkg_image::from_source(&source));
    // Pushed around the shim, straight to each backend: only reconcile can find them.
    for (registry, repo) in [(&primary, "a/nop"), (&other, "b/nop")] {
        push(&layout, "v1", registry, &format!("{repo}:v1"), &[]).await;
    }
    let config = write_config(
        &dir,
        &format!(
            "[database]\nurl = \"{}\"\n[[backend]]\nname = \"primary\"\nurl = \"{}\"\n[[backend]]\nname = \"other\"\nurl = \"{}\"\n[[route]]\nprefix = \"a/\"\nbackend = \"primary\"\n[[route]]\nprefix = \"b/\"\nbackend = \"other\"\n",
            db.url,
            primary.url(),
            other.url()
        ),
    );
    let reconcile = |backend: &str| {
        shimmer()
            .args(["reconcile", "--backend", backend, "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = reconcile("other");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        "other: 1 repositories, 1 tags, 1 manifests queued, 0 repositories failed\n"
    );
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let jobs: Vec<(String, String, String, String)> = testkit::pg::rows(
        &pool,
        "select backend, repository, reference, source from index_jobs",
    )
    .await;
    assert_eq!(
        jobs,
        vec![(
            "other".to_owned(),
            "b/nop".to_owned(),
            "v1".to_owned(),
            "reconcile".to_owned()
        )]
    );
    // Again: nothing new to queue.
    let again = reconcile("other");
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 manifests queued"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let unknown = reconcile("nosuch");
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no backend named \"nosuch\""),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}
