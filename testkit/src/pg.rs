//! Real PostgreSQL for tests: a fresh database per test on the shared server that
//! `scripts/test.sh` starts, or a private server for tests that stop and restart the database.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};
use tempfile::TempDir;
use tokio::sync::Mutex;

use crate::daemon::{self, Daemon, DaemonSpec, path_arg};

/// Admin URL of the shared test PostgreSQL, from env `TESTKIT_DATABASE_URL`
/// (e.g. `postgres://postgres@127.0.0.1:PORT/postgres`).
pub fn admin_url() -> String {
    std::env::var("TESTKIT_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "TESTKIT_DATABASE_URL is not set: run scripts/test.sh, or set TESTKIT_DATABASE_URL \
             to the admin URL of a PostgreSQL server tests may create databases on"
        )
    })
}

/// A fresh, empty database on the shared server; dropping it drops the database (best effort).
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    pub name: String,
    admin_url: String,
}

/// Creates a fresh, empty database with a unique name on the shared server.
pub async fn fresh_database() -> TestDatabase {
    let admin_url = admin_url();
    let name = unique_name();
    create_database(&admin_url, &name).await;
    TestDatabase {
        url: database_url(&admin_url, &name),
        name,
        admin_url,
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!(r#"drop database if exists "{}" with (force)"#, self.name);
        // Drop cannot await, and may run inside a runtime: use a thread with its own runtime.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&admin_url).await.ok()?;
                sqlx::raw_sql(&sql).execute(&mut conn).await.ok()?;
                conn.close().await.ok()
            })
        });
        let _ = dropper.join();
    }
}

/// A private PostgreSQL cluster (own data dir and port) for tests that stop and restart it.
///
/// `postgres` runs in the foreground as our child (as the `postgres` user when we are root), so
/// dropping this sends SIGQUIT, PostgreSQL's immediate shutdown (what `pg_ctl stop -m immediate`
/// sends), and the data dir is removed afterwards.
pub struct PgServer {
    // Declared first so it drops first: the server stops before its data dir is removed.
    process: Mutex<Option<Daemon>>,
    bin: PathBuf,
    dir: TempDir,
    port: u16,
}

impl PgServer {
    /// Runs initdb in a temp dir and starts the server on a free loopback port.
    pub async fn start() -> PgServer {
        let bin = bin_dir();
        let dir = daemon::temp_dir("testkit-pg-");
        if daemon::running_as_root() {
            chown_to_postgres(dir.path());
        }
        let data = dir.path().join("data");
        let initdb = bin.join("initdb");
        let mut cmd = daemon::command(&initdb, Some("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(dir.path())
            .kill_on_drop(true);
        let out = cmd.output().await.expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let server = PgServer {
            bin,
            dir,
            port: 0,
            process: Mutex::new(None),
        };
        server.start_on_free_port().await
    }

    async fn start_on_free_port(mut self) -> PgServer {
        for _ in 0..5 {
            self.port = crate::free_port();
            if self.launch().await {
                return self;
            }
        }
        panic!("postgres did not start; log:\n{}", self.log());
    }

    /// Starts postgres on `self.port`; false if it exited (port taken) before accepting connections.
    async fn launch(&self) -> bool {
        let mut guard = self.process.lock().await;
        assert!(guard.is_none(), "PgServer is already running");
        let args = [
            "-D".into(),
            path_arg(self.dir.path().join("data")),
            "-p".into(),
            self.port.to_string().into(),
            "-k".into(),
            path_arg(self.dir.path()),
            "-c".into(),
            "listen_addresses=127.0.0.1".into(),
            "-c".into(),
            "fsync=off".into(),
        ];
        let log = self.dir.path().join("postgres.log");
        let mut daemon = Daemon::spawn(DaemonSpec {
            program: &self.bin.join("postgres"),
            args: args.to_vec(),
            log: &log,
            cwd: self.dir.path(),
            user: Some("postgres"),
            drop_signal: "QUIT",
        });
        let url = self.admin_url();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(conn) = PgConnection::connect(&url).await {
                let _ = conn.close().await;
                *guard = Some(daemon);
                return true;
            }
            if daemon.has_exited() {
                return false;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "postgres did not accept connections within 30 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres` (trust auth).
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        let admin_url = self.admin_url();
        create_database(&admin_url, name).await;
        database_url(&admin_url, name)
    }

    /// Fast shutdown (SIGINT: disconnect clients, checkpoint, exit); waits until it is down.
    pub async fn stop(&self) {
        if let Some(mut daemon) = self.process.lock().await.take() {
            daemon.stop("INT", Duration::from_secs(30)).await;
        }
    }

    /// Stops the server if it runs, then starts it again on the same port with the same data.
    pub async fn restart(&self) {
        self.stop().await;
        assert!(
            self.launch().await,
            "postgres did not restart on port {} (taken meanwhile?); log:\n{}",
            self.port,
            self.log()
        );
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        daemon::read_log(&self.dir.path().join("postgres.log"))
    }
}

/// The bin dir of the highest PostgreSQL under /usr/lib/postgresql, or `$TESTKIT_PG_BIN`.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("TESTKIT_PG_BIN") {
        return PathBuf::from(dir);
    }
    let root = Path::new("/usr/lib/postgresql");
    let newest = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            e.path().join("bin/postgres").exists().then_some(version)
        })
        .max();
    match newest {
        Some(version) => root.join(version.to_string()).join("bin"),
        None => panic!(
            "no PostgreSQL under {}: install it (apt-get install postgresql) or set TESTKIT_PG_BIN",
            root.display()
        ),
    }
}

fn chown_to_postgres(dir: &Path) {
    let status = std::process::Command::new("chown")
        .arg("postgres:postgres")
        .arg(dir)
        .status()
        .expect("run chown");
    assert!(status.success(), "chown postgres {} failed", dir.display());
}

async fn create_database(admin_url: &str, name: &str) {
    let mut conn = PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to {admin_url}: {e}"));
    sqlx::raw_sql(&format!(r#"create database "{name}""#))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let _ = conn.close().await;
}

/// The admin URL with its database path replaced by `name` (query string kept).
fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "testkit_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `query`, which selects one boolean, on `pool` every 50 ms until it is true; panics
/// naming `what` after `timeout` (and at once, naming the query, when it fails).
pub async fn wait_for(pool: &sqlx::PgPool, what: &str, timeout: Duration, query: &str) {
    crate::wait_until(what, timeout, || async move {
        sqlx::query_scalar::<_, bool>(query)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"))
    })
    .await;
}

/// The one value `sql` selects (`select count(*) ...`); panics naming the query if it fails.
pub async fn scalar<T>(pool: &sqlx::PgPool, sql: &str) -> T
where
    (T,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    T: Send + Unpin,
{
    let query = sqlx::query_scalar(sql).fetch_one(pool);
    query.await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every value `sql` selects, one column a row.
pub async fn scalars<T>(pool: &sqlx::PgPool, sql: &str) -> Vec<T>
where
    (T,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    T: Send + Unpin,
{
    let query = sqlx::query_scalar(sql).fetch_all(pool);
    query.await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The one row `sql` selects, as a tuple.
pub async fn row<T>(pool: &sqlx::PgPool, sql: &str) -> T
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let query = sqlx::query_as(sql).fetch_one(pool);
    query.await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Every row `sql` selects, as tuples.
pub async fn rows<T>(pool: &sqlx::PgPool, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let query = sqlx::query_as(sql).fetch_all(pool);
    query.await.unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Runs `sql` (a write a test sets its scene with).
pub async fn exec(pool: &sqlx::PgPool, sql: &str) {
    let query = sqlx::query(sql).execute(pool);
    query.await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Waits (up to two minutes) until the index queue has nothing queued or running.
pub async fn wait_for_drained_queue(pool: &sqlx::PgPool) {
    let drained =
        "select not exists (select 1 from index_jobs where state in ('queued', 'running'))";
    wait_for(
        pool,
        "the queue is drained",
        Duration::from_secs(120),
        drained,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn database_url_replaces_the_path_and_keeps_the_query() {
        assert_eq!(
            database_url("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            database_url("postgres://u:p@h:1/postgres?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h:1", "x"), "postgres://h:1/x");
    }
}
