//! What the tests of the binary share: running `shimmer`, writing its configuration, pushing
//! to a registry, and a `shimmer shim` process that tells its address.

use std::process::Command;

use testkit::{oci::OciLayout, registry::Registry, skopeo};

pub fn shimmer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shimmer"));
    c.env_remove("RUST_LOG");
    c
}

/// A temporary directory with an empty OCI layout in `layout/`.
pub fn scratch_layout() -> (tempfile::TempDir, OciLayout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path().join("layout"));
    (dir, layout)
}

/// Copies the layout's `tag` to `repo_and_tag` on `registry`.
pub async fn push(
    layout: &OciLayout,
    tag: &str,
    registry: &Registry,
    repo_and_tag: &str,
    extra: &[&str],
) {
    skopeo::push(layout, tag, &registry.host_port(), repo_and_tag, extra).await;
}

/// Writes `toml` to `dir/shimmer.toml` and returns its path.
pub fn write_config(dir: &tempfile::TempDir, toml: &str) -> std::path::PathBuf {
    let path = dir.path().join("shimmer.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Writes a configuration of the database at `db_url` with `extra` after its `url` (keys of
/// `[database]`, then any other sections) and [`primary_backend`] at `registry_url` for `prefix`.
pub fn primary_config(
    dir: &tempfile::TempDir,
    db_url: &str,
    extra: &str,
    registry_url: &str,
    prefix: &str,
) -> std::path::PathBuf {
    let backend = primary_backend(registry_url, prefix);
    write_config(
        dir,
        &format!("[database]\nurl = \"{db_url}\"\n{extra}{backend}"),
    )
}

/// `[[backend]]` "primary" at `url` and a `[[route]]` sending `prefix` to it.
pub fn primary_backend(url: &str, prefix: &str) -> String {
    format!(
        "[[backend]]\nname = \"primary\"\nurl = \"{url}\"\n[[route]]\nprefix = \"{prefix}\"\nbackend = \"primary\"\n"
    )
}

/// `shimmer migrate --config <config>`.
pub fn migrate(config: &std::path::Path) -> std::process::ExitStatus {
    shimmer()
        .args(["migrate", "--config"])
        .arg(config)
        .status()
        .unwrap()
}

/// `shimmer index <reference> --json --config <config>`.
pub fn index_json(reference: &str, config: &std::path::Path) -> std::process::Output {
    shimmer()
        .args(["index", reference, "--json", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

/// `shimmer <command> --config <config>` in the background, killed when dropped.
pub fn spawn(command: &str, config: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_shimmer"))
        .args([command, "--config"])
        .arg(config)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// `shimmer shim` running from a configuration that listens on port 0, with the address it
/// printed. Its stdout stays open (held here) for as long as the caller keeps this.
pub struct ShimProcess {
    pub child: tokio::process::Child,
    /// `host:port`
    pub addr: String,
    /// Held open: the process writes to it.
    _stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl ShimProcess {
    /// Writes a configuration in `dir` (`[server]` on port 0 with `extra` after it, the database
    /// at `db_url` migrated, one backend at `registry_url` for every name) and starts on it.
    pub async fn configured(
        dir: &tempfile::TempDir,
        extra: &str,
        db_url: &str,
        registry_url: &str,
        logs: bool,
    ) -> ShimProcess {
        let server = format!("[server]\nlisten = \"127.0.0.1:0\"\n{extra}");
        let config = primary_config(dir, db_url, &server, registry_url, "");
        assert!(migrate(&config).success());
        Self::start(&config, logs).await
    }

    /// Starts it and waits for the address line; with `logs`, its stderr is piped for the caller
    /// to read (`child.stderr`), else inherited.
    pub async fn start(config: &std::path::Path, logs: bool) -> ShimProcess {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shimmer"))
            .args(["shim", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(if logs {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::inherit()
            })
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = stdout.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("shimmer: OCI endpoint at http://") {
                    return rest.trim_end_matches("/v2/").to_owned();
                }
            }
            panic!("shimmer shim exited without printing its address");
        })
        .await
        .expect("shimmer shim prints its address");
        ShimProcess {
            child,
            addr,
            _stdout: stdout,
        }
    }
}

/// `GET path` over HTTP/1.0 to `addr`: the answer's head (status line first) and its body (the
/// connection closes after the answer, so the body is whatever arrived before it did).
pub async fn http10_get(addr: &str, path: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an answer head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    (head, raw[split + 4..].to_vec())
}
