//! The queue's guarantees: a dead worker's job is finished by another, failures back off and
//! end visible, reconcile finds what the queue missed, moved tags keep their history.

use std::time::Duration;

use shimmer_store::jobs::{self, JobSource, NewJob};
use testkit::{
    oci::OciLayout,
    skopeo,
    xpkg_image::{self, PackageImage},
    xpkg_source,
};

use crate::harness::Env;

fn nop() -> PackageImage {
    xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main"))
}

#[tokio::test]
async fn a_dead_workers_job_is_finished_by_another_once() {
    let env = Env::start_with("[indexer]\nlease = \"1s\"\npoll_interval = \"200ms\"\n").await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    xpkg_image::write(&layout, "v1", &nop());
    env.push(&layout, "v1", "xpkg/provider-nop", &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A worker claims the job and dies without a word (its lease is never renewed).
    let claimed = jobs::claim(&env.pool, Duration::from_secs(1))
        .await
        .unwrap()
        .unwrap();
    assert!(
        jobs::claim(&env.pool, Duration::from_secs(1))
            .await
            .unwrap()
            .is_none(),
        "no job runs twice at once"
    );
    // Another worker, mid-job, killed: its future is dropped part-way.
    env.index_all().await;
    let states: Vec<(String, i32)> = sqlx::query_as("select state, attempts from index_jobs")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        states,
        vec![("done".to_owned(), 2)],
        "taken over after the lease ran out"
    );
    assert!(
        !jobs::complete(&env.pool, &claimed).await.unwrap(),
        "the dead worker's lease is void"
    );
    assert_eq!(
        env.count("select count(*) from versions").await,
        1,
        "indexed once"
    );
}

#[tokio::test]
async fn failures_back_off_and_end_visible_with_the_error() {
    let env = Env::start_with(
        "[indexer]\nmax_attempts = 3\nretry_base = \"0s\"\npoll_interval = \"100ms\"\n",
    )
    .await;
    jobs::enqueue(
        &env.pool,
        &NewJob {
            backend: "primary".into(),
            repository: "does/not-exist".into(),
            reference: "v1".into(),
            digest: format!("sha256:{}", "0".repeat(64)),
            media_type: None,
            source: JobSource::Manual,
        },
    )
    .await
    .unwrap();
    env.index_all().await;
    let (state, attempts, error): (String, i32, Option<String>) =
        sqlx::query_as("select state, attempts, last_error from index_jobs")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((state.as_str(), attempts), ("failed", 3));
    let error = error.unwrap_or_default();
    assert!(
        error.contains("MANIFEST_UNKNOWN") || error.contains("unknown") || error.contains("404"),
        "{error}"
    );
}

#[tokio::test]
async fn reconcile_queues_what_was_pushed_around_the_shim_once() {
    let env = Env::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    xpkg_image::write(&layout, "v1", &nop());
    skopeo::copy(
        &layout.skopeo_ref("v1"),
        &format!("docker://{}/xpkg/provider-nop:v1", env.registry.host_port()),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(env.count("select count(*) from index_jobs").await, 0);
    let reader = env.indexer.backend("primary").unwrap();
    let report = shimmer_indexer::reconcile::reconcile(&env.pool, reader, |_| true)
        .await
        .unwrap();
    assert_eq!(
        (report.repositories, report.tags, report.enqueued),
        (1, 1, 1)
    );
    let again = shimmer_indexer::reconcile::reconcile(&env.pool, reader, |_| true)
        .await
        .unwrap();
    assert_eq!(again.enqueued, 0);
    env.index_all().await;
    assert_eq!(
        env.count("select count(*) from versions where kind = 'package'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_moved_tag_points_at_the_new_digest_and_keeps_history() {
    let env = Env::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let root = xpkg_source::testdata_root();
    let first = OciLayout::create(tmp.path().join("a"));
    let d1 = xpkg_image::write(
        &first,
        "latest",
        &xpkg_image::from_source(&root.join("provider-nop-v0.2.0")),
    );
    env.push(&first, "latest", "xpkg/provider-nop", &[]).await;
    env.index_all().await;
    let second = OciLayout::create(tmp.path().join("b"));
    let d2 = xpkg_image::write(&second, "latest", &nop());
    env.push(&second, "latest", "xpkg/provider-nop", &[]).await;
    env.index_all().await;
    let now: String = sqlx::query_scalar(
        "select v.manifest_digest from tags t join versions v on v.id = t.version_id where t.tag = 'latest'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(now, d2.digest);
    let history: Vec<String> =
        sqlx::query_scalar("select manifest_digest from tag_history order by seen_at")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(history, vec![d1.digest.clone(), d2.digest.clone()]);
    assert_eq!(
        env.count("select count(*) from versions").await,
        2,
        "the old digest stays"
    );
}
