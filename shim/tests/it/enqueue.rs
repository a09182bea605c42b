//! Every manifest pushed, or pulled for the first time, is queued once; the client never waits
//! on the queue and never fails because of it.

use std::{
    sync::atomic::Ordering,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use reqwest::{StatusCode, header};
use shimmer_store::PgPool;
use testkit::{
    oci::OciLayout,
    pg::PgServer,
    registry::{Registry, RegistryOptions},
    skopeo,
};

use crate::harness::{Shim, backend_toml, http, jobs, wait_for_jobs};
use testkit::http::Sent;

fn layout_with(dir: &std::path::Path, tag: &str, content: &[u8]) -> (OciLayout, String) {
    let layout = OciLayout::create(dir.join(tag));
    let digest = layout.file_image(tag, content).digest;
    (layout, digest)
}

/// Rows ever inserted, updated or deleted in the queue tables (counts writes, not rows present).
/// Call it after closing every pool that wrote: a server process flushes its statistics lazily,
/// but always when its connection ends.
async fn writes(url: &str) -> i64 {
    let pool = PgPool::connect(url).await.unwrap();
    let (n,): (i64,) = testkit::pg::row(
        &pool,
        "select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
         from pg_stat_user_tables where relname in ('index_jobs', 'seen_manifests')",
    )
    .await;
    n
}

#[tokio::test]
async fn push_enqueues_one_job_and_pulls_enqueue_only_unseen_digests() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let tmp = tempfile::tempdir().unwrap();

    let (layout, digest) = layout_with(tmp.path(), "v1", b"pushed");
    shim.push(&layout, "v1", "acme/pkg:v1", &[]).await;
    let queued = wait_for_jobs(&shim.pool, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued_after = jobs(&shim.pool).await;
    assert_eq!(
        queued_after.len(),
        1,
        "exactly one job per push: {queued_after:?}"
    );
    let job = &queued[0];
    assert_eq!(
        (
            job.backend.as_str(),
            job.repository.as_str(),
            job.reference.as_str(),
            job.digest.as_str()
        ),
        ("primary", "acme/pkg", "v1", digest.as_str())
    );
    assert_eq!(job.source, "push");
    assert_eq!(job.state, "queued");
    assert_eq!(
        job.media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );

    // Pushed straight to the backend, then pulled through the shim: queued once.
    let (other, other_digest) = layout_with(tmp.path(), "v2", b"pushed directly");
    skopeo::push(&other, "v2", &reg.host_port(), "acme/direct:v2", &[]).await;
    let c = http();
    let url = shim.v2(&format!("acme/direct/manifests/{other_digest}"));
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let r = c.get(&url).header(header::ACCEPT, accept).sent().await;
    assert_eq!(r.status(), StatusCode::OK);
    let queued = wait_for_jobs(&shim.pool, 2).await;
    assert_eq!(queued[1].source, "pull");
    assert_eq!(queued[1].digest, other_digest);

    // Pulling known digests again writes nothing: not from this process's memory, nor from a
    // second shim that must ask the database.
    for _ in 0..3 {
        let r = c.get(&url).header(header::ACCEPT, accept).sent().await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = c.head(&url).header(header::ACCEPT, accept).sent().await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["docker-content-digest"], other_digest.as_str());
        assert!(r.headers().contains_key(header::CONTENT_LENGTH));
    }
    let by_tag = shim.v2("acme/pkg/manifests/v1");
    let r = c.head(&by_tag).header(header::ACCEPT, accept).sent().await;
    assert_eq!(r.status(), StatusCode::OK);
    let second = Shim::start_with_database(
        &backend_toml("primary", &reg.url(), ""),
        shim.state.config.database.url.expose(),
    )
    .await;
    let r = c
        .get(format!(
            "{}/v2/acme/direct/manifests/{other_digest}",
            second.url()
        ))
        .header(header::ACCEPT, accept)
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(jobs(&shim.pool).await.len(), 2);
    // One push and one first pull wrote 2 rows each (a job and a seen digest); nothing else did.
    let url = shim.state.config.database.url.expose().to_owned();
    shim.pool.close().await;
    second.pool.close().await;
    testkit::wait_until("statistics are flushed", Duration::from_secs(5), || async {
        writes(&url).await >= 4
    })
    .await;
    assert_eq!(
        writes(&url).await,
        4,
        "a known digest cost a database write"
    );
}

#[tokio::test]
async fn push_succeeds_with_the_database_down_and_the_job_arrives_later() {
    let pg = PgServer::start().await;
    let db_url = pg.create_database("shim_outage").await;
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start_with_database(&backend_toml("primary", &reg.url(), ""), &db_url).await;
    let tmp = tempfile::tempdir().unwrap();
    let (layout, digest) = layout_with(tmp.path(), "v1", b"during outage");

    pg.stop().await;
    let push_started = SystemTime::now();
    skopeo::copy(
        &layout.skopeo_ref("v1"),
        &shim.docker("acme/outage:v1"),
        &[],
    )
    .await
    .expect("a push must not fail because the queue is down");
    let push_done = SystemTime::now();
    let raw = skopeo::inspect_raw(&shim.docker("acme/outage:v1"), &[])
        .await
        .unwrap();
    assert_eq!(skopeo::digest_of(&raw), digest);
    testkit::wait_until(
        "the failure is counted",
        Duration::from_secs(10),
        || async { shim.state.enqueuer.pending() >= 1 },
    )
    .await;
    // While the database is down: exactly the one pushed job waits in memory (the pull by tag
    // above is of a digest this process has seen, so it adds none), nothing was written and
    // nothing dropped. Each attempt (the first and every retry) counts as a failure.
    let down = metrics(&shim).await;
    assert_eq!(down["shimmer_enqueue_pending"], 1, "{down:?}");
    assert_eq!(down["shimmer_jobs_enqueued_total"], 0, "{down:?}");
    assert_eq!(down["shimmer_enqueue_dropped_total"], 0, "{down:?}");
    assert!(down["shimmer_enqueue_failures_total"] >= 1, "{down:?}");
    assert_eq!(shim.state.enqueuer.pending(), 1);

    pg.restart().await;
    let queued = wait_for_jobs(&shim.pool, 1).await;
    assert!(
        queued
            .iter()
            .any(|j| j.digest == digest && j.source == "push"),
        "{queued:?}"
    );
    // The job keeps the time of the push, not the time the retry got it written (seconds later:
    // the database was down for all of the checks above).
    let (created_at,): (f64,) = sqlx::query_as(
        "select extract(epoch from created_at)::float8 from index_jobs where digest = $1",
    )
    .bind(&digest)
    .fetch_one(&shim.pool)
    .await
    .unwrap();
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    assert!(
        created_at >= secs(push_started) - 0.001 && created_at <= secs(push_done) + 0.001,
        "created_at {created_at} outside the push ({} to {})",
        secs(push_started),
        secs(push_done)
    );
    // Once written: nothing waits, exactly one job was enqueued, and the failures stay counted.
    testkit::wait_until(
        "the retried job is counted as written",
        Duration::from_secs(10),
        || async { metrics(&shim).await["shimmer_jobs_enqueued_total"] == 1 },
    )
    .await;
    let up = metrics(&shim).await;
    assert_eq!(up["shimmer_enqueue_pending"], 0, "{up:?}");
    assert_eq!(up["shimmer_jobs_enqueued_total"], 1, "{up:?}");
    assert_eq!(up["shimmer_enqueue_dropped_total"], 0, "{up:?}");
    assert!(
        up["shimmer_enqueue_failures_total"] >= down["shimmer_enqueue_failures_total"],
        "{up:?}"
    );
    assert_eq!(shim.state.enqueuer.pending(), 0);
}

/// The shim's `/metrics`, as name -> value.
async fn metrics(shim: &Shim) -> std::collections::HashMap<String, u64> {
    let text = crate::harness::metrics_text(shim).await;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[tokio::test]
async fn jobs_still_held_at_shutdown_are_tried_once_more_then_counted_as_dropped() {
    let pg = PgServer::start().await;
    let db_url = pg.create_database("shim_stop").await;
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start_with_database(&backend_toml("primary", &reg.url(), ""), &db_url).await;
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = layout_with(tmp.path(), "v1", b"held at stop");
    pg.stop().await;
    shim.push(&layout, "v1", "acme/held:v1", &[]).await;
    testkit::wait_until("the job is held", Duration::from_secs(10), || async {
        shim.state.enqueuer.pending() >= 1
    })
    .await;
    let state = shim.state.clone();
    let failures = state.metrics.enqueue_failures.load(Ordering::Relaxed);
    shim.shutdown().await;
    // The stop tried the held job again (one more failure), and the loss is counted (and
    // logged), not silent.
    assert!(state.metrics.enqueue_failures.load(Ordering::Relaxed) > failures);
    assert_eq!(state.metrics.enqueue_dropped.load(Ordering::Relaxed), 1);
}
