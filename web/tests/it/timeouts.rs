//! `web.request_timeout`: a request the database cannot answer in time gets a 503 (a page, or
//! the API's JSON error), not a hung connection, and the marketplace answers again once the
//! database does. The stall is real: another session holds an exclusive lock on `packages`.

use sqlx::{Connection, PgConnection};
use testkit::slow_client::PATIENCE;

use crate::harness::{bare_web, client};

#[tokio::test]
async fn a_request_the_database_stalls_gets_a_503_and_later_ones_are_answered() {
    let db = testkit::pg::fresh_database().await;
    let web = bare_web(&db, "request_timeout = \"1s\"").await;
    let home = format!("http://{web}/");
    let api = format!("http://{web}/api/v1/packages");
    assert_eq!(client().get(&home).send().await.unwrap().status(), 200);

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
    let health = client()
        .get(format!("http://{web}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    lock.rollback().await.unwrap();
    assert_eq!(client().get(&home).send().await.unwrap().status(), 200);
    assert_eq!(client().get(&api).send().await.unwrap().status(), 200);
}

/// What the README advises for web servers: `statement_timeout` in `database.url`, so a query
/// whose request was abandoned stops in PostgreSQL too. It reaches every connection of the pool.
#[tokio::test]
async fn statement_timeout_in_the_database_url_reaches_the_pool() {
    let db = testkit::pg::fresh_database().await;
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let config = shimmer_config::Config::from_toml(&format!(
        "[database]\nurl = \"{}{sep}options=-c%20statement_timeout%3D1500ms\"\n",
        db.url
    ))
    .unwrap();
    let pool = shimmer_store::connect_lazy(&config.database).unwrap();
    let shown: String = sqlx::query_scalar("show statement_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(shown, "1500ms");
    let err = sqlx::query("select pg_sleep(5)")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("statement timeout"),
        "pg_sleep(5) should be cancelled: {err}"
    );
}
