//! Bounded cost (issue 23): each package of the availability probe ([`testkit::attacks`]) pushed
//! through a real `shimmer serve` (shim, indexer and marketplace in one process) with a real
//! docker-registry and PostgreSQL. Each test shows that the process stays up, that its peak
//! memory (`VmHWM` of `/proc/<pid>/status`) stays under [`PEAK_RSS_BOUND_KIB`], that the worst
//! page answers (200, within `web.request_timeout`, with what it left out said) while `/healthz`
//! keeps answering, and that a good package pushed afterwards is indexed.
//!
//! Before the budgets, on the same machine: the 1,000-version CRD's docs page grew the process
//! to 5.9 GB and killed it; the repeated docs layer crash-looped the indexer (2 GB of `meta`);
//! the nested readmes took 87-201 s a view; the 150 MiB tar path took 941 MB and stored a 157 MB
//! rejection.

use std::time::Duration;

use sqlx::Row;
use testkit::http::Sent;
use testkit::{attacks::Attack, oci::OciLayout, registry::Registry, skopeo};
use tokio::io::AsyncBufReadExt;

/// Peak resident memory `shimmer serve` may reach in any of these tests. The process at rest is
/// about 30 MiB; reading one layer's 256 MiB decompression budget is the largest legitimate use.
const PEAK_RSS_BOUND_KIB: u64 = 512 * 1024;

/// `web.request_timeout` of the process under test: the longest any page may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A `shimmer serve` process on port 0 with its registry and database.
struct Serve {
    child: tokio::process::Child,
    shim: String,
    web: String,
    _registry: Registry,
    pool: sqlx::PgPool,
    _db: testkit::pg::TestDatabase,
    _dir: tempfile::TempDir,
}

impl Serve {
    async fn start() -> Serve {
        shimmer_shim::backend::install_crypto_provider();
        let registry = Registry::quiet().await;
        let db = testkit::pg::fresh_database().await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("shimmer.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[web]\nlisten = \"127.0.0.1:0\"\n\
                 request_timeout = \"{}s\"\n[indexer]\nworkers = 1\n[database]\nurl = \"{}\"\n\
                 [[backend]]\nname = \"primary\"\nurl = \"{}\"\n\
                 [[route]]\nprefix = \"\"\nbackend = \"primary\"\n",
                REQUEST_TIMEOUT.as_secs(),
                db.url,
                registry.url()
            ),
        )
        .unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shimmer"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut shim, mut web) = (None, None);
        tokio::time::timeout(Duration::from_secs(60), async {
            while shim.is_none() || web.is_none() {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("serve prints its addresses");
                if let Some(rest) = line.strip_prefix("shimmer: OCI endpoint at http://") {
                    shim = Some(rest.trim_end_matches("/v2/").to_owned());
                }
                if let Some(rest) = line.strip_prefix("shimmer: marketplace at ") {
                    web = Some(rest.trim_end_matches('/').to_owned());
                }
            }
        })
        .await
        .expect("serve starts");
        // Keep reading stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        Serve {
            child,
            shim: shim.unwrap(),
            web: web.unwrap(),
            _registry: registry,
            pool,
            _db: db,
            _dir: dir,
        }
    }

    /// Pushes `attack` through the shim as `<name>:v1` and waits until its job is done.
    async fn push(&self, layout: &OciLayout, tag: &str, repo: &str) {
        skopeo::copy(
            &layout.skopeo_ref(tag),
            &format!("docker://{}/{repo}:v1", self.shim),
            &["--all"],
        )
        .await
        .unwrap_or_else(|e| panic!("push {repo}: {e}"));
        let pool = self.pool.clone();
        let repo = repo.to_owned();
        testkit::wait_until("the push is indexed", Duration::from_secs(180), || {
            let (pool, repo) = (pool.clone(), repo.clone());
            async move {
                let open: i64 = sqlx::query_scalar(
                    "select count(*) from index_jobs where repository = $1 and state <> 'done'",
                )
                .bind(&repo)
                .fetch_one(&pool)
                .await
                .unwrap();
                let stored: i64 = sqlx::query_scalar(
                    "select count(*) from versions v join packages p on p.id = v.package_id
                     where p.repository = $1",
                )
                .bind(&repo)
                .fetch_one(&pool)
                .await
                .unwrap();
                open == 0 && stored > 0
            }
        })
        .await;
    }

    /// The (kind, rejection, meta note, bytes of meta) of `repo`'s version tagged `v1`.
    async fn version(&self, repo: &str) -> (String, Option<String>, Option<String>, i64) {
        let row = sqlx::query(
            "select v.kind, v.rejection, v.meta->>'note' as note,
                    coalesce(octet_length(v.meta::text), 0)::bigint as meta_bytes
             from versions v join packages p on p.id = v.package_id
             join tags t on t.version_id = v.id
             where p.repository = $1 and t.tag = 'v1'",
        )
        .bind(repo)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        (
            row.get("kind"),
            row.get("rejection"),
            row.get("note"),
            row.get("meta_bytes"),
        )
    }

    /// Peak resident memory of the process, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("serve is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/<pid>/status")
    }

    /// GETs `path` from the marketplace while `/healthz` is asked alongside: the page's status
    /// and body, and whether every health check answered.
    async fn page_beside_health(&self, path: &str) -> (u16, String) {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT + Duration::from_secs(10))
            .build()
            .unwrap();
        let page = client.get(format!("{}{path}", self.web)).send();
        let health = async {
            for _ in 0..5 {
                let h = client
                    .get(format!("{}/healthz", self.web))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .expect("/healthz answers while the page is made");
                assert_eq!(h.status(), 200);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let (page, ()) = tokio::join!(page, health);
        let page = page.unwrap_or_else(|e| panic!("{path} answers within its deadline: {e}"));
        let status = page.status().as_u16();
        (status, page.text().await.unwrap())
    }

    /// The process is alive and under the bound; a good package pushed now is indexed.
    async fn still_healthy(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "serve exited");
        let peak = self.peak_rss_kib();
        assert!(
            peak < PEAK_RSS_BOUND_KIB,
            "peak RSS {peak} KiB over {PEAK_RSS_BOUND_KIB} KiB"
        );
        let (_tmp, layout) = layout();
        let image = testkit::xpkg_image::from_source(
            &testkit::xpkg_source::testdata_root().join("configuration-aws-network-v0.15.0"),
        );
        testkit::xpkg_image::write(&layout, "good", &image);
        self.push(&layout, "good", "after/good").await;
        let (kind, rejection, _, _) = self.version("after/good").await;
        assert_eq!((kind.as_str(), rejection), ("package", None));
        let home = reqwest::Client::new()
            .get(format!("{}/", self.web))
            .sent()
            .await;
        assert_eq!(home.status(), 200);
    }
}

fn layout() -> (tempfile::TempDir, OciLayout) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    (tmp, layout)
}

async fn pushed(serve: &Serve, attack: Attack) -> String {
    let (_tmp, layout) = layout();
    attack.write(&layout, "attack");
    let repo = format!("attacks/{}", attack.name());
    serve.push(&layout, "attack", &repo).await;
    repo
}

/// The digest of the CRD object `repo`'s version stores.
async fn crd_digest(serve: &Serve, repo: &str) -> String {
    sqlx::query_scalar(
        "select a.object_digest from api_types a join versions v on v.id = a.version_id
         join packages p on p.id = v.package_id where p.repository = $1",
    )
    .bind(repo)
    .fetch_one(&serve.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_crd_with_a_thousand_versions_is_rejected_and_a_wide_one_fits_a_page() {
    let mut serve = Serve::start().await;
    let repo = pushed(&serve, Attack::WideSchema { versions: 1_000 }).await;
    let (kind, rejection, _, _) = serve.version(&repo).await;
    assert_eq!(kind, "rejected");
    let rejection = rejection.unwrap();
    assert!(
        rejection.contains("number of versions of one API type exceeded (limit 64)")
            && rejection.contains("Thing (attack.example.org) has 1000 versions"),
        "{rejection}"
    );
    let (status, page) = serve
        .page_beside_health(&format!("/packages/{repo}/versions/v1"))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("has 1000 versions"), "the reason is shown");

    // 64 versions of the shared 20,000-field schema are allowed: their page shows one budget
    // of fields, says what it left out, and links the YAML.
    let repo = pushed(&serve, Attack::WideSchema { versions: 64 }).await;
    assert_eq!(serve.version(&repo).await.0, "package");
    let digest = crd_digest(&serve, &repo).await;
    let (status, page) = serve.page_beside_health(&format!("/docs/{digest}")).await;
    assert_eq!(status, 200);
    assert_eq!(page.matches("class=\"name\"").count(), 20_000);
    // The first version's 20,000 fields fill the page's budget exactly; the rest are named.
    assert!(!page.contains("This schema is longer than the page shows"));
    assert_eq!(
        page.matches("This version's schema is not shown").count(),
        63
    );
    assert!(page.contains(&format!("/docs/{digest}.yaml")));
    assert!(page.len() < 16 * 1024 * 1024, "{} bytes", page.len());
    serve.still_healthy().await;
}

#[tokio::test]
async fn a_docs_layer_listed_eight_times_is_read_once_within_the_version_budget() {
    let mut serve = Serve::start().await;
    let repo = pushed(&serve, Attack::RepeatedDocsLayer { times: 8 }).await;
    let (kind, rejection, note, meta_bytes) = serve.version(&repo).await;
    assert_eq!((kind.as_str(), rejection), ("package", None));
    let all: Vec<(String, String, Option<String>)> = testkit::pg::rows(
        &serve.pool,
        "select manifest_digest, kind, meta::text from versions order by id",
    )
    .await;
    let note = note.unwrap_or_else(|| panic!("the version says what it left out: {all:?}"));
    assert!(
        note.contains("total size of extension files exceeded (limit 4194304)"),
        "{note}"
    );
    // Read once: one note for the one distinct layer, not eight.
    assert_eq!(
        note.matches("extension layer not read").count(),
        1,
        "{note}"
    );
    assert!(meta_bytes < 8 * 1024 * 1024, "{meta_bytes} bytes of meta");
    let (status, page) = serve.page_beside_health(&format!("/packages/{repo}")).await;
    assert_eq!(status, 200);
    assert!(page.len() < 4 * 1024 * 1024, "{} bytes", page.len());
    serve.still_healthy().await;
}

#[tokio::test]
async fn nested_readmes_render_in_bounded_time_off_the_runtime() {
    let mut serve = Serve::start().await;
    for attack in [Attack::NestedQuotes, Attack::NestedHtml] {
        let repo = pushed(&serve, attack).await;
        assert_eq!(serve.version(&repo).await.0, "package");
        let (status, page) = serve.page_beside_health(&format!("/packages/{repo}")).await;
        assert_eq!(status, 200, "{attack:?}");
        assert!(
            page.matches("<blockquote>").count() <= 32,
            "{attack:?}: nesting is capped"
        );
        assert!(page.matches("<b>").count() <= 1_000, "{attack:?}");
    }
    serve.still_healthy().await;
}

#[tokio::test]
async fn a_huge_tar_path_is_refused_before_it_is_read_and_stored_short() {
    let mut serve = Serve::start().await;
    let repo = pushed(&serve, Attack::HugeTarPath).await;
    let (kind, rejection, _, _) = serve.version(&repo).await;
    assert_eq!(kind, "rejected");
    let rejection = rejection.unwrap();
    assert!(rejection.len() < 1024, "{} bytes", rejection.len());
    assert!(
        rejection.contains("tar extended header size exceeded (limit 1048576)"),
        "{rejection}"
    );
    for path in [
        format!("/packages/{repo}/versions/v1"),
        format!("/api/v1/packages/{repo}/versions/v1"),
    ] {
        let (status, body) = serve.page_beside_health(&path).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.len() < 256 * 1024, "{path}: {} bytes", body.len());
        assert!(body.contains("tar extended header size exceeded"), "{path}");
    }
    serve.still_healthy().await;
}
