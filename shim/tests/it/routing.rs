//! Several backends at once, routed by repository prefix; pagination; health.

use reqwest::{StatusCode, header};
use testkit::{
    oci::OciLayout,
    pg::PgServer,
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
    skopeo,
};

use crate::harness::{Shim, backend_toml, docker, error_code, http};
use testkit::http::Sent;

fn small_image(dir: &std::path::Path) -> OciLayout {
    let layout = OciLayout::create(dir.join("layout"));
    layout.file_image("v1", b"routing");
    layout
}

#[tokio::test]
async fn two_backends_are_routed_by_longest_prefix() {
    let (a, b) = (
        Registry::start(RegistryOptions::default()).await,
        Registry::start(RegistryOptions::default()).await,
    );
    // Logging relays in front of both: which requests reached each backend.
    let (a_rec, b_rec) = (
        Recorder::start(&a.url()).await,
        Recorder::start(&b.url()).await,
    );
    let toml = format!(
        "{}{}",
        backend_toml("a", &a_rec.url(), "acme/"),
        backend_toml("b", &b_rec.url(), "acme/private/")
    );
    let shim = Shim::start(&toml).await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = small_image(tmp.path());

    shim.push(&layout, "v1", "acme/public:v1", &[]).await;
    shim.push(&layout, "v1", "acme/private/x:v1", &[]).await;

    let on = |reg: &Registry, repo: &str| {
        let r = docker(&reg.host_port(), &format!("{repo}:v1"));
        async move { skopeo::inspect_raw(&r, &[]).await.is_ok() }
    };
    assert!(on(&a, "acme/public").await);
    assert!(!on(&b, "acme/public").await);
    assert!(on(&b, "acme/private/x").await);
    assert!(!on(&a, "acme/private/x").await);

    // A name no route covers: NAME_UNKNOWN, and a push fails.
    let resp = http().get(shim.v2("elsewhere/x/manifests/v1")).sent().await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(error_code(resp).await, "NAME_UNKNOWN");
    let err = skopeo::copy(
        &layout.skopeo_ref("v1"),
        &shim.docker("elsewhere/x:v1"),
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("NAME_UNKNOWN") || err.contains("not routed"),
        "{err}"
    );
    // Each backend got its own repository's requests, and neither any for the unrouted name.
    let (to_a, to_b) = (a_rec.requests(), b_rec.requests());
    assert!(
        to_a.iter()
            .any(|r| r.path_and_query.starts_with("/v2/acme/public/"))
    );
    assert!(
        to_b.iter()
            .any(|r| r.path_and_query.starts_with("/v2/acme/private/x/"))
    );
    for r in to_a.iter().chain(&to_b) {
        assert!(
            !r.path_and_query.contains("elsewhere"),
            "a backend was asked about an unrouted name: {r:?}"
        );
    }
    assert!(
        !to_a
            .iter()
            .any(|r| r.path_and_query.contains("acme/private/")),
        "the shorter prefix's backend saw the longer prefix's repository"
    );
}

#[tokio::test]
async fn catalog_pagination_links_point_at_the_shim_and_tag_queries_pass_verbatim() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start(&reg.url()).await;
    let shim = Shim::start(&backend_toml("primary", &rec.url(), "")).await;
    let tmp = tempfile::tempdir().unwrap();
    let layout = small_image(tmp.path());
    for repo in ["r/one", "r/two", "r/three"] {
        shim.push(&layout, "v1", &format!("{repo}:v1"), &[]).await;
    }
    let c = http();

    // Walk the catalog one repository at a time by following the Link header.
    let mut next = Some(shim.v2("_catalog?n=1"));
    let mut seen = Vec::new();
    while let Some(url) = next.take() {
        let resp = c.get(&url).sent().await;
        assert_eq!(resp.status(), StatusCode::OK);
        if let Some(link) = resp.headers().get(header::LINK) {
            let link = link.to_str().unwrap();
            assert!(
                !link.contains(&rec.host_port()),
                "Link leaks the backend: {link}"
            );
            let target = link.split('<').nth(1).unwrap().split('>').next().unwrap();
            assert!(target.starts_with("/v2/_catalog?"), "{link}");
            next = Some(format!("{}{target}", shim.url()));
        }
        let v: serde_json::Value = resp.json().await.unwrap();
        seen.extend(
            v["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.to_string()),
        );
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    // docker-registry 2.8 ignores n/last on tag lists (no Link to follow); the shim's part is
    // to hand the query to the backend exactly as the client wrote it.
    let resp = c
        .get(shim.v2("r/one/tags/list?n=1&last=a%2Db"))
        .sent()
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["name"], "r/one");
    assert!(
        rec.requests()
            .iter()
            .any(|r| r.path_and_query == "/v2/r/one/tags/list?n=1&last=a%2Db"),
        "{:?}",
        rec.requests().last()
    );
}

#[tokio::test]
async fn repeated_accept_headers_all_reach_the_backend() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start(&reg.url()).await;
    let shim = Shim::start(&backend_toml("primary", &rec.url(), "")).await;
    let resp = http()
        .get(shim.v2("r/x/manifests/v1"))
        .header(header::ACCEPT, "application/vnd.oci.image.manifest.v1+json")
        .header(
            header::ACCEPT,
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .header(header::CONNECTION, "keep-alive, x-secret-hop")
        .header("x-secret-hop", "must not pass")
        .sent()
        .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let sent: Vec<_> = rec
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query != "/v2/")
        .collect();
    let accepts: Vec<_> = sent[0]
        .headers
        .iter()
        .filter(|(n, _)| n == "accept")
        .collect();
    assert_eq!(accepts.len(), 2, "{:?}", sent[0].headers);
    assert!(
        sent[0].header("x-secret-hop").is_none(),
        "Connection-listed header was forwarded"
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let mut reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let c = http();
    let r = get(&c, &shim, "/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = get(&c, &shim, "/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    reg.stop().await;
    let r = get(&c, &shim, "/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["backends"]["primary"]["ok"], false);
    assert_eq!(v["database"]["ok"], true);
    // A backend that is down: the client gets a spec error, not a hang or a leak of details.
    let r = get(&c, &shim, "/v2/x/manifests/v1").await;
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(error_code(r).await, "UNAVAILABLE");
}

#[tokio::test]
async fn readyz_names_the_database_while_postgresql_is_down() {
    let pg = PgServer::start().await;
    let db_url = pg.create_database("shim_ready").await;
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start_with_database(&backend_toml("primary", &reg.url(), ""), &db_url).await;
    let c = http();
    let ready = || async {
        let r = get(&c, &shim, "/readyz").await;
        let status = r.status();
        (status, r.json::<serde_json::Value>().await.unwrap())
    };
    let (status, v) = ready().await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["ready"], true);
    assert_eq!(v["database"]["ok"], true);
    assert_eq!(v["backends"]["primary"]["ok"], true);

    pg.stop().await;
    let (status, v) = ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["ready"], false);
    assert_eq!(v["database"]["ok"], false, "{v}");
    assert_eq!(
        v["backends"]["primary"]["ok"], true,
        "only the database is down: {v}"
    );
    // Liveness does not depend on the database.
    let r = get(&c, &shim, "/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);

    pg.restart().await;
    testkit::wait_until(
        "readyz recovers with the database",
        std::time::Duration::from_secs(20),
        || async { ready().await.0 == StatusCode::OK },
    )
    .await;
    let (_, v) = ready().await;
    assert_eq!(v["database"]["ok"], true, "{v}");
}

/// `GET <path>` on the shim.
async fn get(c: &reqwest::Client, shim: &Shim, path: &str) -> reqwest::Response {
    c.get(format!("{}{path}", shim.url())).sent().await
}
