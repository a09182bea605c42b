//! Reconcile records every tag the backend lists, and gives failed jobs another chance.

use shimmer_indexer::reconcile::reconcile;
use shimmer_store::jobs::{self, NewJob};
use testkit::{skopeo, xpkg_image};

use crate::{
    harness::{Env, scratch_layout},
    queue::{missing_job, nop},
};

/// The stored tags of a repository, sorted.
async fn tags(env: &Env, repository: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select t.tag from tags t join packages p on p.id = t.package_id
         where p.repository = $1 order by t.tag",
    )
    .bind(repository)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn reconcile_records_every_tag_of_a_digest_even_one_added_later() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    xpkg_image::write(&layout, "v1", &nop());
    // Straight to the registry, around the shim: one image under two tags.
    let direct = |tag: &str| {
        let to = format!(
            "docker://{}/xpkg/provider-nop:{tag}",
            env.registry.host_port()
        );
        let from = layout.skopeo_ref("v1");
        async move { skopeo::copy(&from, &to, &[]).await.unwrap() }
    };
    direct("v1").await;
    direct("v1.0").await;
    let reader = env.indexer.backend("primary").unwrap();
    let report = reconcile(&env.pool, reader, |_| true).await.unwrap();
    assert_eq!((report.tags, report.enqueued), (2, 2), "{report:?}");
    env.index_all().await;
    assert_eq!(tags(&env, "xpkg/provider-nop").await, ["v1", "v1.0"]);
    assert_eq!(env.package_versions().await, 1);

    // A third tag of the same, already indexed, digest.
    direct("stable").await;
    let report = reconcile(&env.pool, reader, |_| true).await.unwrap();
    assert_eq!((report.tags, report.enqueued), (3, 1), "{report:?}");
    env.index_all().await;
    assert_eq!(
        tags(&env, "xpkg/provider-nop").await,
        ["stable", "v1", "v1.0"]
    );
    let again = reconcile(&env.pool, reader, |_| true).await.unwrap();
    assert_eq!(again.enqueued, 0, "every pair is recorded now");
}

#[tokio::test]
async fn reconcile_queues_again_a_job_that_failed_for_good() {
    let env = Env::start_with(
        "[indexer]\nmax_attempts = 2\nretry_base = \"0s\"\npoll_interval = \"100ms\"\n",
    )
    .await;
    let (_tmp, layout) = scratch_layout();
    let image = xpkg_image::write(&layout, "v1", &nop());
    // The shim saw the push, but the registry does not have the manifest (yet): every attempt
    // fails, and the job stays failed.
    jobs::enqueue(
        &env.pool,
        &NewJob {
            repository: "xpkg/provider-nop".into(),
            digest: image.digest.clone(),
            ..missing_job()
        },
    )
    .await
    .unwrap();
    env.index_all().await;
    let (state, attempts): (String, i32) =
        testkit::pg::row(&env.pool, "select state, attempts from index_jobs").await;
    assert_eq!((state.as_str(), attempts), ("failed", 2));

    // The registry has it now; workers alone never look at the job again.
    skopeo::copy(
        &layout.skopeo_ref("v1"),
        &format!("docker://{}/xpkg/provider-nop:v1", env.registry.host_port()),
        &[],
    )
    .await
    .unwrap();
    env.index_all().await;
    assert_eq!(env.package_versions().await, 0);

    let reader = env.indexer.backend("primary").unwrap();
    let report = reconcile(&env.pool, reader, |_| true).await.unwrap();
    assert_eq!((report.requeued, report.enqueued), (1, 0), "{report:?}");
    env.index_all().await;
    assert_eq!(env.package_versions().await, 1);
    assert_eq!(tags(&env, "xpkg/provider-nop").await, ["v1"]);
    let states: Vec<(String, String)> = testkit::pg::rows(
        &env.pool,
        "select state, source from index_jobs order by id",
    )
    .await;
    assert_eq!(states, [("done".to_owned(), "reconcile".to_owned())]);
    let again = reconcile(&env.pool, reader, |_| true).await.unwrap();
    assert_eq!((again.requeued, again.enqueued), (0, 0), "{again:?}");
}
