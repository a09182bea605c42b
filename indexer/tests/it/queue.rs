//! The queue's guarantees: a dead worker's job is finished by another, failures back off and
//! end visible, reconcile finds what the queue missed, moved tags keep their history.

use std::time::Duration;

use shimmer_store::jobs::{self, JobSource, NewJob};
use testkit::{
    background::Background,
    oci::OciLayout,
    registry::{Registry, RegistryOptions},
    skopeo,
    xpkg_image::{self, PackageImage},
    xpkg_source,
};

use crate::harness::{Env, scratch_layout};

pub(crate) fn nop() -> PackageImage {
    xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main"))
}

/// A layout holding provider-nop as `v1`.
pub(crate) fn nop_layout() -> (tempfile::TempDir, OciLayout) {
    let (tmp, layout) = scratch_layout();
    xpkg_image::write(&layout, "v1", &nop());
    (tmp, layout)
}

#[tokio::test]
async fn a_dead_workers_job_is_finished_by_another_once() {
    let env = Env::start_with(
        "[indexer]\nlease = \"1s\"\npoll_interval = \"200ms\"\nretry_base = \"0s\"\n",
    )
    .await;
    let (_tmp, layout) = nop_layout();
    env.push(&layout, "v1", "xpkg/provider-nop", &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A worker claims the job and dies without a word (its lease is never renewed).
    let claimed = env.claim(Duration::from_secs(1)).await.unwrap();
    assert!(
        env.claim(Duration::from_secs(1)).await.is_none(),
        "no job runs twice at once"
    );
    // Another worker, mid-job, killed: its future is dropped part-way.
    env.index_all().await;
    let states: Vec<(String, i32)> =
        testkit::pg::rows(&env.pool, "select state, attempts from index_jobs").await;
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
    jobs::enqueue(&env.pool, &missing_job()).await.unwrap();
    env.index_all().await;
    let (state, attempts, error): (String, i32, Option<String>) = testkit::pg::row(
        &env.pool,
        "select state, attempts, last_error from index_jobs",
    )
    .await;
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
    let (_tmp, layout) = nop_layout();
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
    assert_eq!(env.package_versions().await, 1);
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
    let now: String = testkit::pg::scalar(&env.pool, "select v.manifest_digest from tags t join versions v on v.id = t.version_id where t.tag = 'latest'").await;
    assert_eq!(now, d2.digest);
    let history: Vec<String> = testkit::pg::scalars(
        &env.pool,
        "select manifest_digest from tag_history order by seen_at",
    )
    .await;
    assert_eq!(history, vec![d1.digest.clone(), d2.digest.clone()]);
    assert_eq!(
        env.count("select count(*) from versions").await,
        2,
        "the old digest stays"
    );
}

/// A retry delay is the exponential one plus up to 25% of jitter.
fn assert_jittered(delay: f64, exponential: f64, what: &str) {
    assert!(
        (exponential..=exponential * 1.25).contains(&delay),
        "{what}: {delay} is not {exponential} plus at most 25%"
    );
}

pub(crate) fn missing_job() -> NewJob {
    NewJob {
        backend: "primary".into(),
        repository: "does/not-exist".into(),
        reference: "v1".into(),
        digest: format!("sha256:{}", "0".repeat(64)),
        media_type: None,
        source: JobSource::Manual,
        at: std::time::SystemTime::now(),
    }
}

/// The stored job: state, attempts, lease expiries, last error, and how long after its last
/// update it may run again (in seconds; both timestamps written by one statement).
async fn job_row(env: &Env) -> (String, i32, i32, Option<String>, f64) {
    testkit::pg::row(
        &env.pool,
        "select state, attempts, lease_expiries, last_error,
                extract(epoch from run_after - updated_at)::float8
         from index_jobs",
    )
    .await
}

/// Waits until the only job's lease has run out.
async fn wait_for_lease_expiry(env: &Env) {
    env.wait_for(
        "the lease ran out",
        "select lease_until < now() from index_jobs",
    )
    .await;
}

/// Claims the only job as soon as its backoff allows (at most 20 s: a correctness bound).
async fn claim_when_due(env: &Env, lease: Duration) -> jobs::ClaimedJob {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(job) = env.claim(lease).await {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job never became due again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_job_that_kills_its_worker_every_time_ends_failed_after_backoff() {
    let env = Env::start_with(
        "[indexer]\nmax_attempts = 2\nretry_base = \"1s\"\npoll_interval = \"100ms\"\n",
    )
    .await;
    jobs::enqueue(&env.pool, &missing_job()).await.unwrap();
    let retry = jobs::Retry {
        max_attempts: 2,
        base: Duration::from_secs(1),
    };
    let lease = Duration::from_millis(300);

    // Attempt 1: the worker dies holding the job.
    let first = env.claim(lease).await.unwrap();
    assert_eq!(first.attempt, 1);
    wait_for_lease_expiry(&env).await;
    assert_eq!(jobs::expire_leases(&env.pool, retry).await.unwrap(), 1);
    let (state, attempts, expiries, error, delay) = job_row(&env).await;
    assert_eq!((state.as_str(), attempts, expiries), ("queued", 1, 1));
    assert!(
        error
            .as_deref()
            .unwrap_or_default()
            .contains("lease expired"),
        "{error:?}"
    );
    assert_jittered(delay, 1.0, "the expiry counts as an attempt: base backoff");

    // Attempt 2: dies again. The workers (not this test) notice and give up on the job.
    let second = claim_when_due(&env, lease).await;
    assert_eq!(second.attempt, 2);
    wait_for_lease_expiry(&env).await;
    env.index_all().await;
    let (state, attempts, expiries, error, _) = job_row(&env).await;
    assert_eq!((state.as_str(), attempts, expiries), ("failed", 2, 2));
    let error = error.unwrap_or_default();
    assert!(error.contains("lease expired 2 times"), "{error}");
    assert!(
        !jobs::complete(&env.pool, &second).await.unwrap(),
        "the dead worker's lease is void"
    );
}

#[tokio::test]
async fn each_retry_waits_twice_as_long_as_the_one_before() {
    let env = Env::start_with(
        "[indexer]\nmax_attempts = 3\nretry_base = \"2s\"\npoll_interval = \"100ms\"\n",
    )
    .await;
    jobs::enqueue(&env.pool, &missing_job()).await.unwrap();
    // Real workers fail the job (its manifest does not exist) three times; every state the job
    // passes through between attempts is recorded from the stored timestamps.
    let workers = Background::spawn(|stop| env.indexer.clone().run(1, stop));
    let delays = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(i32, f64)>::new()));
    let pool = env.pool.clone();
    testkit::wait_until("the job failed for good", Duration::from_secs(30), || {
        let pool = pool.clone();
        let delays = delays.clone();
        async move {
            let (state, attempts, delay): (String, i32, f64) = testkit::pg::row(
                &pool,
                "select state, attempts, extract(epoch from run_after - updated_at)::float8
                 from index_jobs",
            )
            .await;
            let mut delays = delays.lock().unwrap();
            if state == "queued" && attempts > 0 && delays.last().is_none_or(|d| d.0 != attempts) {
                delays.push((attempts, delay));
            }
            state == "failed"
        }
    })
    .await;
    workers.stop().await;
    let delays = delays.lock().unwrap().clone();
    assert_eq!(
        delays.iter().map(|d| d.0).collect::<Vec<_>>(),
        [1, 2],
        "{delays:?}"
    );
    assert_jittered(delays[0].1, 2.0, "retry delay after attempt 1");
    assert_jittered(delays[1].1, 4.0, "retry delay after attempt 2");
    let (state, attempts, expiries, _, _) = job_row(&env).await;
    assert_eq!((state.as_str(), attempts, expiries), ("failed", 3, 0));

    // A lease expiry backs off on the same schedule (attempt 1: the base delay).
    jobs::enqueue(
        &env.pool,
        &NewJob {
            repository: "does/not-exist-either".into(),
            ..missing_job()
        },
    )
    .await
    .unwrap();
    testkit::pg::exec(&env.pool, "delete from index_jobs where state = 'failed'").await;
    let retry = jobs::Retry {
        max_attempts: 3,
        base: Duration::from_secs(1),
    };
    let mut expected = 1.0;
    for attempt in 1..=2 {
        let job = claim_when_due(&env, Duration::from_millis(200)).await;
        assert_eq!(job.attempt, attempt);
        wait_for_lease_expiry(&env).await;
        jobs::expire_leases(&env.pool, retry).await.unwrap();
        let (state, _, expiries, _, delay) = job_row(&env).await;
        assert_eq!((state.as_str(), expiries), ("queued", attempt));
        assert_jittered(delay, expected, &format!("after lease expiry {attempt}"));
        expected *= 2.0;
    }
}

#[tokio::test]
async fn a_job_queued_while_workers_idle_wakes_them_without_polling() {
    // Polling alone would not look again for an hour: only the notification can wake them.
    let env = Env::start_with("[indexer]\npoll_interval = \"1h\"\n").await;
    let workers = Background::spawn(|stop| env.indexer.clone().run(2, stop));
    // Both workers find nothing and go idle.
    let listening = "select count(*) > 0 from pg_stat_activity
                     where datname = current_database() and query ilike 'listen%'";
    env.wait_for("the listener is connected", listening).await;
    let (_tmp, layout) = nop_layout();
    env.push(&layout, "v1", "xpkg/provider-nop", &[]).await;
    env.wait_for(
        "the pushed package's job is done",
        "select count(*) = 1 from index_jobs where state = 'done'",
    )
    .await;
    workers.stop().await;
    assert_eq!(env.package_versions().await, 1);
}

#[tokio::test]
async fn reconcile_pages_through_tags_and_goes_on_past_a_failing_repository() {
    let env = Env::start().await;
    let (_tmp, layout) = nop_layout();
    let direct = |repo: &str, tag: &str| {
        let to = format!("docker://{}/{repo}:{tag}", env.registry.host_port());
        let from = layout.skopeo_ref("v1");
        async move { skopeo::copy(&from, &to, &[]).await.unwrap() }
    };
    let tags = ["v1", "v2", "v3", "v4", "v5"];
    for tag in tags {
        direct("xpkg/provider-nop", tag).await;
    }
    direct("xpkg/broken", "v1").await;
    direct("xpkg/zz-after", "v1").await;
    // Break one repository in the registry's own storage: its tag names a manifest revision the
    // repository no longer links, so reading the tag's manifest fails (a real server's 404).
    let revisions = env
        .registry
        .data_dir()
        .join("docker/registry/v2/repositories/xpkg/broken/_manifests/revisions");
    std::fs::remove_dir_all(&revisions).unwrap_or_else(|e| panic!("{}: {e}", revisions.display()));

    // Two names a page: the catalog (3 repositories) and the 5 tags take several pages each.
    let reader = env
        .indexer
        .backend("primary")
        .unwrap()
        .clone()
        .with_page_size(2);
    // docker-registry pages in its own order, not sorted: compare as sets.
    let mut listed = reader.tags("xpkg/provider-nop").await.unwrap();
    listed.sort();
    assert_eq!(listed, tags, "every tag, each once, across pages");
    let report = shimmer_indexer::reconcile::reconcile(&env.pool, &reader, |_| true)
        .await
        .unwrap();
    assert_eq!(
        (report.repositories, report.tags, report.failed),
        (3, 7, 1),
        "{report:?}"
    );
    assert!(
        report.errors.len() == 1 && report.errors[0].starts_with("xpkg/broken: "),
        "{report:?}"
    );
    let queued: Vec<(String, String)> = testkit::pg::rows(
        &env.pool,
        "select repository, reference from index_jobs order by repository",
    )
    .await;
    let mut repos: Vec<&str> = queued.iter().map(|(r, _)| r.as_str()).collect();
    repos.dedup();
    assert_eq!(
        repos,
        ["xpkg/provider-nop", "xpkg/zz-after"],
        "the repository after the broken one was still walked"
    );
    assert_eq!(report.enqueued, 6, "one job per tag: 5 + 1");
}

#[tokio::test]
async fn path_backends_are_indexed() {
    // A registry whose API lives under a path (`http.prefix`), as behind a load balancer that
    // routes by path: the shim forwards to it, and the indexer reads it (every URL under the
    // configured path; see `shimmer_registry::Endpoint`).
    let pathed = Registry::start(RegistryOptions {
        prefix: Some("/registry/".into()),
        log_level: "warn".into(),
        ..Default::default()
    })
    .await;
    let env = Env::start_with(&format!(
        "[indexer]\nmax_attempts = 1\npoll_interval = \"100ms\"\n\
         [[backend]]\nname = \"pathed\"\nurl = \"{}\"\n\
         [[route]]\nprefix = \"under/\"\nbackend = \"pathed\"\n",
        pathed.api_base()
    ))
    .await;
    let (_tmp, layout) = nop_layout();
    env.push(&layout, "v1", "under/provider-nop", &[]).await;
    env.index_all().await;
    let jobs: Vec<(String, String, Option<String>)> = testkit::pg::rows(
        &env.pool,
        "select backend, state, last_error from index_jobs",
    )
    .await;
    assert_eq!(
        jobs,
        [("pathed".to_owned(), "done".to_owned(), None)],
        "one job, for the backend under a path, done"
    );
    let indexed = env
        .count(
            "select count(*) from versions v join packages p on p.id = v.package_id \
             where p.repository = 'under/provider-nop' and p.backend = 'pathed' \
             and v.kind = 'package'",
        )
        .await;
    assert_eq!(indexed, 1, "indexed as a package");
    // Its catalog and tag lists are read under the path too.
    let reader = env.indexer.backend("pathed").unwrap();
    let report = shimmer_indexer::reconcile::reconcile(&env.pool, reader, |_| true)
        .await
        .unwrap();
    assert_eq!(
        (
            report.repositories,
            report.tags,
            report.enqueued,
            report.failed
        ),
        (1, 1, 0, 0),
        "{report:?}"
    );
}

/// A backend that asks for a client certificate (mutual TLS) is indexed like any other: the
/// registry client presents the configured certificate. This used to fail every job with a TLS
/// handshake error, and later to fail them as unreadable.
#[tokio::test]
async fn mutual_tls_backends_are_indexed_through_the_bridge() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    let secure = Registry::start_mutual_tls(d).await;
    let env = Env::start_with(&format!(
        "[indexer]\nmax_attempts = 1\nretry_base = \"0s\"\npoll_interval = \"100ms\"\n\
         [[backend]]\nname = \"mtls\"\nurl = \"{}\"\nca_file = \"{1}/ca.pem\"\n\
         client_cert = \"{1}/client.pem\"\nclient_key = \"{1}/client.key\"\n\
         [[route]]\nprefix = \"secure/\"\nbackend = \"mtls\"\n",
        secure.url(),
        d.display()
    ))
    .await;
    let (_tmp, layout) = nop_layout();
    env.push(&layout, "v1", "secure/nop", &[]).await;
    env.index_all().await;
    let jobs: Vec<(String, String, Option<String>)> = testkit::pg::rows(
        &env.pool,
        "select backend, state, last_error from index_jobs",
    )
    .await;
    assert!(!jobs.is_empty());
    for (backend, state, error) in &jobs {
        assert_eq!(
            (backend.as_str(), state.as_str()),
            ("mtls", "done"),
            "{error:?}"
        );
    }
    assert_eq!(env.package_versions().await, 1);
    let stored: (String, String, i64) = sqlx::query_as(
        "select p.backend, p.repository, count(c.digest) from versions v \
         join packages p on p.id = v.package_id left join contents c on c.digest = v.contents_digest \
         where v.kind = 'package' group by p.backend, p.repository",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(stored, ("mtls".to_owned(), "secure/nop".to_owned(), 1));
    // A reconcile pass reads the backend's catalog and tags over mutual TLS too.
    let reader = env.indexer.backend("mtls").unwrap();
    let report = shimmer_indexer::reconcile::reconcile(&env.pool, reader, |_| true)
        .await
        .unwrap();
    assert_eq!(
        (report.repositories, report.tags, report.failed),
        (1, 1, 0),
        "{report:?}"
    );

    let unknown = env.indexer.backend("nope").unwrap_err().to_string();
    assert_eq!(unknown, "no backend named \"nope\" is configured");
}
