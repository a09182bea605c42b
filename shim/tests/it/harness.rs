//! Starts a shim in-process on port 0 against a fresh database and the given backends.

use std::{sync::Arc, time::Duration};

use shimmer_config::Config;
use shimmer_store::PgPool;
pub use testkit::http::{Sent, client as http};
use testkit::{oci::OciLayout, pg::TestDatabase, registry::Registry, skopeo, token::TokenServer};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// A running shim.
pub struct Shim {
    /// `127.0.0.1:PORT`, for `docker://` references.
    pub host_port: String,
    pub pool: PgPool,
    pub state: shimmer_shim::AppState,
    _db: Option<TestDatabase>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Shim {
    /// A shim whose configuration is `toml` (backends, routes, server options) plus a fresh,
    /// migrated database.
    pub async fn start(toml: &str) -> Shim {
        let db = testkit::pg::fresh_database().await;
        let url = db.url.clone();
        let mut shim = Self::start_with_database(toml, &url).await;
        shim._db = Some(db);
        shim
    }

    /// The same, against a database the caller owns (e.g. a private server it will stop).
    pub async fn start_with_database(toml: &str, database_url: &str) -> Shim {
        let text =
            format!("{toml}\n[database]\nurl = \"{database_url}\"\nacquire_timeout = \"1s\"\n");
        let config = Arc::new(Config::from_toml(&text).expect("test configuration is valid"));
        let pool = shimmer_store::connect_lazy(&config.database).unwrap();
        shimmer_store::migrate(&pool)
            .await
            .expect("migrations apply");
        let state = shimmer_shim::AppState::new(config, pool.clone()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host_port = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = oneshot::channel();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let cancel = shutdown.clone();
        tokio::spawn(async move {
            let _ = stopped.await;
            cancel.cancel();
        });
        let task = tokio::spawn(shimmer_shim::run(listener, state.clone(), shutdown));
        Shim {
            host_port,
            pool,
            state,
            _db: None,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host_port)
    }

    /// `http://127.0.0.1:PORT/v2/<path>`
    pub fn v2(&self, path: &str) -> String {
        format!("http://{}/v2/{path}", self.host_port)
    }

    /// `docker://127.0.0.1:PORT/<repo_and_tag>`
    pub fn docker(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.host_port)
    }

    /// Pushes `local` of `layout` through this shim as `repo_and_tag`, with skopeo's `extra`
    /// flags (credentials).
    pub async fn push(&self, layout: &OciLayout, local: &str, repo_and_tag: &str, extra: &[&str]) {
        skopeo::push(layout, local, &self.host_port, repo_and_tag, extra).await;
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A token-auth backend (user `bob`, password `t0ken-pass`; routed `private/`) and an htpasswd
/// backend (`alice`, `s3cret-pass`; routed `team/`) behind one shim, `server` being its
/// `[server]` lines.
pub struct AuthBackends {
    pub tokens: TokenServer,
    pub token_backend: Registry,
    pub basic_backend: Registry,
    pub shim: Shim,
}

impl AuthBackends {
    pub async fn start(server: &str) -> AuthBackends {
        let tokens = TokenServer::start("bob", "t0ken-pass").await;
        let token_backend = Registry::with_tokens(&tokens).await;
        let basic_backend = Registry::with_login("alice", "s3cret-pass").await;
        let toml = format!(
            "[server]\n{server}\n{}{}",
            backend_toml("tokens", &token_backend.url(), "private/"),
            backend_toml("basic", &basic_backend.url(), "team/")
        );
        let shim = Shim::start(&toml).await;
        AuthBackends {
            tokens,
            token_backend,
            basic_backend,
            shim,
        }
    }

    /// Whether the token service was asked, with Basic credentials, for a scope on `repo`
    /// granting `action`.
    pub fn token_asked(&self, repo: &str, action: &str) -> bool {
        self.tokens.requests().iter().any(|t| {
            t.scopes.iter().any(|s| {
                s.strip_prefix(&format!("repository:{repo}:"))
                    .is_some_and(|actions| actions.split(',').any(|a| a == action))
            }) && t
                .authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))
        })
    }
}

/// Uploads a blob to `repo` through the shim, its `pieces` sent in one streamed `PUT` with `gap`
/// before each, and checks that it arrived whole: the `PUT` is answered 201 and a `GET` through
/// the shim returns the same bytes. Returns how long the upload (`POST` and `PUT`) took.
pub async fn assert_slow_upload_arrives_whole(
    shim: &Shim,
    repo: &str,
    pieces: Vec<Vec<u8>>,
    gap: Duration,
) -> Duration {
    let c = http();
    let started = std::time::Instant::now();
    let start = c
        .post(shim.v2(&format!("{repo}/blobs/uploads/")))
        .sent()
        .await;
    assert_eq!(start.status(), reqwest::StatusCode::ACCEPTED);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let whole = pieces.concat();
    let digest = testkit::skopeo::digest_of(&whole);
    let put = c
        .put(with_query(
            &format!("{}{location}", shim.url()),
            &format!("digest={digest}"),
        ))
        .header("content-length", whole.len())
        .header("content-type", "application/octet-stream")
        .body(paced_body(pieces, gap))
        .timeout(Duration::from_secs(30))
        .sent()
        .await;
    let took = started.elapsed();
    assert_eq!(
        put.status(),
        reqwest::StatusCode::CREATED,
        "{:?}",
        put.text().await
    );

    assert_blob_is(shim, repo, &digest, &whole).await;
    took
}

/// A request body of `pieces`, each sent `gap` after the one before, with no length: streamed
/// with chunked transfer coding unless the request sets `Content-Length`.
pub fn paced_body(pieces: Vec<Vec<u8>>, gap: Duration) -> reqwest::Body {
    use futures_util::StreamExt;
    reqwest::Body::wrap_stream(
        futures_util::stream::iter(pieces).then(move |piece| async move {
            tokio::time::sleep(gap).await;
            Ok::<_, std::io::Error>(piece)
        }),
    )
}

/// A `GET` of the blob through the shim answers `200` with exactly `whole`.
pub async fn assert_blob_is(shim: &Shim, repo: &str, digest: &str, whole: &[u8]) {
    let got = http()
        .get(shim.v2(&format!("{repo}/blobs/{digest}")))
        .sent()
        .await;
    assert_eq!(got.status(), reqwest::StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap(), whole);
}

/// `[[backend]]` + `[[route]]` TOML for one backend serving `prefix`.
pub fn backend_toml(name: &str, url: &str, prefix: &str) -> String {
    format!(
        "[[backend]]\nname = \"{name}\"\nurl = \"{url}\"\n\n[[route]]\nprefix = \"{prefix}\"\nbackend = \"{name}\"\n"
    )
}

/// `[[backend]]` + `[[route]]` for a backend storing shim names under `repository_prefix`.
pub fn prefixed_backend_toml(
    name: &str,
    url: &str,
    route: &str,
    repository_prefix: &str,
) -> String {
    backend_toml(name, url, route).replacen(
        "\n\n[[route]]",
        &format!("\nrepository_prefix = \"{repository_prefix}\"\n\n[[route]]"),
        1,
    )
}

/// `url` with `extra` added to its query (an upload `Location` may already carry one).
pub fn with_query(url: &str, extra: &str) -> String {
    if url.contains('?') {
        format!("{url}&{extra}")
    } else {
        format!("{url}?{extra}")
    }
}

/// Starts a blob upload on the registry (or shim) at `base`: asserts the 202 and returns the
/// session's `Location` as an absolute URL.
pub async fn start_upload(base: &str, repo: &str) -> String {
    let r = http()
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .sent()
        .await;
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    let loc = r.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    if loc.starts_with('/') {
        format!("{base}{loc}")
    } else {
        loc
    }
}

/// `docker://` reference on a registry.
pub fn docker(host_port: &str, repo_and_tag: &str) -> String {
    format!("docker://{host_port}/{repo_and_tag}")
}

/// A temporary directory with an empty OCI layout in `layout/`.
pub fn scratch_layout() -> (tempfile::TempDir, OciLayout) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    (tmp, layout)
}

/// Copies the layout's `tag` to `repo_and_tag` on the upstream registry.
pub async fn push(layout: &OciLayout, tag: &str, up: &Registry, repo_and_tag: &str) {
    skopeo::push(layout, tag, &up.host_port(), repo_and_tag, &[]).await;
}

/// The digest of the first layer of the image manifest `d` in the layout.
pub fn first_layer(layout: &OciLayout, d: &testkit::oci::Descriptor) -> String {
    let manifest: serde_json::Value = serde_json::from_slice(&layout.read_blob(&d.digest)).unwrap();
    manifest["layers"][0]["digest"].as_str().unwrap().to_owned()
}

/// Rows in the queue.
pub async fn jobs(pool: &PgPool) -> Vec<shimmer_store::jobs::JobRow> {
    shimmer_store::jobs::list(pool).await.unwrap()
}

/// Polls until the queue holds `n` jobs (the shim writes them off the request path).
pub async fn wait_for_jobs(pool: &PgPool, n: usize) -> Vec<shimmer_store::jobs::JobRow> {
    testkit::wait_until(
        &format!("{n} jobs are queued"),
        Duration::from_secs(15),
        || async { jobs(pool).await.len() >= n },
    )
    .await;
    jobs(pool).await
}

/// The shim's `/metrics` text.
pub async fn metrics_text(shim: &Shim) -> String {
    http()
        .get(format!("{}/metrics", shim.url()))
        .sent()
        .await
        .text()
        .await
        .unwrap()
}

/// An OCI error envelope's first code.
pub async fn error_code(resp: reqwest::Response) -> String {
    let v: serde_json::Value = resp.json().await.expect("an OCI error envelope");
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Every file of a `dir:` copy with the sha256 of its contents (read in pieces: layers can be
/// large).
pub fn dir_digests(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let mut file = std::fs::File::open(e.path()).unwrap();
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            std::io::copy(&mut file, &mut hasher).unwrap();
            let digest = format!("sha256:{}", hex::encode(sha2::Digest::finalize(hasher)));
            (name, digest)
        })
        .collect()
}

/// `[[upstream]]` `name` answering for `host` at `url`.
pub fn upstream_toml(name: &str, host: &str, url: &str) -> String {
    format!("[[upstream]]\nname = \"{name}\"\nhosts = [\"{host}\"]\nurl = \"{url}\"\n")
}

/// An upstream registry demanding `mirror`:`upstream-secret`, a recorder in front of it, and a
/// shim that reaches it as `registry-a.test` through the recorder with those credentials.
pub async fn private_upstream() -> (Registry, testkit::recorder::Recorder, Shim) {
    let up = Registry::with_login("mirror", "upstream-secret").await;
    let rec = testkit::recorder::Recorder::start(&up.url()).await;
    let shim = Shim::start(&format!(
        "{}username = \"mirror\"\npassword = \"upstream-secret\"\n",
        upstream_toml("a", "registry-a.test", &rec.url())
    ))
    .await;
    (up, rec, shim)
}
