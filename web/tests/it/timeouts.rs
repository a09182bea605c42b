//! `web.request_timeout`: a request the database cannot answer in time gets a 503 (a page, or
//! the API's JSON error), not a hung connection, and the marketplace answers again once the
//! database does; the query it abandoned is stopped by PostgreSQL. The stall is real: another
//! session holds an exclusive lock on `packages`.

use sqlx::{Connection, PgConnection};
use testkit::slow_client::PATIENCE;

use crate::harness::{bare_web, client};
use testkit::http::Sent;

#[tokio::test]
async fn a_request_the_database_stalls_gets_a_503_and_later_ones_are_answered() {
    let db = testkit::pg::fresh_database().await;
    let web = bare_web(&db, "request_timeout = \"1s\"").await;
    let home = format!("http://{web}/");
    let api = format!("http://{web}/api/v1/packages");
    assert_eq!(client().get(&home).sent().await.status(), 200);

    let mut locker = PgConnection::connect(&db.url).await.unwrap();
    let mut lock = locker.begin().await.unwrap();
    sqlx::query("lock table packages in access exclusive mode")
        .execute(&mut *lock)
        .await
        .unwrap();

    // Without the deadline this would wait as long as the lock is held: for ever.
    let page = tokio::time::timeout(PATIENCE, client().get(&home).send())
        .await
        .expect("no answer while the database stalls: the deadline did not fire")
        .unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
    );
    let body = page.text().await.unwrap();
    assert!(body.contains("took too long to answer"), "{body}");

    let json = tokio::time::timeout(PATIENCE, client().get(&api).send())
        .await
        .expect("no answer while the database stalls")
        .unwrap();
    assert_eq!(json.status(), 503);
    let json: serde_json::Value = json.json().await.unwrap();
    assert_eq!(json["error"]["status"], 503, "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("took too long"),
        "{json}"
    );

    // Pages that touch no locked table are not held up meanwhile.
    let health = client().get(format!("http://{web}/healthz")).sent().await;
    assert_eq!(health.status(), 200);

    // PostgreSQL stops the abandoned queries itself, a second after the deadline, though the
    // lock is still held: none of the marketplace's sessions is left waiting on it.
    let mut watcher = PgConnection::connect(&db.url).await.unwrap();
    let started = std::time::Instant::now();
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where datname = current_database() \
             and application_name = 'shimmer' and wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap();
        if waiting == 0 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "{waiting} abandoned queries still wait on the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    lock.rollback().await.unwrap();
    assert_eq!(client().get(&home).sent().await.status(), 200);
    assert_eq!(client().get(&api).sent().await.status(), 200);
}

/// The marketplace's pool has PostgreSQL cancel statements a second after the request deadline,
/// overriding a `statement_timeout` the database URL sets.
#[tokio::test]
async fn the_marketplace_pool_caps_statements_past_the_request_timeout() {
    let db = testkit::pg::fresh_database().await;
    for (web, url_options, want) in [
        ("", "", "31s"),
        ("request_timeout = \"5s\"", "", "6s"),
        ("", "?options=-c%20statement_timeout%3D0", "31s"),
    ] {
        let config = shimmer_config::Config::from_toml(&format!(
            "[web]\n{web}\n[database]\nurl = \"{}{url_options}\"\n",
            db.url
        ))
        .unwrap();
        let pool = shimmer_web::connect(&config).unwrap();
        let shown: String = testkit::pg::scalar(&pool, "show statement_timeout").await;
        assert_eq!(shown, want, "[web] {web:?}, URL options {url_options:?}");
    }
}
