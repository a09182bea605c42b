//! A request reaches only what its route names: no upload session a client writes itself, no
//! upstream endpoint but the pull API, no next page that forgets its upstream, no cookie.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{StatusCode, header};
use testkit::{
    nginx::Nginx,
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
    skopeo,
};

use crate::harness::{
    Shim, backend_toml, docker, error_code, http, private_upstream, scratch_layout, start_upload,
    upstream_toml,
};
use testkit::http::Sent;

/// A small image tagged `v1` in a scratch layout; returns its manifest digest.
fn small_image(layout: &testkit::oci::OciLayout, content: &[u8]) -> String {
    layout.file_image("v1", content).digest
}

#[tokio::test]
async fn uploads_to_a_backend_whose_upload_locations_lie_outside_v2_use_signed_sessions() {
    // A real registry behind a real nginx that serves uploads under `/elsewhere/` and says so in
    // every upload `Location`: the shim carries those paths in sessions it signs.
    let reg = Registry::start(RegistryOptions::default()).await;
    let nginx = Nginx::start(&format!(
        r#"
        location /elsewhere/ {{
            proxy_pass {reg}/v2/;
            proxy_redirect ~^(https?://[^/]+)?/v2/(.*/blobs/uploads/.*)$ /elsewhere/$2;
        }}
        location / {{
            proxy_pass {reg};
            proxy_redirect ~^(https?://[^/]+)?/v2/(.*/blobs/uploads/.*)$ /elsewhere/$2;
        }}
        "#,
        reg = reg.url()
    ))
    .await;
    let shim = Shim::start(&backend_toml("primary", &nginx.url(), "")).await;
    let (_tmp, layout) = scratch_layout();
    let digest = small_image(&layout, b"uploaded elsewhere");
    shim.push(&layout, "v1", "acme/x:v1", &[]).await;
    let raw = skopeo::inspect_raw(&docker(&reg.host_port(), "acme/x:v1"), &[])
        .await
        .unwrap();
    assert_eq!(skopeo::digest_of(&raw), digest);

    let loc = start_upload(&shim.url(), "acme/x").await;
    let session = loc
        .strip_prefix(&shim.v2("acme/x/blobs/uploads/~"))
        .unwrap_or_else(|| panic!("not an encoded session: {loc}"));
    let (path, _) = session.split_once('.').expect("a signed session");
    let path = String::from_utf8(URL_SAFE_NO_PAD.decode(path).unwrap()).unwrap();
    assert!(
        path.starts_with("/elsewhere/acme/x/blobs/uploads/"),
        "{path}"
    );
    let c = http();
    // The session works where it was issued (upload status: 204)...
    let r = c.get(&loc).sent().await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{loc}");
    // ...and nowhere else: not under another repository, and not with its path swapped for one
    // the client chose (the signature no longer matches).
    let elsewhere = loc.replace("/v2/acme/x/", "/v2/acme/y/");
    let r = c.get(&elsewhere).sent().await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
    let (_, tag_and_query) = session.split_once('.').unwrap();
    let forged = format!(
        "{}/v2/acme/x/blobs/uploads/~{}.{tag_and_query}",
        shim.url(),
        URL_SAFE_NO_PAD.encode("/v2/acme/x/manifests/v1")
    );
    let r = c.get(&forged).sent().await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn an_upstream_answers_the_pull_api_only() {
    // The shim's credentials for the upstream must not open anything but manifests, blobs, tags
    // and referrers: no upload session (which could name any path on the upstream's host), no
    // catalog of everything there.
    let (_up, rec, shim) = private_upstream().await;
    let forged = URL_SAFE_NO_PAD.encode("/v2/_catalog");
    let base = shim.url();
    let c = http();
    for (method, url) in [
        (
            "GET",
            format!("{base}/v2/team/p/blobs/uploads/~{forged}?ns=registry-a.test"),
        ),
        (
            "GET",
            format!("{base}/v2/registry-a.test/team/p/blobs/uploads/~{forged}"),
        ),
        (
            "HEAD",
            format!("{base}/v2/team/p/blobs/uploads/some-session?ns=registry-a.test"),
        ),
        (
            "POST",
            format!("{base}/v2/team/p/blobs/uploads/?ns=registry-a.test"),
        ),
        ("GET", format!("{base}/v2/_catalog?ns=registry-a.test")),
    ] {
        let r = c.request(method.parse().unwrap(), &url).sent().await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {url}");
        if method != "HEAD" {
            assert_eq!(error_code(r).await, "UNSUPPORTED", "{method} {url}");
        }
    }
    assert_eq!(rec.requests(), vec![], "the upstream was called");
}

#[tokio::test]
async fn the_next_page_of_an_upstreams_tag_list_goes_to_that_upstream() {
    // docker-registry 2.8 sends no Link on tag lists; the relay adds one as newer registries do.
    let up = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start_with_hook(
        &up.url(),
        Arc::new(|req, resp| {
            if req.path_and_query == "/v2/team/p/tags/list?n=1" {
                let link = r#"</v2/team/p/tags/list?n=1&last=a>; rel="next""#;
                resp.headers.insert(header::LINK, link.parse().unwrap());
            }
        }),
    )
    .await;
    // A backend takes every name no upstream is asked for: it must not get the next page.
    let other = Registry::start(RegistryOptions::default()).await;
    let other_rec = Recorder::start(&other.url()).await;
    let shim = Shim::start(&format!(
        "{}{}",
        upstream_toml("a", "registry-a.test", &rec.url()),
        backend_toml("default", &other_rec.url(), "")
    ))
    .await;
    let (_tmp, layout) = scratch_layout();
    small_image(&layout, b"paged");
    skopeo::push(&layout, "v1", &up.host_port(), "team/p:v1", &[]).await;
    let c = http();
    for first in [
        shim.v2("team/p/tags/list?n=1&ns=registry-a.test"),
        shim.v2("registry-a.test/team/p/tags/list?n=1"),
    ] {
        let r = c.get(&first).sent().await;
        assert_eq!(r.status(), StatusCode::OK, "{first}");
        let link = r.headers()[header::LINK].to_str().unwrap().to_owned();
        let target = link.split('<').nth(1).unwrap().split('>').next().unwrap();
        assert_eq!(
            target, "/v2/team/p/tags/list?n=1&last=a&ns=registry-a.test",
            "{first}"
        );
        let r = c.get(format!("{}{target}", shim.url())).sent().await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let paged = rec
        .requests()
        .iter()
        .filter(|r| r.path_and_query == "/v2/team/p/tags/list?n=1&last=a")
        .count();
    assert_eq!(paged, 2, "{:?}", rec.requests());
    assert!(
        other_rec
            .requests()
            .iter()
            .all(|r| !r.path_and_query.contains("tags/list")),
        "{:?}",
        other_rec.requests()
    );
}

#[tokio::test]
async fn cookies_neither_reach_a_backend_nor_come_back_from_one() {
    // A browser sends the shim's host's cookies (the marketplace's, when both share a host
    // name); a backend must neither read them nor set any there.
    let reg = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start_with_hook(
        &reg.url(),
        Arc::new(|_, resp| {
            let cookie = "backend_session=1; Path=/".parse().unwrap();
            resp.headers.insert(header::SET_COOKIE, cookie);
        }),
    )
    .await;
    let shim = Shim::start(&backend_toml("primary", &rec.url(), "")).await;
    let (_tmp, layout) = scratch_layout();
    let digest = small_image(&layout, b"cookies");
    shim.push(&layout, "v1", "acme/c:v1", &[]).await;
    let r = http()
        .get(shim.v2(&format!("acme/c/manifests/{digest}")))
        .header(header::COOKIE, "shimmer_token=reader-secret; other=1")
        .header(header::ACCEPT, "application/vnd.oci.image.manifest.v1+json")
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!r.headers().contains_key(header::SET_COOKIE), "{r:?}");
    let sent = rec.requests();
    assert!(sent.iter().any(|s| s.path_and_query.contains(&digest)));
    for s in &sent {
        assert_eq!(s.header("cookie"), None, "{s:?}");
    }
}

#[tokio::test]
async fn a_tag_list_that_is_not_an_object_is_a_clean_backend_error() {
    // Hand-written fake: a real registry cannot be made to answer a tag list with a JSON array.
    let app = axum::Router::new()
        .route("/v2/", axum::routing::get(|| async { "{}" }))
        .route(
            "/v2/mirror/acme/x/tags/list",
            axum::routing::get(|| async {
                ([(header::CONTENT_TYPE, "application/json")], "[1,2,3]")
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let toml = backend_toml("odd", &format!("http://{addr}"), "").replacen(
        "\n\n[[route]]",
        "\nrepository_prefix = \"mirror/\"\n\n[[route]]",
        1,
    );
    let shim = Shim::start(&toml).await;
    for _ in 0..2 {
        let r = http().get(shim.v2("acme/x/tags/list")).sent().await;
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(error_code(r).await, "UNAVAILABLE");
    }
}
