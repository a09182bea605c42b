//! A job's life at its edges: a deadline, a shutdown, a backend another process reads, a tag
//! deleted after the push, old done jobs, and a database a newer release migrated.

use std::time::Duration;

use shimmer_store::jobs::{self, NewJob};

use testkit::background::Background;

use crate::{
    harness::Env,
    queue::{missing_job, nop_layout},
};

#[tokio::test]
async fn a_job_that_hangs_fails_at_the_job_timeout() {
    // A fake backend, on purpose: it accepts connections and never answers, a hang a real
    // docker-registry cannot be made to produce. Its read timeout is an hour, so only the job's
    // own deadline can end the attempt.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let env = Env::start_with(&format!(
        "[indexer]\njob_timeout = \"1s\"\nmax_attempts = 2\nretry_base = \"0s\"\n\
         poll_interval = \"100ms\"\n\
         [[backend]]\nname = \"silent\"\nurl = \"http://{}\"\nread_timeout = \"1h\"\n",
        silent.local_addr().unwrap()
    ))
    .await;
    jobs::enqueue(
        &env.pool,
        &NewJob {
            backend: "silent".into(),
            ..missing_job()
        },
    )
    .await
    .unwrap();
    env.index_all().await;
    let (state, attempts, error): (String, i32, Option<String>) = testkit::pg::row(
        &env.pool,
        "select state, attempts, last_error from index_jobs",
    )
    .await;
    assert_eq!((state.as_str(), attempts), ("failed", 2), "{error:?}");
    let error = error.unwrap_or_default();
    assert!(error.contains("indexer.job_timeout"), "{error}");
}

#[tokio::test]
async fn a_job_released_at_shutdown_keeps_its_attempt_and_its_token_is_never_reused() {
    let env = Env::start().await;
    jobs::enqueue(&env.pool, &missing_job()).await.unwrap();
    let retry = jobs::Retry {
        max_attempts: 2,
        base: Duration::from_secs(60),
    };
    let lease = Duration::from_secs(60);
    let first = env.claim(lease).await.unwrap();
    jobs::release(&env.pool, &first, retry).await.unwrap();
    // Released, not failed: due again at once, with the attempt counted.
    let second = env
        .claim(lease)
        .await
        .expect("a released job runs again without a backoff");
    assert_eq!(second.attempt, 2);
    assert!(
        !jobs::complete(&env.pool, &first).await.unwrap(),
        "the first holder's token is void"
    );
    // A job interrupted on its last attempt every time ends failed, saying why.
    jobs::release(&env.pool, &second, retry).await.unwrap();
    let (state, attempts, error): (String, i32, Option<String>) = testkit::pg::row(
        &env.pool,
        "select state, attempts, last_error from index_jobs",
    )
    .await;
    assert_eq!((state.as_str(), attempts), ("failed", 2));
    assert!(
        error
            .unwrap_or_default()
            .contains("interrupted by a shutdown"),
        "the error says why"
    );
}

#[tokio::test]
async fn workers_leave_jobs_of_backends_they_are_not_configured_for() {
    let env = Env::start_with("[indexer]\npoll_interval = \"100ms\"\n").await;
    // Queued by a shim whose configuration has a backend this process does not.
    jobs::enqueue(
        &env.pool,
        &NewJob {
            backend: "elsewhere".into(),
            ..missing_job()
        },
    )
    .await
    .unwrap();
    assert!(env.claim(Duration::from_secs(60)).await.is_none());
    let (_tmp, layout) = nop_layout();
    env.push(&layout, "v1", "xpkg/provider-nop", &[]).await;
    let workers = Background::spawn(|stop| env.indexer.clone().run(2, stop));
    env.wait_for(
        "primary's job is done",
        "select count(*) = 1 from index_jobs where backend = 'primary' and state = 'done'",
    )
    .await;
    // Give the idle workers a few more polls at the other job.
    tokio::time::sleep(Duration::from_millis(500)).await;
    workers.stop().await;
    let (state, attempts): (String, i32) = testkit::pg::row(
        &env.pool,
        "select state, attempts from index_jobs where backend = 'elsewhere'",
    )
    .await;
    assert_eq!((state.as_str(), attempts), ("queued", 0));
}

#[tokio::test]
async fn a_tag_deleted_after_the_push_leaves_the_digest_indexed_and_the_job_done() {
    let env = Env::start_with(
        "[indexer]\nmax_attempts = 2\nretry_base = \"0s\"\npoll_interval = \"100ms\"\n",
    )
    .await;
    let (_tmp, layout) = nop_layout();
    env.push(&layout, "v1", "xpkg/provider-nop", &[]).await;
    // Deleted in the registry's own storage (docker-registry has no tag DELETE): the manifest
    // stays readable by digest, the tag answers MANIFEST_UNKNOWN.
    let tag = env
        .registry
        .data_dir()
        .join("docker/registry/v2/repositories/xpkg/provider-nop/_manifests/tags/v1");
    std::fs::remove_dir_all(&tag).unwrap_or_else(|e| panic!("{}: {e}", tag.display()));
    env.index_all().await;
    let (state, error): (String, Option<String>) =
        testkit::pg::row(&env.pool, "select state, last_error from index_jobs").await;
    assert_eq!(state, "done", "{error:?}");
    assert_eq!(env.package_versions().await, 1);
    assert_eq!(env.count("select count(*) from tags").await, 0);
}

#[tokio::test]
async fn workers_delete_done_jobs_older_than_the_retention_only() {
    let env = Env::start_with("[indexer]\nkeep_done_jobs = \"1h\"\npoll_interval = \"1h\"\n").await;
    for (repository, state, age) in [
        ("old/done", "done", "2 hours"),
        ("new/done", "done", "10 minutes"),
        ("old/failed", "failed", "2 hours"),
    ] {
        let id = jobs::enqueue(
            &env.pool,
            &NewJob {
                repository: repository.into(),
                ..missing_job()
            },
        )
        .await
        .unwrap();
        sqlx::query(
            "update index_jobs set state = $2, updated_at = now() - $3::interval where id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(age)
        .execute(&env.pool)
        .await
        .unwrap();
    }
    let workers = Background::spawn(|stop| env.indexer.clone().run(1, stop));
    env.wait_for(
        "the old done job is deleted",
        "select count(*) = 2 from index_jobs",
    )
    .await;
    workers.stop().await;
    let left: Vec<String> =
        testkit::pg::scalars(&env.pool, "select repository from index_jobs order by id").await;
    assert_eq!(left, ["new/done", "old/failed"]);
}

#[tokio::test]
async fn migrate_goes_on_when_a_newer_release_applied_a_migration_this_one_lacks() {
    let env = Env::start().await;
    testkit::pg::exec(
        &env.pool,
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time)
         values (29991231000000, 'from a newer release', true, '\\x00', 0)",
    )
    .await;
    shimmer_store::migrate(&env.pool)
        .await
        .expect("an unknown applied migration is ignored");
}
