//! A backend that answers blob GETs with a 307 to another host (as registries on object storage
//! do): the shim follows it by default, without the client's credentials, or hands it on.
//!
//! The redirecting backend is a real nginx in front of a real docker-registry; the redirect
//! target is a logging relay in front of that same registry, so the test sees what reached it.

use reqwest::{StatusCode, header};
use testkit::{
    nginx::Nginx,
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
    skopeo::digest_of,
};

use crate::harness::{Shim, backend_toml, http, start_upload, with_query};
use testkit::http::Sent;

/// nginx: blob GETs get `307` to `redirect_to` + the same path, everything else is proxied to
/// `upstream`.
async fn redirecting_nginx(upstream: &str, redirect_to: &str) -> Nginx {
    Nginx::start(&format!(
        r#"
        location ~ ^/v2/.+/blobs/sha256:[a-f0-9]+$ {{
            if ($request_method = GET) {{ return 307 {redirect_to}$request_uri; }}
            proxy_pass {upstream};
            proxy_set_header Host $http_host;
        }}
        location / {{
            proxy_pass {upstream};
            proxy_set_header Host $http_host;
        }}
        "#
    ))
    .await
}

async fn upload(base: &str, repo: &str, data: &[u8]) -> String {
    let c = http();
    let d = digest_of(data);
    let loc = start_upload(base, repo).await;
    let r = c
        .put(with_query(&loc, &format!("digest={d}")))
        .body(data.to_vec())
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    d
}

#[tokio::test]
async fn blob_redirects_are_followed_without_credentials_or_passed_on() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let storage = Recorder::start(&reg.url()).await;
    let nginx = redirecting_nginx(&reg.url(), &storage.url()).await;
    // The backend is trusted with the client's credentials; the redirect target is not.
    let toml = backend_toml("primary", &nginx.url(), "")
        .replace("\n\n[[route]]", "\nclient_auth = \"forward\"\n\n[[route]]");
    let shim = Shim::start(&toml).await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
    let d = upload(&shim.url(), "acme/r", &data).await;

    // Direct to nginx: a real 307.
    let direct = http()
        .get(format!("{}/v2/acme/r/blobs/{d}", nginx.url()))
        .sent()
        .await;
    assert_eq!(direct.status(), StatusCode::TEMPORARY_REDIRECT);

    // Through the shim: followed, the bytes arrive, the client's credentials stay behind.
    let got = http()
        .get(shim.v2(&format!("acme/r/blobs/{d}")))
        .basic_auth("someone", Some("their-password"))
        .header(header::RANGE, "bytes=0-99")
        .sent()
        .await;
    assert_eq!(got.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.headers()["docker-content-digest"], d.as_str());
    assert_eq!(got.bytes().await.unwrap().as_ref(), &data[..100]);
    let at_storage = storage.requests();
    let fetched: Vec<_> = at_storage
        .iter()
        .filter(|r| r.path_and_query.contains(&d))
        .collect();
    assert_eq!(fetched.len(), 1, "{at_storage:?}");
    assert!(
        fetched[0].header("authorization").is_none(),
        "credentials followed the redirect"
    );
    assert_eq!(fetched[0].header("range"), Some("bytes=0-99"));

    // With follow_redirects = false the client gets the 307 itself.
    let passing = Shim::start(&format!(
        "[server]\nfollow_redirects = false\n{}",
        backend_toml("primary", &nginx.url(), "")
    ))
    .await;
    let r = http()
        .get(format!("{}/v2/acme/r/blobs/{d}", passing.url()))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::TEMPORARY_REDIRECT);
    let loc = r.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        loc.starts_with(&storage.url()),
        "a foreign Location is left alone: {loc}"
    );
}
