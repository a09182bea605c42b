//! PostgreSQL helpers.

use sqlx::{Connection, PgConnection};
use testkit::pg::{self, PgServer};

#[tokio::test]
async fn fresh_database_is_empty_writable_and_dropped_afterwards() {
    let db = pg::fresh_database().await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("create table t (x int); insert into t values (1)")
        .execute(&mut conn)
        .await
        .unwrap();
    let other = pg::fresh_database().await;
    assert_ne!(other.name, db.name);
    conn.close().await.unwrap();
    let name = db.name.clone();

    drop(db);

    let mut admin = PgConnection::connect(&pg::admin_url()).await.unwrap();
    let exists: bool =
        sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(!exists, "{name} was not dropped");
}

#[tokio::test]
async fn private_server_keeps_its_data_across_stop_and_restart() {
    let server = PgServer::start().await;
    let url = server.create_database("app").await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql("create table t (x int); insert into t values (42)")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    server.stop().await;
    assert!(PgConnection::connect(&url).await.is_err());
    server.restart().await;

    let mut conn = PgConnection::connect(&url).await.unwrap();
    let x: i32 = sqlx::query_scalar("select x from t")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(x, 42);
}
