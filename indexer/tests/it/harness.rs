//! A registry, a shim in front of it, a fresh database, and the indexer.

use std::{sync::Arc, time::Duration};

use shimmer_config::Config;
use shimmer_indexer::worker::Indexer;
use shimmer_store::PgPool;
use testkit::{
    background::Background,
    oci::{Descriptor, IndexSpec, OciLayout},
    pg::TestDatabase,
    registry::Registry,
    skopeo,
};
use tokio::net::TcpListener;

pub struct Env {
    pub registry: Registry,
    pub shim: String,
    pub pool: PgPool,
    pub indexer: Arc<Indexer>,
    _db: TestDatabase,
    _shim: tokio::task::JoinHandle<()>,
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with("").await
    }

    /// `extra` is TOML added to the configuration (e.g. an `[indexer]` section).
    pub async fn start_with(extra: &str) -> Env {
        let registry = Registry::quiet().await;
        let db = testkit::pg::fresh_database().await;
        let toml = format!(
            "{extra}\n[database]\nurl = \"{}\"\n[[backend]]\nname = \"primary\"\nurl = \"{}\"\n[[route]]\nprefix = \"\"\nbackend = \"primary\"\n",
            db.url,
            registry.url()
        );
        let config = Arc::new(Config::from_toml(&toml).unwrap());
        let pool = shimmer_store::connect_lazy(&config.database).unwrap();
        shimmer_store::migrate(&pool).await.unwrap();
        let state = shimmer_shim::AppState::new(config.clone(), pool.clone()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let shim = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(shimmer_shim::run(
            listener,
            state,
            tokio_util::sync::CancellationToken::new(),
        ));
        let indexer = Indexer::new(config.clone(), pool.clone()).unwrap();
        Env {
            registry,
            shim,
            pool,
            indexer,
            _db: db,
            _shim: task,
        }
    }

    /// Pushes `tag` of `layout` through the shim as `repo:tag`.
    pub async fn push(&self, layout: &OciLayout, tag: &str, repo: &str, extra: &[&str]) {
        let to = format!("{repo}:{tag}");
        skopeo::push(layout, tag, &self.shim, &to, extra).await;
    }

    /// Runs two workers until the queue has nothing queued or running, then stops them.
    pub async fn index_all(&self) {
        // The shim writes jobs off the request path: let them land first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let workers = Background::spawn(|stop| self.indexer.clone().run(2, stop));
        testkit::pg::wait_for_drained_queue(&self.pool).await;
        workers.stop().await;
    }

    /// Versions indexed as packages.
    pub async fn package_versions(&self) -> i64 {
        self.count("select count(*) from versions where kind = 'package'")
            .await
    }

    /// The (group, kind) API types stored for a version, sorted.
    pub async fn api_types(&self, version_id: i64) -> Vec<(String, String)> {
        sqlx::query_as(
            "select api_group, kind from api_types where version_id = $1 order by api_group, kind",
        )
        .bind(version_id)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Claims the next due job for the `primary` backend with `lease`, as a worker does.
    pub async fn claim(&self, lease: Duration) -> Option<shimmer_store::jobs::ClaimedJob> {
        let backends = ["primary".to_owned()];
        shimmer_store::jobs::claim(&self.pool, lease, &backends)
            .await
            .unwrap()
    }

    /// Waits (up to a minute) until `sql`, one boolean, is true.
    pub async fn wait_for(&self, what: &str, sql: &str) {
        testkit::pg::wait_for(&self.pool, what, Duration::from_secs(60), sql).await;
    }

    pub async fn count(&self, sql: &str) -> i64 {
        testkit::pg::scalar(&self.pool, sql).await
    }
}

/// A temporary directory with an empty OCI layout in `layout/`.
pub fn scratch_layout() -> (tempfile::TempDir, OciLayout) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    (tmp, layout)
}

/// Adds an index of `manifests` to the layout and tags it `tag`.
pub fn tag_index(layout: &OciLayout, tag: &str, manifests: Vec<Descriptor>) -> Descriptor {
    let index = layout.add_index(IndexSpec {
        manifests,
        ..Default::default()
    });
    layout.tag(tag, &index);
    index
}

/// Tags as `tag` an index of `package` (linux/amd64) and its `extensions` image (annotated
/// `io.crossplane.xpkg: xpkg-extensions`).
pub fn tag_with_extensions(
    layout: &OciLayout,
    tag: &str,
    package: Descriptor,
    extensions: Descriptor,
) -> Descriptor {
    tag_index(
        layout,
        tag,
        vec![
            package.with_platform("linux", "amd64"),
            extensions.with_annotation("io.crossplane.xpkg", "xpkg-extensions"),
        ],
    )
}
