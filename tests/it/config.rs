//! Configuration errors at start, and `migrate_on_start` for the one-off commands.

use crate::helpers::{primary_config, shimmer, write_config};
use testkit::registry::{Registry, RegistryOptions};

#[test]
fn invalid_configuration_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad_limit = "[server]\nlisten = \"127.0.0.1:0\"\nmax_manifest_bytes = -1\n";
    let bad_filter = "[log]\nfilter = \"shimmer=loud\"\n";
    // A log filter that does not parse, from the file or from RUST_LOG, used to fall back to
    // `info` silently.
    /// (configuration, environment, what the message must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 4] = [
        (bad_limit, &[], "max_manifest_bytes"),
        (
            bad_limit,
            &[
                ("SHIMMER_SERVER__MAX_MANIFEST_BYTES", "10"),
                ("SHIMMER_ROUTE", r#"[{prefix="", backend="missing"}]"#),
            ],
            "route[0].backend",
        ),
        (bad_filter, &[], "`log.filter`"),
        (bad_filter, &[("RUST_LOG", "shimmer=quiet")], "RUST_LOG"),
    ];
    for (toml, env, named) in cases {
        let path = write_config(&dir, toml);
        let out = shimmer()
            .args(["migrate", "--config"])
            .arg(&path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{named}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{err}");
    }
}

#[tokio::test]
async fn one_off_commands_leave_the_schema_to_migrate_when_migrate_on_start_is_off() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let config = |migrate: bool| {
        primary_config(
            &dir,
            &db.url,
            &format!("migrate_on_start = {migrate}\n"),
            &registry.url(),
            "",
        )
    };
    let schema = || async {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let tables: i64 = testkit::pg::scalar(
            &pool,
            "select count(*) from information_schema.tables where table_schema = 'public'",
        )
        .await;
        pool.close().await;
        tables
    };
    // Off (a deployment that runs `shimmer migrate` as its own step): reconcile of the (empty)
    // backend runs and touches no schema.
    let out = shimmer()
        .args(["reconcile", "--config"])
        .arg(config(false))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(schema().await, 0, "no table was created");
    // On (the default): the same command migrates first.
    let out = shimmer()
        .args(["reconcile", "--config"])
        .arg(config(true))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(schema().await > 5);
}
