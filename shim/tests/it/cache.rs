//! The pull-through cache in front of upstreams chosen by `ns`.

use std::time::Duration;

use reqwest::{StatusCode, header};
use testkit::{
    containerd::{ConnectionCounter, Containerd},
    oci::{LayerSpec, OciLayout},
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
    skopeo,
};

use crate::harness::{Shim, first_layer, http, metrics_text, push, scratch_layout};
use testkit::http::Sent;

fn config(upstream_url: &str, cache_dir: &std::path::Path, extra: &str) -> String {
    format!(
        "[cache]\npath = \"{}\"\n{extra}\n[[upstream]]\nname = \"a\"\nhosts = [\"registry-a.test\"]\nurl = \"{upstream_url}\"\n",
        cache_dir.display()
    )
}

/// A shim with a cache in `tmp/cache` in front of the upstream at `upstream_url`.
async fn start_cached(upstream_url: &str, tmp: &tempfile::TempDir, extra: &str) -> Shim {
    Shim::start(&config(upstream_url, &tmp.path().join("cache"), extra)).await
}

/// A docker-registry upstream with a recorder in front of it that logs every request.
async fn recorded_registry() -> (Registry, Recorder) {
    let up = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start(&up.url()).await;
    (up, rec)
}

/// 200,000 incompressible bytes (xorshift from `seed`).
fn noise(seed: u32) -> Vec<u8> {
    testkit::oci::incompressible(seed, 200_000)
}

/// How many times the shim's cache served a stale tag.
fn stale_served(shim: &Shim) -> u64 {
    shim.state
        .metrics
        .cache_stale_served
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// `GET /v2/<repo>/blobs/<digest>` through the shim, for the `registry-a.test` upstream.
async fn get_blob(shim: &Shim, repo: &str, digest: &str) -> reqwest::Response {
    http()
        .get(shim.v2(&format!("{repo}/blobs/{digest}?ns=registry-a.test")))
        .sent()
        .await
}

/// Requests with `method` the recorder saw whose path contains `needle`.
fn count_requests(rec: &Recorder, method: &str, needle: &str) -> usize {
    rec.requests()
        .into_iter()
        .filter(|r| r.method == method && r.path_and_query.contains(needle))
        .count()
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_cached_pull_survives_the_upstream_stopping_and_offline_mode_never_calls_it() {
    let (mut up, rec) = recorded_registry().await;
    let (tmp, layout) = scratch_layout();
    layout.file_image("v1", b"cached content");
    push(&layout, "v1", &up, "team/app:v1").await;
    let cache_dir = tmp.path().join("cache");
    let shim = Shim::start(&config(&rec.url(), &cache_dir, "")).await;
    let fallback = ConnectionCounter::start().await;

    let first = Containerd::start().await;
    first.mirror("registry-a.test", &shim.url(), &fallback.url());
    first
        .fetch("registry-a.test/team/app:v1", &[])
        .await
        .unwrap();
    let upstream_requests = rec.requests().len();
    assert!(upstream_requests >= 3);

    up.stop().await;
    let second = Containerd::start().await;
    second.mirror("registry-a.test", &shim.url(), &fallback.url());
    second
        .fetch("registry-a.test/team/app:v1", &[])
        .await
        .expect("served from the cache with the upstream stopped");
    assert_eq!(fallback.connections(), 0);

    // Offline: a new shim on the same cache never contacts the upstream.
    let offline = Shim::start_with_database(
        &config(&rec.url(), &cache_dir, "offline = true"),
        shim.state.config.database.url.expose(),
    )
    .await;
    up.start_again().await;
    let before = rec.requests().len();
    let third = Containerd::start().await;
    third.mirror("registry-a.test", &offline.url(), &fallback.url());
    third
        .fetch("registry-a.test/team/app:v1", &[])
        .await
        .unwrap();
    assert_eq!(
        rec.requests().len(),
        before,
        "offline mode reached the upstream"
    );
    let missing = http()
        .get(format!(
            "{}/v2/team/other/manifests/v9?ns=registry-a.test",
            offline.url()
        ))
        .sent()
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(rec.requests().len(), before);
}

#[tokio::test]
async fn ten_concurrent_misses_of_a_256_mib_blob_cause_one_upstream_get() {
    let up = Registry::quiet().await;
    let rec = Recorder::start(&up.url()).await;
    let (tmp, layout) = scratch_layout();
    let d = layout.tagged_image("big", vec![LayerSpec::random_gzip(256 * 1024 * 1024, 3)]);
    let manifest: serde_json::Value = serde_json::from_slice(&layout.read_blob(&d.digest)).unwrap();
    let blob = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    push(&layout, "big", &up, "team/big:v1").await;
    let shim = start_cached(&rec.url(), &tmp, "").await;

    let url = shim.v2(&format!("team/big/blobs/{blob}?ns=registry-a.test"));
    let pulls = (0..10).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            let mut resp = http().get(&url).sent().await;
            assert_eq!(resp.status(), StatusCode::OK);
            let mut n = 0u64;
            while let Some(chunk) = resp.chunk().await.unwrap() {
                n += chunk.len() as u64;
            }
            n
        })
    });
    for p in pulls {
        assert_eq!(p.await.unwrap(), size);
    }
    let gets = rec
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path_and_query.contains(&blob))
        .count();
    assert_eq!(gets, 1, "one upstream GET for ten concurrent misses");
    // The cached copy is whole and right, and Range is answered from it.
    let part = http()
        .get(&url)
        .header(header::RANGE, "bytes=100-199")
        .sent()
        .await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        format!("bytes 100-199/{size}").as_str()
    );
    let expected = &layout.read_blob(&blob)[100..200];
    assert_eq!(part.bytes().await.unwrap().as_ref(), expected);
}

#[tokio::test]
async fn a_corrupt_upstream_blob_fails_the_transfer_and_is_not_cached() {
    let (up, rec) = recorded_registry().await;
    let (tmp, layout) = scratch_layout();
    // 8 MiB that gzip cannot shrink, so the download usually still runs when the answer starts.
    let data = testkit::oci::incompressible(0x2545_f491, 8 << 20);
    let d = layout.file_image("v1", &data);
    let blob = first_layer(&layout, &d);
    push(&layout, "v1", &up, "team/c:v1").await;
    // Corrupt the registry's stored copy in place: a real server now serves wrong bytes.
    let hex = blob.trim_start_matches("sha256:");
    let stored = files_under(&up.data_dir())
        .into_iter()
        .find(|p| p.ends_with(format!("{}/{hex}/data", &hex[..2])))
        .expect("blob file in the registry's storage");
    let mut bytes = std::fs::read(&stored).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&stored, bytes).unwrap();

    let cache_dir = tmp.path().join("cache");
    let shim = Shim::start(&config(&rec.url(), &cache_dir, "")).await;
    let url = shim.v2(&format!("team/c/blobs/{blob}?ns=registry-a.test"));
    // Either the transfer breaks before its last byte (the download was still running when the
    // answer started), or, when the shim saw the download fail before answering, a 502 in the
    // OCI envelope: never a complete 200.
    let result = async {
        let resp = http().get(&url).send().await?;
        let status = resp.status();
        resp.bytes().await.map(|body| (status, body))
    }
    .await;
    if let Ok((status, body)) = result {
        assert_eq!(
            status,
            StatusCode::BAD_GATEWAY,
            "the client's transfer must fail"
        );
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("\"UNAVAILABLE\"") && body.contains("verified copy"),
            "{body}"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let cached: Vec<_> = files_under(&cache_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(hex))
        .collect();
    assert!(cached.is_empty(), "nothing of it was kept: {cached:?}");
    // A second try goes upstream again (nothing was cached).
    let _ = async { http().get(&url).send().await?.bytes().await }.await;
    let gets = rec
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query.contains(hex))
        .count();
    assert_eq!(gets, 2);
}

#[tokio::test]
async fn a_moved_tag_is_seen_after_the_ttl_not_before() {
    let up = Registry::start(RegistryOptions::default()).await;
    let (tmp, layout) = scratch_layout();
    let one = layout.file_image("one", b"first");
    let two = layout.file_image("two", b"second");
    push(&layout, "one", &up, "team/t:latest").await;
    let shim = start_cached(&up.url(), &tmp, "tag_ttl = \"2s\"").await;
    let head = || async {
        let r = http()
            .head(shim.v2("team/t/manifests/latest?ns=registry-a.test"))
            .header(header::ACCEPT, "application/vnd.oci.image.manifest.v1+json")
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().contains_key(header::CONTENT_LENGTH));
        r.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(head().await, one.digest);
    push(&layout, "two", &up, "team/t:latest").await;
    assert_eq!(
        head().await,
        one.digest,
        "within the TTL the cached tag is served"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(head().await, two.digest, "after the TTL the move is seen");
}

#[tokio::test]
async fn eviction_keeps_the_size_limit_by_lru_and_never_orphans_a_kept_manifest() {
    let up = Registry::start(RegistryOptions::default()).await;
    let (tmp, layout) = scratch_layout();
    for (tag, seed) in [("old", 1), ("new", 2), ("stale", 3)] {
        layout.file_image(tag, &noise(seed));
        push(&layout, tag, &up, &format!("team/{tag}:v1")).await;
    }
    let shim = start_cached(&up.url(), &tmp, "").await;
    let cache = shim.state.cache.clone().unwrap();
    for tag in ["old", "new", "stale"] {
        let r = shimmer_shim::preload::ImageRef::parse(&format!("registry-a.test/team/{tag}:v1"))
            .unwrap();
        shimmer_shim::preload::preload(&shim.state, &r, &[], 2)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // entries are recorded off the request path
    let sizes = |repo: &'static str| {
        let pool = shim.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select coalesce(sum(size_bytes), 0)::bigint from cache_entries where repository = $1")
                .bind(repo)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let (old, new) = (sizes("team/old").await, sizes("team/new").await);
    assert!(old > 200_000 && new > 200_000);
    // "stale" was last used two days ago, "old" an hour ago, "new" just now.
    sqlx::query("update cache_entries set last_access = now() - interval '2 days' where repository = 'team/stale'")
        .execute(&shim.pool)
        .await
        .unwrap();
    sqlx::query("update cache_entries set last_access = now() - interval '1 hour' where repository = 'team/old'")
        .execute(&shim.pool)
        .await
        .unwrap();

    let evicted = cache
        .evict_once((new + old / 2) as u64, Some(Duration::from_secs(86400)))
        .await
        .unwrap();
    assert!(evicted.entries >= 4, "{evicted:?}");
    assert_eq!(sizes("team/stale").await, 0, "past max_age");
    assert_eq!(
        sizes("team/old").await,
        0,
        "least recently used, over the size limit"
    );
    assert_eq!(sizes("team/new").await, new, "kept whole");
    // What is kept is still served, from the cache, with the upstream gone.
    drop(up);
    let r = http()
        .get(shim.v2("team/new/manifests/v1?ns=registry-a.test"))
        .header(header::ACCEPT, "application/vnd.oci.image.manifest.v1+json")
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let m: serde_json::Value = r.json().await.unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let b = get_blob(&shim, "team/new", layer).await;
    assert_eq!(b.status(), StatusCode::OK);
    assert_eq!(skopeo::digest_of(&b.bytes().await.unwrap()), layer);
}

/// The pull checks of the OCI conformance suite that matter for a cache, against the cache in
/// front of a docker-registry: manifests and blobs by tag and digest with GET and HEAD, Range,
/// and the 404 codes. (The suite itself is Go and not packaged here; these follow its pull
/// workflow.) Each check runs twice: a miss, then a hit.
#[tokio::test]
async fn oci_pull_conformance_through_the_cache() {
    let up = Registry::start(RegistryOptions::default()).await;
    let (tmp, layout) = scratch_layout();
    let body: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let d = layout.file_image("v1", &body);
    push(&layout, "v1", &up, "conformance/repo:v1").await;
    let manifest = layout.read_blob(&d.digest);
    let layer = first_layer(&layout, &d);
    let layer_bytes = layout.read_blob(&layer);
    let shim = start_cached(&up.url(), &tmp, "").await;
    let base = shim.v2("conformance/repo");
    let q = "?ns=registry-a.test";
    let accept = "application/vnd.oci.image.manifest.v1+json";
    let c = http();
    for round in ["miss", "hit"] {
        for reference in ["v1", d.digest.as_str()] {
            let url = format!("{base}/manifests/{reference}{q}");
            let head = c.head(&url).header(header::ACCEPT, accept).sent().await;
            assert_eq!(head.status(), StatusCode::OK, "{round} HEAD {reference}");
            assert_eq!(head.headers()["docker-content-digest"], d.digest.as_str());
            assert_eq!(
                head.headers()["oci-namespace"],
                "registry-a.test",
                "{round}"
            );
            assert_eq!(
                head.headers()[header::CONTENT_LENGTH],
                manifest.len().to_string().as_str()
            );
            let get = c.get(&url).header(header::ACCEPT, accept).sent().await;
            assert_eq!(get.status(), StatusCode::OK, "{round} GET {reference}");
            assert_eq!(get.headers()[header::CONTENT_TYPE], accept);
            assert_eq!(get.headers()["oci-namespace"], "registry-a.test", "{round}");
            assert_eq!(
                get.bytes().await.unwrap().as_ref(),
                manifest.as_slice(),
                "{round}: bytes as pushed"
            );
        }
        let url = format!("{base}/blobs/{layer}{q}");
        let get = c.get(&url).sent().await;
        assert_eq!(get.status(), StatusCode::OK, "{round} GET blob");
        assert_eq!(get.headers()["docker-content-digest"], layer.as_str());
        assert_eq!(get.headers()["oci-namespace"], "registry-a.test", "{round}");
        assert_eq!(get.bytes().await.unwrap().as_ref(), layer_bytes.as_slice());
        let head = c.head(&url).sent().await;
        assert_eq!(head.status(), StatusCode::OK, "{round} HEAD blob");
        assert_eq!(
            head.headers()["oci-namespace"],
            "registry-a.test",
            "{round}"
        );
        assert_eq!(
            head.headers()[header::CONTENT_LENGTH],
            layer_bytes.len().to_string().as_str()
        );
        let part = c
            .get(&url)
            .header(header::RANGE, "bytes=10-29")
            .sent()
            .await;
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT, "{round} Range");
        assert_eq!(
            part.headers()["oci-namespace"],
            "registry-a.test",
            "{round}"
        );
        assert_eq!(part.bytes().await.unwrap().as_ref(), &layer_bytes[10..30]);
    }
    let missing = format!("sha256:{}", "0".repeat(64));
    let r = c
        .get(format!("{base}/manifests/nope{q}"))
        .header(header::ACCEPT, accept)
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["oci-namespace"], "registry-a.test");
    assert_eq!(crate::harness::error_code(r).await, "MANIFEST_UNKNOWN");
    let r = c.get(format!("{base}/manifests/{missing}{q}")).sent().await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["oci-namespace"], "registry-a.test");
    assert_eq!(crate::harness::error_code(r).await, "MANIFEST_UNKNOWN");
    let r = c.get(format!("{base}/blobs/{missing}{q}")).sent().await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["oci-namespace"], "registry-a.test");
    assert_eq!(crate::harness::error_code(r).await, "BLOB_UNKNOWN");
    let r = c.head(format!("{base}/blobs/{missing}{q}")).sent().await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_backend_with_the_cache_on_serves_blobs_it_authorised_from_the_cache() {
    let reg = Registry::with_login("alice", "alice-pass").await;
    let rec = Recorder::start(&reg.url()).await;
    let tmp = tempfile::tempdir().unwrap();
    let cache_dir = tmp.path().join("cache");
    let shim = Shim::start(&format!(
        "[cache]\npath = \"{}\"\n[[backend]]\nname = \"primary\"\nurl = \"{}\"\ncache = true\n\
         username = \"alice\"\npassword = \"alice-pass\"\n[[route]]\nprefix = \"\"\nbackend = \"primary\"\n",
        cache_dir.display(),
        rec.url()
    ))
    .await;
    let layout = OciLayout::create(tmp.path().join("layout"));
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let d = layout.file_image("v1", &data);
    shim.push(
        &layout,
        "v1",
        "team/p:v1",
        &["--dest-creds", "alice:alice-pass"],
    )
    .await;
    let blob = first_layer(&layout, &d);
    let url = shim.v2(&format!("team/p/blobs/{blob}"));
    let gets = || count_requests(&rec, "GET", &blob);
    let heads = || count_requests(&rec, "HEAD", &blob);
    assert_eq!(gets(), 0);
    let pushed_heads = heads();
    for round in 1..=3 {
        let r = http()
            .get(&url)
            .basic_auth("alice", Some("alice-pass"))
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK, "round {round}");
        assert_eq!(
            skopeo::digest_of(&r.bytes().await.unwrap()),
            blob,
            "round {round}"
        );
        assert_eq!(
            gets(),
            1,
            "one fill from the backend, then the cache (round {round})"
        );
        assert_eq!(
            heads(),
            pushed_heads + round,
            "the backend authorised every request"
        );
    }
    assert!(
        files_under(&cache_dir)
            .iter()
            .any(|p| p.ends_with(blob.trim_start_matches("sha256:"))),
        "the blob is in the cache"
    );
    // Without credentials, or with wrong ones, the backend's own answer: nothing from the cache.
    for auth in [None, Some(("alice", "wrong"))] {
        let mut req = http().get(&url);
        if let Some((u, p)) = auth {
            req = req.basic_auth(u, Some(p));
        }
        let r = req.sent().await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        assert!(
            !r.bytes()
                .await
                .unwrap()
                .windows(16)
                .any(|w| w == &data[..16])
        );
    }
    // Both refused requests were passed through to the backend, which answered them itself.
    assert_eq!(gets(), 3);
}

/// A loopback listener that accepts connections and never answers: a hung upstream, a fault no
/// real registry can be made to show on demand (hence hand-written).
async fn hung_upstream() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    (url, task)
}

async fn manifest_digest(shim_url: &str, repo: &str, tag: &str) -> (StatusCode, String) {
    let r = http()
        .get(format!(
            "{shim_url}/v2/{repo}/manifests/{tag}?ns=registry-a.test"
        ))
        .header(header::ACCEPT, "application/vnd.oci.image.manifest.v1+json")
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .expect("an answer, not a wait for the upstream's read timeout");
    let status = r.status();
    if status == StatusCode::OK {
        assert_eq!(r.headers()["oci-namespace"], "registry-a.test");
    }
    let bytes = r.bytes().await.unwrap();
    (status, skopeo::digest_of(&bytes))
}

#[tokio::test]
async fn a_cached_tag_is_served_when_the_upstream_fails_is_down_or_hangs() {
    let (mut up, rec) = recorded_registry().await;
    let (tmp, layout) = scratch_layout();
    let d = layout.file_image("v1", b"stale ok");
    push(&layout, "v1", &up, "team/s:v1").await;
    let cache_dir = tmp.path().join("cache");
    let ttl0 = "tag_ttl = \"0\"";
    let shim = Shim::start(&config(&rec.url(), &cache_dir, ttl0)).await;
    assert_eq!(
        manifest_digest(&shim.url(), "team/s", "v1").await,
        (StatusCode::OK, d.digest.clone())
    );
    assert_eq!(stale_served(&shim), 0);

    // Failing: the registry behind the relay is gone, the relay answers 502.
    up.stop().await;
    let before = rec.requests().len();
    assert_eq!(
        manifest_digest(&shim.url(), "team/s", "v1").await,
        (StatusCode::OK, d.digest.clone()),
        "a 5xx upstream: the cached copy"
    );
    assert!(
        rec.requests().len() > before,
        "tag_ttl = 0 asked the upstream"
    );
    assert_eq!(stale_served(&shim), 1);
    let metrics = metrics_text(&shim).await;
    assert!(
        metrics.contains("shimmer_cache_stale_served_total 1"),
        "{metrics}"
    );

    // Down: nothing listens at the upstream's address.
    let db = shim.state.config.database.url.expose().to_owned();
    let down = Shim::start_with_database(&config(&up.url(), &cache_dir, ttl0), &db).await;
    assert_eq!(
        manifest_digest(&down.url(), "team/s", "v1").await,
        (StatusCode::OK, d.digest.clone()),
        "an unreachable upstream: the cached copy"
    );
    assert_eq!(stale_served(&down), 1);

    // Hung: the upstream accepts and never answers. Its read timeout is ten minutes; the
    // revalidation gives up after one second and the cached copy is served.
    let (hung, _task) = hung_upstream().await;
    let slow = Shim::start_with_database(
        &format!(
            "{}read_timeout = \"600s\"\n",
            config(
                &hung,
                &cache_dir,
                "tag_ttl = \"0\"\nrevalidate_timeout = \"1s\""
            )
        ),
        &db,
    )
    .await;
    assert_eq!(
        manifest_digest(&slow.url(), "team/s", "v1").await,
        (StatusCode::OK, d.digest.clone()),
        "a hung upstream: the cached copy, within the revalidate timeout"
    );
    // A digest never needs the upstream.
    let r = http()
        .get(format!(
            "{}/v2/team/s/manifests/{}?ns=registry-a.test",
            slow.url(),
            d.digest
        ))
        .timeout(Duration::from_secs(60))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_head_without_a_digest_revalidates_with_a_get_so_a_moved_tag_is_seen() {
    let up = Registry::start(RegistryOptions::default()).await;
    // Some registries answer HEAD without Docker-Content-Digest; docker-registry always sends
    // it, so the relay drops it from manifest HEAD answers.
    let rec = Recorder::start_with_hook(
        &up.url(),
        std::sync::Arc::new(|req, parts| {
            if req.method == "HEAD" && req.path_and_query.contains("/manifests/") {
                parts.headers.remove("docker-content-digest");
            }
        }),
    )
    .await;
    let (tmp, layout) = scratch_layout();
    let one = layout.file_image("one", b"first");
    let two = layout.file_image("two", b"second");
    push(&layout, "one", &up, "team/h:latest").await;
    let shim = start_cached(&rec.url(), &tmp, "tag_ttl = \"0\"").await;
    assert_eq!(
        manifest_digest(&shim.url(), "team/h", "latest").await,
        (StatusCode::OK, one.digest.clone())
    );
    push(&layout, "two", &up, "team/h:latest").await;
    let before = rec.requests().len();
    assert_eq!(
        manifest_digest(&shim.url(), "team/h", "latest").await,
        (StatusCode::OK, two.digest.clone()),
        "a HEAD that names no digest cannot keep the stale copy"
    );
    let asked: Vec<_> = rec.requests()[before..]
        .iter()
        .map(|r| (r.method.clone(), r.path_and_query.clone()))
        .collect();
    assert!(
        asked.contains(&("HEAD".into(), "/v2/team/h/manifests/latest".into()))
            && asked.contains(&("GET".into(), "/v2/team/h/manifests/latest".into())),
        "{asked:?}"
    );
    assert_eq!(stale_served(&shim), 0);
}

#[tokio::test]
async fn offline_never_contacts_an_upstream_without_a_cache_or_with_its_cache_off() {
    let (up, rec) = recorded_registry().await;
    let (tmp, layout) = scratch_layout();
    let d = layout.file_image("v1", b"upstream only");
    let blob = first_layer(&layout, &d);
    push(&layout, "v1", &up, "team/o:v1").await;
    let upstream = format!(
        "[[upstream]]\nname = \"a\"\nhosts = [\"registry-a.test\"]\nurl = \"{}\"\n",
        rec.url()
    );
    let setups = [
        (
            "offline, no cache path",
            format!("[cache]\noffline = true\n{upstream}"),
        ),
        (
            "offline, upstream cache = false",
            format!(
                "[cache]\npath = \"{}\"\noffline = true\n{upstream}cache = false\n",
                tmp.path().join("cache").display()
            ),
        ),
    ];
    for (what, toml) in setups {
        let shim = Shim::start(&toml).await;
        let base = shim.v2("team/o");
        let q = "?ns=registry-a.test";
        let c = http();
        let checks = [
            (
                c.get(format!("{base}/manifests/v1{q}")),
                Some("MANIFEST_UNKNOWN"),
            ),
            (c.head(format!("{base}/manifests/v1{q}")), None),
            (
                c.get(format!("{base}/manifests/{}{q}", d.digest)),
                Some("MANIFEST_UNKNOWN"),
            ),
            (
                c.get(format!("{base}/blobs/{blob}{q}")),
                Some("BLOB_UNKNOWN"),
            ),
            (c.head(format!("{base}/blobs/{blob}{q}")), None),
            (
                c.get(format!("{base}/blobs/{blob}{q}"))
                    .header(header::RANGE, "bytes=0-9"),
                Some("BLOB_UNKNOWN"),
            ),
            (c.get(format!("{base}/tags/list{q}")), Some("NAME_UNKNOWN")),
        ];
        for (req, code) in checks {
            let r = req.sent().await;
            let url = r.url().to_string();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{what}: {url}");
            assert_eq!(
                r.headers()["oci-namespace"],
                "registry-a.test",
                "{what}: {url}"
            );
            if let Some(code) = code {
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["errors"][0]["code"], code, "{what}: {url}");
                assert!(
                    body["errors"][0]["message"]
                        .as_str()
                        .unwrap()
                        .contains("offline"),
                    "{what}: {body}"
                );
            }
        }
        let ping = c.get(shim.v2(q)).sent().await;
        assert_eq!(
            ping.status(),
            StatusCode::OK,
            "{what}: the shim answers /v2/ itself"
        );
        assert_eq!(
            rec.requests(),
            vec![],
            "{what}: nothing reached the upstream"
        );
    }
}

#[tokio::test]
async fn a_pinned_tag_never_sees_the_move_upstream() {
    let (up, rec) = recorded_registry().await;
    let (tmp, layout) = scratch_layout();
    let one = layout.file_image("one", b"pinned");
    layout.file_image("two", b"moved");
    push(&layout, "one", &up, "team/pin:v1").await;
    let shim = start_cached(&rec.url(), &tmp, "tag_ttl = \"never\"").await;
    assert_eq!(
        manifest_digest(&shim.url(), "team/pin", "v1").await,
        (StatusCode::OK, one.digest.clone())
    );
    push(&layout, "two", &up, "team/pin:v1").await;
    let asked = rec.requests().len();
    assert_eq!(
        manifest_digest(&shim.url(), "team/pin", "v1").await,
        (StatusCode::OK, one.digest.clone()),
        "a pinned tag is not revalidated"
    );
    assert_eq!(rec.requests().len(), asked, "the upstream was not asked");
}

#[tokio::test]
async fn eviction_keeps_an_old_blob_a_kept_manifest_needs_and_drops_an_unreferenced_one() {
    let up = Registry::start(RegistryOptions::default()).await;
    let (tmp, layout) = scratch_layout();
    let mut layers = Vec::new();
    for (tag, seed) in [("kept", 11), ("loose", 12)] {
        let d = layout.file_image(tag, &noise(seed));
        layers.push(first_layer(&layout, &d));
        push(&layout, tag, &up, &format!("team/{tag}:v1")).await;
    }
    let (needed, loose) = (layers[0].clone(), layers[1].clone());
    let cache_dir = tmp.path().join("cache");
    let shim = Shim::start(&config(&up.url(), &cache_dir, "")).await;
    let cache = shim.state.cache.clone().unwrap();
    let r = shimmer_shim::preload::ImageRef::parse("registry-a.test/team/kept:v1").unwrap();
    shimmer_shim::preload::preload(&shim.state, &r, &[], 2)
        .await
        .unwrap();
    // A blob pulled on its own: no cached manifest refers to it.
    let b = get_blob(&shim, "team/loose", &loose).await;
    assert_eq!(b.status(), StatusCode::OK);
    assert_eq!(b.headers()["oci-namespace"], "registry-a.test");
    b.bytes().await.unwrap();
    cache.flush().await;
    let size_of = |digest: String| {
        let pool = shim.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select size_bytes from cache_entries where digest = $1")
                .bind(digest)
                .fetch_optional(&pool)
                .await
                .unwrap()
        }
    };
    let total: i64 = sqlx::query_scalar("select sum(size_bytes)::bigint from cache_entries")
        .fetch_one(&shim.pool)
        .await
        .unwrap();
    let (needed_size, loose_size) = (
        size_of(needed.clone()).await.unwrap(),
        size_of(loose.clone()).await.unwrap(),
    );
    assert!(needed_size >= loose_size, "{needed_size} < {loose_size}");
    // The needed layer is the least recently used of all, by far; the loose blob next.
    sqlx::query(
        "update cache_entries set last_access = now() - interval '3 days' where digest = $1",
    )
    .bind(&needed)
    .execute(&shim.pool)
    .await
    .unwrap();
    sqlx::query(
        "update cache_entries set last_access = now() - interval '1 hour' where digest = $1",
    )
    .bind(&loose)
    .execute(&shim.pool)
    .await
    .unwrap();
    // One blob's worth over the limit: plain LRU would drop the needed layer (oldest, and
    // enough on its own); the rule keeps it and drops the loose blob instead.
    let evicted = cache
        .evict_once((total - loose_size) as u64, None)
        .await
        .unwrap();
    assert_eq!(evicted.entries, 1, "{evicted:?}");
    assert_eq!(evicted.bytes, loose_size as u64);
    assert_eq!(size_of(needed.clone()).await, Some(needed_size), "kept");
    assert_eq!(size_of(loose.clone()).await, None, "evicted");
    let on_disk = files_under(&cache_dir);
    let present = |d: &str| {
        on_disk
            .iter()
            .any(|p| p.ends_with(d.trim_start_matches("sha256:")))
    };
    assert!(present(&needed) && !present(&loose), "{on_disk:?}");
    // The kept image still pulls whole with the upstream gone.
    drop(up);
    let b = get_blob(&shim, "team/kept", &needed).await;
    assert_eq!(b.status(), StatusCode::OK);
    assert_eq!(skopeo::digest_of(&b.bytes().await.unwrap()), needed);
}

#[tokio::test]
async fn an_upstream_with_cache_off_is_passed_through_and_nothing_is_stored() {
    let (up, rec) = recorded_registry().await;
    let (tmp, layout) = scratch_layout();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let d = layout.file_image("v1", &data);
    let blob = first_layer(&layout, &d);
    push(&layout, "v1", &up, "team/pt:v1").await;
    let cache_dir = tmp.path().join("cache");
    let shim = Shim::start(&format!(
        "{}cache = false\n",
        config(&rec.url(), &cache_dir, "")
    ))
    .await;
    for round in 1..=2 {
        assert_eq!(
            manifest_digest(&shim.url(), "team/pt", "v1").await,
            (StatusCode::OK, d.digest.clone()),
            "round {round}"
        );
        let r = get_blob(&shim, "team/pt", &blob).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["oci-namespace"], "registry-a.test");
        assert_eq!(skopeo::digest_of(&r.bytes().await.unwrap()), blob);
    }
    // Every request went upstream; nothing was written to the cache directory or tables.
    let gets = |path: &str| {
        rec.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path_and_query.contains(path))
            .count()
    };
    assert_eq!(gets("/manifests/v1"), 2);
    assert_eq!(gets(&blob), 2);
    shim.state.cache.clone().unwrap().flush().await;
    assert_eq!(files_under(&cache_dir), Vec::<std::path::PathBuf>::new());
    for table in ["cache_entries", "cache_tags"] {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&shim.pool)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table}");
    }
}

/// A hand-written upstream that answers each `GET` path in `answers` with (status, content
/// type, body), anything else 404, and records the paths it was asked for. It stands in for a
/// hostile or rate-limiting registry: docker-registry refuses to store a manifest whose
/// descriptors name invalid digests, never serves a manifest by `sha512:`, and cannot be made
/// to answer `429`.
async fn fake_upstream(
    answers: Vec<(String, StatusCode, &'static str, Vec<u8>)>,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    use axum::{body::Body, http::Request, response::Response};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let answers = std::sync::Arc::new(answers);
    let (log, table) = (seen.clone(), answers.clone());
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let (log, table) = (log.clone(), table.clone());
        async move {
            let path = req.uri().path().to_owned();
            log.lock().unwrap().push(path.clone());
            let found = table.iter().find(|(p, ..)| *p == path);
            let (status, content_type, body) = match found {
                Some((_, s, t, b)) => (*s, *t, b.clone()),
                None if path == "/v2/" => (StatusCode::OK, "application/json", b"{}".to_vec()),
                None => (StatusCode::NOT_FOUND, "application/json", b"{}".to_vec()),
            };
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = axum::http::StatusCode::from_u16(status.as_u16()).unwrap();
            resp.headers_mut()
                .insert("content-type", content_type.parse().unwrap());
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen, task)
}

#[tokio::test]
async fn a_stalled_blob_redirect_fails_the_fill_for_every_client_and_leaves_no_temp_file() {
    let up = Registry::start(RegistryOptions::default()).await;
    let (stalled, _stall) = hung_upstream().await;
    // The upstream answers blob GETs with a redirect to object storage that never answers.
    let target = stalled.clone();
    let rec = Recorder::start_with_hook(
        &up.url(),
        std::sync::Arc::new(
            move |req: &testkit::recorder::RecordedRequest, parts: &mut http::response::Parts| {
                if req.method == "GET" && req.path_and_query.contains("/blobs/sha256:") {
                    parts.status = http::StatusCode::TEMPORARY_REDIRECT;
                    parts.headers.insert(
                        "location",
                        format!("{target}/storage{}", req.path_and_query)
                            .parse()
                            .unwrap(),
                    );
                }
            },
        ),
    )
    .await;
    let (tmp, layout) = scratch_layout();
    let d = layout.file_image("v1", &noise(7));
    let blob = first_layer(&layout, &d);
    push(&layout, "v1", &up, "team/r:v1").await;
    let cache_dir = tmp.path().join("cache");
    let toml = format!(
        "{}connect_timeout = \"1s\"\nread_timeout = \"1s\"\n",
        config(&rec.url(), &cache_dir, "")
    );
    let shim = Shim::start(&toml).await;
    let url = shim.v2(&format!("team/r/blobs/{blob}?ns=registry-a.test"));
    let get = || async {
        let resp = http()
            .get(&url)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .expect("an answer, not a wait forever");
        resp.status()
    };
    let (first, second) = tokio::join!(get(), get());
    assert_eq!(first, StatusCode::BAD_GATEWAY);
    assert_eq!(second, StatusCode::BAD_GATEWAY);
    testkit::wait_until(
        "the temp file is removed",
        Duration::from_secs(5),
        || async { files_under(&cache_dir).is_empty() },
    )
    .await;
}

#[tokio::test]
async fn a_sha512_manifest_is_verified_and_never_stored_as_a_tag() {
    use sha2::Digest as _;
    let good = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.to_vec();
    let good_digest = format!("sha512:{}", hex::encode(sha2::Sha512::digest(&good)));
    let forged = format!("sha512:{}", "0".repeat(128));
    let oci = "application/vnd.oci.image.manifest.v1+json";
    let (url, _seen, _task) = fake_upstream(vec![
        (
            format!("/v2/team/s/manifests/{good_digest}"),
            StatusCode::OK,
            oci,
            good.clone(),
        ),
        (
            format!("/v2/team/s/manifests/{forged}"),
            StatusCode::OK,
            oci,
            good.clone(),
        ),
    ])
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let shim = start_cached(&url, &tmp, "").await;
    let get = |reference: String| {
        let url = shim.v2(&format!("team/s/manifests/{reference}?ns=registry-a.test"));
        async move { http().get(url).sent().await }
    };
    let r = get(good_digest.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["docker-content-digest"], good_digest.as_str());
    assert_eq!(r.bytes().await.unwrap(), good);
    // Bytes that do not hash to the digest asked for are refused, not served.
    assert_eq!(get(forged).await.status(), StatusCode::BAD_GATEWAY);
    let tags: Vec<(String,)> = sqlx::query_as("select tag from cache_tags")
        .fetch_all(&shim.pool)
        .await
        .unwrap();
    assert!(tags.is_empty(), "digests stored as tags: {tags:?}");
}

#[tokio::test]
async fn preload_refuses_a_manifest_whose_descriptors_name_invalid_digests() {
    let evil = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:../../escaped", "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": "sha256:../../../../written-by-upstream", "size": 2}],
    });
    let (url, seen, _task) = fake_upstream(vec![(
        "/v2/team/evil/manifests/v1".into(),
        StatusCode::OK,
        "application/vnd.oci.image.manifest.v1+json",
        serde_json::to_vec(&evil).unwrap(),
    )])
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let shim = start_cached(&url, &tmp, "").await;
    let image = shimmer_shim::preload::ImageRef::parse("registry-a.test/team/evil:v1").unwrap();
    let err = shimmer_shim::preload::preload(&shim.state, &image, &[], 2)
        .await
        .unwrap_err();
    assert!(err.contains("invalid manifest"), "{err}");
    let blob_requests: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.contains("/blobs/"))
        .cloned()
        .collect();
    assert!(blob_requests.is_empty(), "{blob_requests:?}");
    let outside: Vec<_> = files_under(tmp.path())
        .into_iter()
        .filter(|p| !p.starts_with(tmp.path().join("cache")))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

/// Writes an export (`cache/` and `metadata.json`) holding only `metadata`.
fn export_with_metadata(dir: &std::path::Path, metadata: serde_json::Value) {
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    std::fs::write(
        dir.join("metadata.json"),
        serde_json::to_vec(&metadata).unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn import_refuses_metadata_naming_paths_unknown_upstreams_or_invalid_names() {
    let tmp = tempfile::tempdir().unwrap();
    let shim = start_cached("http://127.0.0.1:1", &tmp, "").await;
    let good = format!("sha256:{}", "a".repeat(64));
    let cases = [
        (
            serde_json::json!({"tags": [], "entries": [["a", "sha256:../../../etc/passwd", "team/x", null, 1]]}),
            "invalid digest",
        ),
        (
            serde_json::json!({"tags": [], "entries": [["/etc", good, "team/x", null, 1]]}),
            "not configured",
        ),
        (
            serde_json::json!({"tags": [], "entries": [["..", good, "team/x", null, 1]]}),
            "not configured",
        ),
        (
            serde_json::json!({"tags": [["a", "../x", "v1", good, null]], "entries": []}),
            "invalid repository",
        ),
        (
            serde_json::json!({"tags": [["a", "team/x", "../v1", good, null]], "entries": []}),
            "invalid tag",
        ),
    ];
    for (i, (metadata, expected)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("export-{i}"));
        export_with_metadata(&dir, metadata);
        let err = shimmer_shim::preload::import(&shim.state, &dir)
            .await
            .expect_err(expected)
            .to_string();
        assert!(
            err.contains(expected) && err.contains("metadata.json"),
            "{err}"
        );
    }
    let rows: (i64, i64) = sqlx::query_as(
        "select (select count(*) from cache_tags), (select count(*) from cache_entries)",
    )
    .fetch_one(&shim.pool)
    .await
    .unwrap();
    assert_eq!(rows, (0, 0));
}

#[tokio::test]
async fn a_client_whose_accept_excludes_the_cached_type_is_answered_by_the_upstream() {
    let up = Registry::start(RegistryOptions::default()).await;
    let (tmp, layout) = scratch_layout();
    layout.file_image("v1", b"accept");
    push(&layout, "v1", &up, "team/acc:v1").await;
    let shim = start_cached(&up.url(), &tmp, "").await;
    let get = |accept: Option<&'static str>| {
        let url = shim.v2("team/acc/manifests/v1?ns=registry-a.test");
        async move {
            let mut req = http().get(url);
            if let Some(a) = accept {
                req = req.header(header::ACCEPT, a);
            }
            let r = req.sent().await;
            let ct = r
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned());
            (r.status(), ct)
        }
    };
    let oci = "application/vnd.oci.image.manifest.v1+json";
    assert_eq!(get(Some(oci)).await, (StatusCode::OK, Some(oci.to_owned())));
    // The cached OCI manifest is not what this client takes: the upstream answers it (for an
    // OCI manifest, docker-registry says it is unknown in the types the client accepts).
    let (status, ct) = get(Some("application/vnd.docker.distribution.manifest.v2+json")).await;
    assert_ne!(ct.as_deref(), Some(oci), "served a type the client refused");
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(get(None).await, (StatusCode::OK, Some(oci.to_owned())));
}

#[tokio::test]
async fn an_unwritable_cache_passes_pulls_through_and_records_nothing() {
    let up = Registry::start(RegistryOptions::default()).await;
    let (tmp, layout) = scratch_layout();
    let d = layout.file_image("v1", &noise(9));
    let blob = first_layer(&layout, &d);
    push(&layout, "v1", &up, "team/ro:v1").await;
    let cache_dir = tmp.path().join("cache");
    let shim = start_cached(&up.url(), &tmp, "").await;
    // Nothing can be written any more (a file where `tmp/` was stops root too).
    std::fs::remove_dir_all(cache_dir.join("tmp")).unwrap();
    std::fs::write(cache_dir.join("tmp"), b"").unwrap();

    let r = get_blob(&shim, "team/ro", &blob).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), layout.read_blob(&blob));
    let m = http()
        .get(shim.v2("team/ro/manifests/v1?ns=registry-a.test"))
        .sent()
        .await;
    assert_eq!(m.status(), StatusCode::OK);
    shim.state.cache.as_ref().unwrap().flush().await;
    let entries: (i64,) = sqlx::query_as("select count(*) from cache_entries")
        .fetch_one(&shim.pool)
        .await
        .unwrap();
    assert_eq!(entries.0, 0, "entries recorded for content not on disk");
}

#[tokio::test]
async fn stale_temp_files_are_removed_at_start_and_odd_ranges_get_the_whole_blob() {
    let up = Registry::start(RegistryOptions::default()).await;
    let (tmp, layout) = scratch_layout();
    let d = layout.file_image("v1", &noise(3));
    let blob = first_layer(&layout, &d);
    push(&layout, "v1", &up, "team/t:v1").await;
    let cache_dir = tmp.path().join("cache");
    std::fs::create_dir_all(cache_dir.join("tmp")).unwrap();
    let stale = cache_dir.join("tmp").join("left-by-a-crash");
    let file = std::fs::File::create(&stale).unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    drop(file);
    let shim = start_cached(&up.url(), &tmp, "").await;
    assert!(!stale.exists(), "a crashed download's temp file was kept");

    let whole = layout.read_blob(&blob);
    // Read whole, so the blob is in place before the ranged requests.
    let first = get_blob(&shim, "team/t", &blob).await;
    assert_eq!(first.bytes().await.unwrap(), whole);
    let ranged = |range: &'static str| {
        let url = shim.v2(&format!("team/t/blobs/{blob}?ns=registry-a.test"));
        async move {
            let r = http().get(url).header(header::RANGE, range).sent().await;
            (r.status(), r.bytes().await.unwrap().len())
        }
    };
    // Several ranges and other units are ignored (RFC 9110), one past the end is a 416.
    assert_eq!(ranged("bytes=0-1,4-5").await, (StatusCode::OK, whole.len()));
    assert_eq!(ranged("items=0-1").await, (StatusCode::OK, whole.len()));
    assert_eq!(
        ranged("bytes=999999999-").await.0,
        StatusCode::RANGE_NOT_SATISFIABLE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fill_for_another_repository_is_not_joined() {
    let up = Registry::start(RegistryOptions::default()).await;
    // Answers for `team/none` (which lacks the blob) arrive a second late, so a request for
    // `team/has` starts while that fill is still running.
    let rec = Recorder::start_with_hook(
        &up.url(),
        std::sync::Arc::new(
            |req: &testkit::recorder::RecordedRequest, _: &mut http::response::Parts| {
                if req.path_and_query.starts_with("/v2/team/none/blobs/") {
                    std::thread::sleep(Duration::from_secs(1));
                }
            },
        ),
    )
    .await;
    let (tmp, layout) = scratch_layout();
    let d = layout.file_image("v1", &noise(5));
    let blob = first_layer(&layout, &d);
    push(&layout, "v1", &up, "team/has:v1").await;
    let shim = start_cached(&rec.url(), &tmp, "").await;
    let missing = get_blob(&shim, "team/none", &blob);
    let present = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        get_blob(&shim, "team/has", &blob).await
    };
    let (missing, present) = tokio::join!(missing, present);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(present.status(), StatusCode::OK);
    assert_eq!(present.bytes().await.unwrap(), layout.read_blob(&blob));
}

#[tokio::test]
async fn an_upstream_refusing_a_fill_is_passed_on_with_its_error() {
    let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#.to_vec();
    let digest = format!("sha256:{}", "b".repeat(64));
    let (url, _seen, _task) = fake_upstream(vec![
        (
            format!("/v2/team/lim/blobs/{digest}"),
            StatusCode::TOO_MANY_REQUESTS,
            "application/json",
            body.clone(),
        ),
        (
            "/v2/team/lim/manifests/v1".into(),
            StatusCode::FORBIDDEN,
            "application/json",
            b"{}".to_vec(),
        ),
    ])
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let shim = start_cached(&url, &tmp, "").await;
    let r = get_blob(&shim, "team/lim", &digest).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.bytes().await.unwrap(), body);
    let m = http()
        .get(shim.v2("team/lim/manifests/v1?ns=registry-a.test"))
        .sent()
        .await;
    assert_eq!(m.status(), StatusCode::FORBIDDEN);
    assert_eq!(crate::harness::error_code(m).await, "DENIED");
}

#[tokio::test]
async fn a_cached_tag_keeps_the_later_answer_whichever_shim_writes_last() {
    // Shim A asks the upstream what `v1` names and hears `old`; the tag moves; shim B asks,
    // hears `new` and records it; A's write lands last. Every shim must go on serving `new`,
    // not `old` for a whole tag_ttl.
    let (_db, pool) = migrated_database().await;
    use shimmer_store::{
        cache::{set_tag, tag},
        unix_now,
    };
    let now = unix_now();
    let json = Some("application/vnd.oci.image.manifest.v1+json");
    let set = |digest: &'static str, at: f64| {
        let pool = pool.clone();
        async move {
            set_tag(&pool, "up", "library/x", "v1", (digest, json), at)
                .await
                .unwrap()
        }
    };
    let names = || async {
        let t = tag(&pool, "up", "library/x", "v1").await.unwrap().unwrap();
        (t.digest, t.age_secs)
    };
    set("sha256:new", now - 10.0).await;
    set("sha256:old", now - 20.0).await;
    let (digest, age) = names().await;
    assert_eq!(digest, "sha256:new", "the earlier answer came back");
    assert!(
        (9.0..60.0).contains(&age),
        "the age of the later answer: {age}"
    );
    // A later answer moves it (and a revalidation of the same digest refreshes its age).
    set("sha256:newer", now - 5.0).await;
    assert_eq!(names().await.0, "sha256:newer");
    set("sha256:newer", now).await;
    let (digest, age) = names().await;
    assert_eq!(digest, "sha256:newer");
    assert!(age < 4.0, "revalidated just now: {age}");
}

#[tokio::test]
async fn eviction_forgets_only_entries_nobody_used_since_it_looked() {
    // Eviction reads every entry, decides, then forgets; a client's hit in between (or another
    // shim's eviction of the same entry) must win: the entry is kept (or forgotten once).
    let (_db, pool) = migrated_database().await;
    use shimmer_store::{
        cache::{entries, forget, set_tag, tag, touch},
        unix_now,
    };
    let json = Some("application/vnd.oci.image.manifest.v1+json");
    touch(&pool, "up", "sha256:hot", "library/x", json, 10)
        .await
        .unwrap();
    touch(&pool, "up", "sha256:cold", "library/x", json, 10)
        .await
        .unwrap();
    set_tag(
        &pool,
        "up",
        "library/x",
        "v1",
        ("sha256:cold", json),
        unix_now(),
    )
    .await
    .unwrap();
    let looked = entries(&pool).await.unwrap();
    let seen = |d: &str| {
        looked
            .iter()
            .find(|e| e.digest == d)
            .unwrap()
            .last_access_us
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    // A client hits `hot` after eviction looked.
    touch(&pool, "up", "sha256:hot", "library/x", json, 10)
        .await
        .unwrap();
    assert!(
        !forget(&pool, "up", "sha256:hot", seen("sha256:hot"))
            .await
            .unwrap()
    );
    assert!(
        forget(&pool, "up", "sha256:cold", seen("sha256:cold"))
            .await
            .unwrap()
    );
    // A second evictor that looked at the same time forgets nothing more.
    assert!(
        !forget(&pool, "up", "sha256:cold", seen("sha256:cold"))
            .await
            .unwrap()
    );
    let left: Vec<String> = entries(&pool)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.digest)
        .collect();
    assert_eq!(left, ["sha256:hot"]);
    assert!(
        tag(&pool, "up", "library/x", "v1").await.unwrap().is_none(),
        "the tag that named the forgotten entry went with it"
    );
}

/// A database of its own with shimmer's schema, for tests of the cache's records alone.
async fn migrated_database() -> (testkit::pg::TestDatabase, sqlx::PgPool) {
    let db = testkit::pg::fresh_database().await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    shimmer_store::migrate(&pool).await.unwrap();
    (db, pool)
}
