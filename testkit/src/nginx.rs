//! A real nginx on a free loopback port, configured with one `server` block's directives: a
//! redirecting or rate-limited backend made of real parts.

use std::{path::Path, process::Stdio, time::Duration};

use tokio::process::{Child, Command};

/// A running nginx; killed on drop.
pub struct Nginx {
    port: u16,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx with `server_body` inside `server { listen ...; ... }`.
    pub async fn start(server_body: &str) -> Nginx {
        let dir = crate::daemon::temp_dir("testkit-nginx-");
        let port = crate::free_port();
        let p = dir.path().display();
        // As root, nginx's workers would run as an unprivileged user that cannot enter the test's
        // private temp dirs.
        let user = if running_as_root() { "user root;" } else { "" };
        let conf = format!(
            r#"
{user}
daemon off;
master_process off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        {server_body}
    }}
}}
"#
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let binary = if Path::new("/usr/sbin/nginx").exists() {
            "/usr/sbin/nginx"
        } else {
            "nginx"
        };
        let child = Command::new(binary)
            .args(["-e", &format!("{p}/error.log"), "-p"])
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nginx (apt-get install nginx) runs");
        let addr = format!("127.0.0.1:{port}");
        crate::wait_until("nginx accepts connections", Duration::from_secs(10), || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(&addr).await.is_ok() }
        })
        .await;
        Nginx {
            port,
            _child: child,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}
