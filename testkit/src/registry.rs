//! A real `docker-registry` (CNCF distribution 2.8) on a free loopback port.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::daemon::{self, Daemon, DaemonSpec, path_arg};

const BINARY: &str = "/usr/bin/docker-registry";

/// How to configure a [`Registry`]; `Default` is a plain registry logging every request.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// `http.relativeurls`: `Location` headers without scheme and host.
    pub relative_urls: bool,
    /// Demand HTTP Basic credentials (user, password), checked against a bcrypt htpasswd file.
    pub htpasswd: Option<(String, String)>,
    /// Run as a pull-through cache of this upstream (`proxy.remoteurl`).
    pub proxy_remote_url: Option<String>,
    /// `log.level`; "info" logs each request.
    pub log_level: String,
    /// Serve HTTPS with this certificate and key (PEM files); with `client_ca`, demand client
    /// certificates signed by it (mutual TLS).
    pub tls: Option<RegistryTls>,
    /// Demand registry Bearer tokens from this token service (`auth.token`).
    pub token_auth: Option<TokenAuth>,
    /// `http.prefix`: serve the API under this path (`/mirror/` serves `/mirror/v2/`), as a
    /// registry behind a path-routing load balancer does. `None`: at the root.
    pub prefix: Option<String>,
}

/// `auth.token` of a registry: who issues tokens and the certificate that signs them.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub root_cert_bundle: PathBuf,
}

/// TLS files for [`RegistryOptions::tls`].
#[derive(Debug, Clone)]
pub struct RegistryTls {
    pub certificate: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            relative_urls: false,
            htpasswd: None,
            proxy_remote_url: None,
            log_level: "info".to_owned(),
            tls: None,
            token_auth: None,
            prefix: None,
        }
    }
}

/// A running docker-registry with its own storage, the backend or upstream tests push to.
///
/// The process dies when this drops, and also when the thread that started it exits, so keep it
/// in the test that uses it rather than in a static shared across tests.
pub struct Registry {
    // Declared first so it drops first: the process stops before its dir is removed.
    process: Option<Daemon>,
    dir: TempDir,
    port: u16,
    tls: bool,
    /// Where the API lives: `/`, or `http.prefix` (`/mirror/`).
    prefix: String,
}

impl Registry {
    /// A registry demanding Basic credentials `user`:`password` (htpasswd).
    pub async fn with_login(user: &str, password: &str) -> Registry {
        let htpasswd = Some((user.to_owned(), password.to_owned()));
        Self::start(RegistryOptions {
            htpasswd,
            ..Default::default()
        })
        .await
    }

    /// A registry demanding Bearer tokens from `tokens`.
    pub async fn with_tokens(tokens: &crate::token::TokenServer) -> Registry {
        let token_auth = Some(tokens.registry_auth());
        Self::start(RegistryOptions {
            token_auth,
            ..Default::default()
        })
        .await
    }

    /// A registry that logs warnings only (tests that send it many requests).
    pub async fn quiet() -> Registry {
        let log_level = "warn".to_owned();
        Self::start(RegistryOptions {
            log_level,
            ..Default::default()
        })
        .await
    }

    /// Starts the registry and waits until `GET /v2/` answers (200, or 401 with htpasswd).
    pub async fn start(opts: RegistryOptions) -> Registry {
        let dir = daemon::temp_dir("testkit-registry-");
        std::fs::create_dir_all(dir.path().join("data")).expect("create registry data dir");
        if let Some((user, password)) = &opts.htpasswd {
            write_htpasswd(&dir.path().join("htpasswd"), user, password).await;
        }
        let mut registry = Registry {
            process: None,
            dir,
            port: 0,
            tls: opts.tls.is_some(),
            prefix: api_prefix(&opts),
        };
        for _ in 0..5 {
            registry.port = crate::free_port();
            let config = config_yaml(&opts, registry.dir.path(), registry.port);
            std::fs::write(registry.config_path(), config).expect("write registry config");
            if registry.launch().await {
                return registry;
            }
        }
        panic!("docker-registry did not start; log:\n{}", registry.log());
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host_port())
    }

    /// Where the API lives: [`Registry::url`] plus `http.prefix` with its slashes
    /// (`http://127.0.0.1:PORT/mirror/`), or plus `/` at the root. `…v2/` is the API root.
    pub fn api_base(&self) -> String {
        format!("{}{}", self.url(), self.prefix)
    }

    /// `127.0.0.1:PORT`, as used in `docker://127.0.0.1:PORT/repo:tag`.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its whole log (stdout and stderr, across restarts) so far.
    pub fn log(&self) -> String {
        daemon::read_log(&self.log_path())
    }

    /// The storage root (`storage.filesystem.rootdirectory`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Kills the process (its storage stays); requests then fail with "connection refused".
    pub async fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop("KILL", Duration::from_secs(5)).await;
        }
    }

    /// Starts it again on the same port with the same data.
    pub async fn start_again(&mut self) {
        self.stop().await;
        assert!(
            self.launch().await,
            "docker-registry did not restart on {} (port taken meanwhile?); log:\n{}",
            self.host_port(),
            self.log()
        );
    }

    /// Spawns the registry; false if it exited before answering (port taken).
    async fn launch(&mut self) -> bool {
        let mut process = Daemon::spawn(DaemonSpec {
            program: Path::new(BINARY),
            args: vec!["serve".into(), path_arg(self.config_path())],
            log: &self.log_path(),
            cwd: self.dir.path(),
            user: None,
            drop_signal: "KILL",
        });
        let client = crate::recorder::http_client();
        let uri: http::Uri = format!("{}v2/", self.api_base())
            .parse()
            .expect("registry uri");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            // An HTTPS registry is up once it accepts connections (the plain client cannot ask).
            let up = if self.tls {
                tokio::net::TcpStream::connect(self.host_port())
                    .await
                    .is_ok()
            } else {
                client
                    .get(uri.clone())
                    .await
                    .is_ok_and(|r| matches!(r.status().as_u16(), 200 | 401))
            };
            if up {
                self.process = Some(process);
                return true;
            }
            if process.has_exited() {
                return false;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "docker-registry did not answer GET /v2/ within 30 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }
}

/// `http.prefix` with a slash at each end (what docker-registry demands), or `/`.
fn api_prefix(opts: &RegistryOptions) -> String {
    match opts.prefix.as_deref().map(|p| p.trim_matches('/')) {
        None | Some("") => "/".to_owned(),
        Some(p) => format!("/{p}/"),
    }
}

fn config_yaml(opts: &RegistryOptions, dir: &Path, port: u16) -> String {
    // JSON strings are valid YAML scalars, so `json` quotes paths and URLs safely.
    let json = |s: &str| serde_json::Value::from(s).to_string();
    let mut yaml = format!(
        "version: 0.1\n\
         log: {{level: {level}, formatter: text}}\n\
         storage:\n  filesystem: {{rootdirectory: {data}}}\n  delete: {{enabled: true}}\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: testkit-secret\n  relativeurls: {relative}\n",
        level = json(&opts.log_level),
        data = json(&dir.join("data").to_string_lossy()),
        relative = opts.relative_urls,
    );
    if opts.prefix.is_some() {
        yaml += &format!("  prefix: {}\n", json(&api_prefix(opts)));
    }
    if opts.htpasswd.is_some() {
        yaml += &format!(
            "auth:\n  htpasswd: {{realm: testkit, path: {}}}\n",
            json(&dir.join("htpasswd").to_string_lossy())
        );
    }
    if let Some(tls) = &opts.tls {
        yaml += &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            json(&tls.certificate.to_string_lossy()),
            json(&tls.key.to_string_lossy())
        );
        if let Some(ca) = &tls.client_ca {
            yaml += &format!("    clientcas: [{}]\n", json(&ca.to_string_lossy()));
        }
    }
    if let Some(remote) = &opts.proxy_remote_url {
        yaml += &format!("proxy: {{remoteurl: {}}}\n", json(remote));
    }
    if let Some(t) = &opts.token_auth {
        yaml += &format!(
            "auth:\n  token: {{realm: {}, service: {}, issuer: {}, rootcertbundle: {}}}\n",
            json(&t.realm),
            json(&t.service),
            json(&t.issuer),
            json(&t.root_cert_bundle.to_string_lossy())
        );
    }
    yaml
}

async fn write_htpasswd(path: &Path, user: &str, password: &str) {
    // bcrypt is the only hash docker-registry accepts; cost 4 (the minimum) keeps each
    // authenticated request fast. (Debian: apt-get install apache2-utils.)
    let dir = path.parent().expect("htpasswd file in a directory");
    let args = ["-Bbn", "-C", "4", user, password];
    let line = crate::daemon::tool_output("htpasswd", &args, dir).await;
    std::fs::write(path, line).expect("write htpasswd file");
}

/// Writes into `dir` a CA (`ca.pem`, `ca.key`), a server certificate for 127.0.0.1
/// (`server.pem`, `server.key`) and a client certificate (`client.pem`, `client.key`), both
/// signed by the CA: the files of [`RegistryTls`] with `client_ca`, and of a backend's
/// `ca_file`, `client_cert` and `client_key`.
pub async fn tls_certificates(dir: &Path) {
    use crate::token::openssl;
    let days = "-days 2";
    let ca = "-subj /CN=test-ca -keyout ca.key -out ca.pem";
    openssl(
        dir,
        &format!("req -x509 -newkey rsa:2048 -nodes {days} {ca}"),
    )
    .await;
    let signed = [
        (
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "shimmer", "extendedKeyUsage=clientAuth\n"),
    ];
    for (name, cn, extensions) in signed {
        std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
        let key = format!("-nodes -subj /CN={cn} -keyout {name}.key -out {name}.csr");
        openssl(dir, &format!("req -newkey rsa:2048 {key}")).await;
        let ca = "-CA ca.pem -CAkey ca.key -CAcreateserial";
        let sign = format!("-in {name}.csr {ca} {days} -extfile {name}.ext -out {name}.pem");
        openssl(dir, &format!("x509 -req {sign}")).await;
    }
}

impl Registry {
    /// A registry serving HTTPS with certificates [`tls_certificates`] makes in `dir`, and
    /// demanding a client certificate signed by the same CA (mutual TLS).
    pub async fn start_mutual_tls(dir: &Path) -> Registry {
        tls_certificates(dir).await;
        Registry::start(RegistryOptions {
            tls: Some(RegistryTls {
                certificate: dir.join("server.pem"),
                key: dir.join("server.key"),
                client_ca: Some(dir.join("ca.pem")),
            }),
            log_level: "warn".into(),
            ..Default::default()
        })
        .await
    }
}
