//! How versions are written when several workers write at once, and what an unknown
//! visibility keeps.

use shimmer_store::{
    VersionKind,
    packages::{self, ApiRecord, ObjectRecord, VersionRecord},
};

use crate::harness::Env;

fn version(repository: &str, digest: &str, visibility: Option<&str>) -> VersionRecord {
    VersionRecord {
        package_type: Some("Provider".into()),
        visibility: visibility.map(|v| match v {
            "public" => shimmer_config::Visibility::Public,
            _ => shimmer_config::Visibility::Private,
        }),
        ..VersionRecord::new("primary", repository, digest, VersionKind::Package)
    }
}

fn object(digest: &str) -> ObjectRecord {
    ObjectRecord {
        digest: digest.into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        name: None,
        class: "crd".into(),
        body: "{}".into(),
        size_bytes: 2,
    }
}

fn api(object_digest: &str, kind: &str) -> ApiRecord {
    ApiRecord::new(object_digest, "crd", "example.org", kind)
}

/// `n` objects and one API type each, the kinds named by `kinds`.
fn package(objects: &str, kinds: &str, n: usize) -> (Vec<ObjectRecord>, Vec<ApiRecord>) {
    let digests: Vec<String> = (0..n)
        .map(|i| format!("sha256:{objects}{i:060x}"))
        .collect();
    let apis = digests
        .iter()
        .enumerate()
        .map(|(i, d)| api(d, &format!("{kinds}{i:04}")))
        .collect();
    (digests.iter().map(|d| object(d)).collect(), apis)
}

#[tokio::test]
async fn packages_sharing_objects_or_kinds_in_opposite_orders_are_written_at_once_without_deadlock()
{
    let env = Env::start().await;
    for round in 0..6 {
        // More than a chunk of shared rows, listed by each package in its own order: the store
        // locks them in one order whatever the packages say. Even rounds share objects (and so
        // their kinds); odd rounds share only kinds (`api_kinds` rows), not one object.
        let (objects_a, apis_a) = package(&format!("{round:02}aa"), &format!("Kind{round}x"), 600);
        let (mut objects_b, mut apis_b) = if round % 2 == 0 {
            (objects_a.clone(), apis_a.clone())
        } else {
            package(&format!("{round:02}bb"), &format!("Kind{round}x"), 600)
        };
        objects_b.reverse();
        apis_b.reverse();
        let a = version(&format!("acme/a{round}"), "sha256:a", Some("public"));
        let b = version(&format!("acme/b{round}"), "sha256:b", Some("public"));
        let (ra, rb) = tokio::join!(
            packages::store_version(&env.pool, &a, &objects_a, &apis_a, &[]),
            packages::store_version(&env.pool, &b, &objects_b, &apis_b, &[]),
        );
        ra.unwrap_or_else(|e| panic!("round {round}, first writer: {e}"));
        rb.unwrap_or_else(|e| panic!("round {round}, second writer: {e}"));
    }
    assert_eq!(
        env.count("select count(*) from api_kinds").await,
        6 * 600,
        "every kind once"
    );
}

#[tokio::test]
async fn an_unknown_visibility_keeps_the_stored_one_and_a_new_package_is_private() {
    let env = Env::start().await;
    for (repository, digest, visibility) in [
        ("acme/x", "sha256:1", Some("public")),
        ("acme/x", "sha256:2", None),
        ("acme/y", "sha256:3", None),
    ] {
        let v = version(repository, digest, visibility);
        packages::store_version(&env.pool, &v, &[], &[], &[])
            .await
            .unwrap();
    }
    let visibility: Vec<(String, String)> = testkit::pg::rows(
        &env.pool,
        "select repository, visibility from packages order by repository",
    )
    .await;
    assert_eq!(
        visibility,
        [
            ("acme/x".to_owned(), "public".to_owned()),
            ("acme/y".to_owned(), "private".to_owned())
        ]
    );
}

#[tokio::test]
async fn visibility_follows_the_later_check_whichever_job_commits_last() {
    let env = Env::start().await;
    let checked = |digest: &str, visibility: Option<&str>, at: f64| VersionRecord {
        visibility_checked_at: Some(at),
        ..version("acme/turned", digest, visibility)
    };
    let visibility = || async {
        let (v,): (String,) = testkit::pg::row(
            &env.pool,
            "select visibility from packages where repository = 'acme/turned'",
        )
        .await;
        v
    };
    // Anonymous clients could read the repository at t=100 and no longer at t=200, but the job
    // that checked at t=100 (a slow download) commits last: the package stays private.
    let store = |v: VersionRecord| {
        let pool = env.pool.clone();
        async move {
            packages::store_version(&pool, &v, &[], &[], &[])
                .await
                .unwrap()
        }
    };
    store(checked("sha256:b", Some("private"), 200.0)).await;
    store(checked("sha256:a", Some("public"), 100.0)).await;
    assert_eq!(visibility().await, "private", "an older check came back");
    // A later check moves it; a check that told nothing keeps it, whenever it was.
    store(checked("sha256:c", Some("public"), 300.0)).await;
    assert_eq!(visibility().await, "public");
    store(checked("sha256:d", None, 400.0)).await;
    assert_eq!(visibility().await, "public");
    store(checked("sha256:e", Some("private"), 250.0)).await;
    assert_eq!(
        visibility().await,
        "public",
        "250 is older than the 300 check"
    );
    store(checked("sha256:f", Some("private"), 500.0)).await;
    assert_eq!(visibility().await, "private");
    let (at,): (f64,) = testkit::pg::row(
        &env.pool,
        "select extract(epoch from visibility_checked_at)::float8 from packages
         where repository = 'acme/turned'",
    )
    .await;
    assert_eq!(at, 500.0);
}

#[tokio::test]
async fn a_tag_moves_to_the_later_reading_whichever_job_commits_last() {
    let env = Env::start().await;
    let tagged = |digest: &str, at: f64| VersionRecord {
        tag: Some("v1".into()),
        tag_resolved_at: Some(at),
        ..version("acme/race", digest, Some("public"))
    };
    let names = || async {
        let (d,): (String,) = testkit::pg::row(
            &env.pool,
            "select v.manifest_digest from tags t join versions v on v.id = t.version_id
             join packages p on p.id = t.package_id
             where p.repository = 'acme/race' and t.tag = 'v1'",
        )
        .await;
        d
    };
    // The registry said v1 -> one at t=100 and v1 -> two at t=200, but the job that read `one`
    // commits last: `two` stays, and `one` is in the history.
    packages::store_version(&env.pool, &tagged("sha256:two", 200.0), &[], &[], &[])
        .await
        .unwrap();
    packages::store_version(&env.pool, &tagged("sha256:one", 100.0), &[], &[], &[])
        .await
        .unwrap();
    assert_eq!(names().await, "sha256:two");
    let history: i64 = testkit::pg::scalar(
        &env.pool,
        "select count(*) from tag_history h join packages p on p.id = h.package_id
         where p.repository = 'acme/race' and h.tag = 'v1'",
    )
    .await;
    assert_eq!(history, 2);
    // A later reading of the same digest keeps it and raises the bar...
    packages::store_version(&env.pool, &tagged("sha256:two", 300.0), &[], &[], &[])
        .await
        .unwrap();
    packages::store_version(&env.pool, &tagged("sha256:one", 250.0), &[], &[], &[])
        .await
        .unwrap();
    assert_eq!(names().await, "sha256:two");
    // ...and a reading later still moves the tag back, as a re-push does.
    packages::store_version(&env.pool, &tagged("sha256:one", 400.0), &[], &[], &[])
        .await
        .unwrap();
    assert_eq!(names().await, "sha256:one");
}
