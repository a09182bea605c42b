//! A registry, a shim in front of it, a fresh database, the indexer and the web server.

use std::{sync::Arc, time::Duration};

use reqwest::header::HeaderMap;
use shimmer_config::Config;
use shimmer_indexer::worker::Indexer;
use shimmer_store::PgPool;
use testkit::http::Sent;
use testkit::{
    background::Background,
    oci::OciLayout,
    pg::TestDatabase,
    registry::{Registry, RegistryOptions},
    skopeo,
    xpkg_image::{self, PackageImage},
    xpkg_source,
};
use tokio::net::TcpListener;

pub const READER_TOKEN: &str = "reader-token-7f3a";

pub struct Env {
    _registry: Registry,
    pub shim: String,
    pub web: String,
    pub pool: PgPool,
    pub indexer: Arc<Indexer>,
    _layout_dir: tempfile::TempDir,
    pub layout: OciLayout,
    _db: TestDatabase,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// provider-nop's meta with nothing but its kind and name.
pub const NOP_META: &str = "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: provider-nop\nspec: {}";

impl Env {
    /// Repositories under `private/` are private; everything else is public.
    pub async fn start() -> Env {
        Self::start_with(RegistryOptions::default(), "").await
    }

    pub async fn start_with(options: RegistryOptions, extra: &str) -> Env {
        let registry = Registry::start(RegistryOptions {
            log_level: "warn".into(),
            ..options.clone()
        })
        .await;
        let db = testkit::pg::fresh_database().await;
        let creds = match &options.htpasswd {
            Some((u, p)) => format!("username = \"{u}\"\npassword = \"{p}\"\n"),
            None => String::new(),
        };
        let toml = format!(
            "{extra}
[database]
url = \"{}\"
[web]
reader_tokens = [\"{READER_TOKEN}\"]
page_size = 5
[[backend]]
name = \"primary\"
url = \"{}\"
{creds}
[[route]]
prefix = \"\"
backend = \"primary\"
[[route]]
prefix = \"private/\"
backend = \"primary\"
visibility = \"private\"
",
            db.url,
            registry.url()
        );
        let config = Arc::new(Config::from_toml(&toml).unwrap());
        let pool = shimmer_store::connect_lazy(&config.database).unwrap();
        shimmer_store::migrate(&pool).await.unwrap();
        let state = shimmer_shim::AppState::new(config.clone(), pool.clone()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shim = listener.local_addr().unwrap().to_string();
        let shim_task = tokio::spawn(shimmer_shim::run(
            listener,
            state,
            tokio_util::sync::CancellationToken::new(),
        ));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let web = format!("http://{}", listener.local_addr().unwrap());
        let serve = shimmer_web::run(
            listener,
            &config,
            pool.clone(),
            tokio_util::sync::CancellationToken::new(),
        );
        let web_task = tokio::spawn(async move {
            let _ = serve.await;
        });
        let indexer = Indexer::new(config.clone(), pool.clone()).unwrap();
        let layout_dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(layout_dir.path().join("layout"));
        Env {
            _registry: registry,
            shim,
            web,
            pool,
            indexer,
            layout,
            _layout_dir: layout_dir,
            _db: db,
            _tasks: vec![shim_task, web_task],
        }
    }

    /// Builds the package image of `testdata/xpkg-sources/<source>` and pushes it
    /// through the shim as `repo:tag`.
    pub async fn push_source(&self, source: &str, repo: &str, tag: &str) {
        let image = xpkg_image::from_source(&xpkg_source::testdata_root().join(source));
        self.push_image(&image, repo, tag).await;
    }

    pub async fn push_image(&self, image: &PackageImage, repo: &str, tag: &str) {
        self.push_image_with(image, repo, tag, &[]).await;
    }

    /// Pushes provider-nop with its meta reduced to [`NOP_META`] as `repo:tag`.
    pub async fn push_plain_nop(&self, repo: &str, tag: &str) {
        let image = crate::pages::with_meta("provider-nop-main", NOP_META);
        self.push_image(&image, repo, tag).await;
    }

    /// Pushes provider-kubernetes v1.2.1, then v0.18.0 (not in release order), to
    /// `crossplane-contrib/provider-kubernetes`.
    pub async fn push_kubernetes(&self) {
        for (source, tag) in [
            ("provider-kubernetes-v1.2.1", "v1.2.1"),
            ("provider-kubernetes-v0.18.0", "v0.18.0"),
        ] {
            self.push_source(source, "crossplane-contrib/provider-kubernetes", tag)
                .await;
        }
    }

    /// The digest of the `Object` CRD (kubernetes.crossplane.io) of the latest version.
    pub async fn latest_object_crd(&self) -> String {
        testkit::pg::scalar(&self.pool, "select a.object_digest from api_types a join packages p on p.latest_version_id = a.version_id
             where a.kind = 'Object' and a.api_group = 'kubernetes.crossplane.io'").await
    }

    /// Pushes configuration-aws-network v0.15.0 (a configuration that depends on providers).
    pub async fn push_aws_network(&self) {
        self.push_source(
            "configuration-aws-network-v0.15.0",
            "upbound/configuration-aws-network",
            "v0.15.0",
        )
        .await;
    }

    /// Pushes with `user:password` credentials (for a backend that demands them).
    pub async fn push_source_with_creds(&self, source: &str, repo: &str, tag: &str, creds: &str) {
        let image = xpkg_image::from_source(&xpkg_source::testdata_root().join(source));
        self.push_image_with(&image, repo, tag, &["--dest-creds", creds])
            .await;
    }

    async fn push_image_with(&self, image: &PackageImage, repo: &str, tag: &str, extra: &[&str]) {
        let local = format!("{}-{tag}", repo.replace('/', "-"));
        xpkg_image::write(&self.layout, &local, image);
        self.push_layout(&local, repo, tag, extra).await;
    }

    /// Pushes what `local` names in this environment's OCI layout through the shim.
    pub async fn push_layout(&self, local: &str, repo: &str, tag: &str, extra: &[&str]) {
        let to = format!("{repo}:{tag}");
        skopeo::push(&self.layout, local, &self.shim, &to, extra).await;
    }

    /// Runs two workers until nothing is queued or running.
    pub async fn index_all(&self) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let workers = Background::spawn(|stop| self.indexer.clone().run(2, stop));
        testkit::pg::wait_for_drained_queue(&self.pool).await;
        workers.stop().await;
    }

    /// The usual catalogue: two versions of provider-kubernetes, provider-nop, a function and
    /// a configuration that depends on providers.
    pub async fn with_catalogue() -> Env {
        let env = Env::start().await;
        env.push_source(
            "provider-kubernetes-v0.18.0",
            "crossplane-contrib/provider-kubernetes",
            "v0.18.0",
        )
        .await;
        env.push_source(
            "provider-kubernetes-v1.2.1",
            "crossplane-contrib/provider-kubernetes",
            "v1.2.1",
        )
        .await;
        env.push_source(
            "provider-nop-main",
            "crossplane-contrib/provider-nop",
            "main",
        )
        .await;
        env.push_source(
            "function-patch-and-transform-v0.10.8",
            "crossplane-contrib/function-patch-and-transform",
            "v0.10.8",
        )
        .await;
        env.push_aws_network().await;
        env.index_all().await;
        env
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_with(path, &[]).await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        client()
            .get(format!("{}{path}", self.web))
            .headers(h)
            .sent()
            .await
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        self.json_with(path, &[]).await
    }

    /// `path`'s JSON, asked with `headers`; asserts the 200.
    pub async fn json_with(&self, path: &str, headers: &[(&str, &str)]) -> serde_json::Value {
        let r = self.get_with(path, headers).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    pub async fn text(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.unwrap()
    }

    pub fn db_url(&self) -> String {
        self._db.url.clone()
    }

    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// A marketplace alone (no shim, no registry) on a migrated `db`, with `web` as its `[web]`
/// settings and its own pool as `shimmer web` has; returns its `host:port`.
pub async fn bare_web(db: &TestDatabase, web: &str) -> String {
    let config = Config::from_toml(&format!(
        "[web]\n{web}\n[database]\nurl = \"{}\"\n\
         [[backend]]\nname = \"b\"\nurl = \"http://127.0.0.1:1\"\n\
         [[route]]\nprefix = \"\"\nbackend = \"b\"\n",
        db.url
    ))
    .unwrap();
    let migrator = shimmer_store::connect_lazy(&config.database).unwrap();
    shimmer_store::migrate(&migrator).await.unwrap();
    let pool = shimmer_web::connect(&config).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host_port = listener.local_addr().unwrap().to_string();
    tokio::spawn(shimmer_web::run(
        listener,
        &config,
        pool,
        tokio_util::sync::CancellationToken::new(),
    ));
    host_port
}

/// A client that neither follows redirects nor decompresses (tests look at the wire).
pub fn client() -> reqwest::Client {
    // The process-wide rustls provider; a test that starts a shim has it installed already.
    shimmer_shim::backend::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}
