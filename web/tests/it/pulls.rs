//! Pull counts: the shim counts manifest pulls and the package page and JSON show them.

use std::time::Duration;

use testkit::skopeo;

use crate::harness::Env;
use testkit::http::Sent;

#[tokio::test]
async fn pulls_through_the_shim_are_counted_on_the_package_page_and_json() {
    let env = Env::start().await;
    env.push_plain_nop("acme/provider-nop", "v1.0.0").await;
    env.index_all().await;
    // Pushing and indexing are not pulls.
    let json = env.json("/api/v1/packages/acme/provider-nop").await;
    assert_eq!(json["pulls"], 0, "{json}");

    let out = tempfile::tempdir().unwrap();
    for n in 0..3 {
        skopeo::copy(
            &format!("docker://{}/acme/provider-nop:v1.0.0", env.shim),
            &format!("oci:{}:pull{n}", out.path().join("pulled").display()),
            &[],
        )
        .await
        .unwrap();
    }
    let web = env.web.clone();
    testkit::wait_until(
        "the shim flushed its pull counts",
        Duration::from_secs(30),
        || {
            let web = web.clone();
            async move {
                let r = crate::harness::client()
                    .get(format!("{web}/api/v1/packages/acme/provider-nop"))
                    .sent()
                    .await;
                let v: serde_json::Value = r.json().await.unwrap();
                v["pulls"].as_i64().unwrap_or(0) >= 3
            }
        },
    )
    .await;
    let json = env.json("/api/v1/packages/acme/provider-nop").await;
    assert_eq!(json["pulls"], 3, "{json}");
    let page = env.text("/packages/acme/provider-nop").await;
    assert!(
        page.contains("<dt>Pulls</dt><dd class=\"pulls\">3</dd>"),
        "{page}"
    );
    let rows = env
        .scalar("select count(*) from package_pulls where repository = 'acme/provider-nop'")
        .await;
    assert_eq!(rows, 1, "one row per repository and day");
}

#[tokio::test]
async fn concurrent_flushes_of_overlapping_counts_all_land() {
    // Several shims flush at once, each a batch over many of the same repositories in an order
    // of its own. Each batch upserts its rows in one statement; unless every statement takes
    // its row locks in one order, two of them can each wait on a row the other holds, and
    // PostgreSQL aborts one as a deadlock (the counts would come back late, or a
    // statement that waits holds up a whole shim's flushes).
    let db = testkit::pg::fresh_database().await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(16)
        .connect(&db.url)
        .await
        .unwrap();
    shimmer_store::migrate(&pool).await.unwrap();
    const REPOS: usize = 300;
    const SHIMS: usize = 8;
    const ROUNDS: usize = 15;
    let mut tasks = Vec::new();
    for shim in 0..SHIMS {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            for round in 0..ROUNDS {
                // Every shim has every repository, each in an order that differs by shim and
                // round (a stride coprime to REPOS, from a different start).
                let stride = [7, 11, 13, 17, 19, 23, 29, 31][(shim + round) % 8];
                // Each shim skips some repositories of its own, so the batches differ in size
                // as well as order.
                let batch: Vec<shimmer_store::pulls::PullCount> = (0..REPOS)
                    .map(|i| (i * stride + shim * 37) % REPOS)
                    .filter(|r| r % (shim + 3) != 1)
                    .map(|r| shimmer_store::pulls::PullCount {
                        backend: "primary".into(),
                        repository: format!("acme/r{r:03}"),
                        count: 1,
                    })
                    .collect();
                if let Err(e) = shimmer_store::pulls::add(&pool, &batch).await {
                    errors.push(e.to_string());
                }
            }
            errors
        }));
    }
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await.unwrap());
    }
    assert!(
        errors.is_empty(),
        "{} failed flushes: {errors:?}",
        errors.len()
    );
    let counts: Vec<(String, i64)> = testkit::pg::rows(
        &pool,
        "select repository, sum(count)::bigint from package_pulls group by repository",
    )
    .await;
    let shims_of = |r: usize| (0..SHIMS).filter(|s| r % (s + 3) != 1).count();
    let counted = (0..REPOS).filter(|&r| shims_of(r) > 0).count();
    assert_eq!(
        counts.len(),
        counted,
        "one row per repository any shim pulled"
    );
    for (repo, n) in counts {
        let r: usize = repo.trim_start_matches("acme/r").parse().unwrap();
        assert_eq!(n, (shims_of(r) * ROUNDS) as i64, "{repo}");
    }
}
