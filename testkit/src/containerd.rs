//! A private containerd daemon (Debian's 1.6), the real client that sends `?ns=<host>` to
//! mirrors configured in `hosts.toml`. Its root, state, socket and `opt` path live in a temp dir,
//! so nothing on the host is touched.

use std::{path::PathBuf, process::Stdio, time::Duration};

use tokio::process::{Child, Command};

/// A running containerd; killed on drop.
pub struct Containerd {
    dir: tempfile::TempDir,
    _child: Child,
}

impl Containerd {
    pub async fn start() -> Containerd {
        let dir = crate::daemon::temp_dir("testkit-containerd-");
        let d = dir.path().display();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "{d}/certs.d"
"#
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        std::fs::create_dir_all(dir.path().join("certs.d")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("containerd.log")).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("containerd (apt-get install containerd) runs");
        let c = Containerd { dir, _child: child };
        crate::wait_until("containerd answers", Duration::from_secs(20), || async {
            c.ctr(&["version"]).await.is_ok()
        })
        .await;
        c
    }

    /// The `hosts.toml` root (`ctr --hosts-dir`).
    pub fn hosts_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// Makes `mirror` (an `http://host:port` URL) the mirror for references to `host`, with
    /// `server` as containerd's last-resort fallback.
    pub fn mirror(&self, host: &str, mirror: &str, server: &str) {
        let dir = self.hosts_dir().join(host);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hosts.toml"),
            format!(
                "server = \"{server}\"\n\n[host.\"{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .unwrap();
    }

    /// `ctr content fetch --hosts-dir ... EXTRA REFERENCE`.
    pub async fn fetch(&self, reference: &str, extra: &[&str]) -> Result<String, String> {
        let hosts = self.hosts_dir();
        let mut args = vec!["content", "fetch", "--hosts-dir", hosts.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(reference);
        self.ctr(&args).await
    }

    /// `ctr images pull --plain-http --snapshotter native EXTRA REFERENCE`: a whole image, as a
    /// client pulls it (not a mirror's fetch).
    pub async fn pull(&self, reference: &str, extra: &[&str]) -> Result<String, String> {
        let mut args = vec!["images", "pull", "--plain-http", "--snapshotter", "native"];
        args.extend_from_slice(extra);
        args.push(reference);
        self.ctr(&args).await
    }

    /// Runs `ctr` against this daemon; `Err` carries its stderr.
    pub async fn ctr(&self, args: &[&str]) -> Result<String, String> {
        let socket = self.dir.path().join("containerd.sock");
        let out = tokio::time::timeout(
            Duration::from_secs(120),
            Command::new("ctr")
                .arg("--address")
                .arg(&socket)
                .args(args)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| format!("ctr {args:?} timed out"))?
        .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// A loopback TCP listener that only counts connections: a fallback that proves nobody used it.
pub struct ConnectionCounter {
    pub port: u16,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl ConnectionCounter {
    pub async fn start() -> ConnectionCounter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = count.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(conn);
            }
        });
        ConnectionCounter { port, count, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn connections(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for ConnectionCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}
