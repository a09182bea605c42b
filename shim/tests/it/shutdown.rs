//! Graceful shutdown: requests in flight finish; new connections are refused.

use reqwest::StatusCode;
use testkit::{
    registry::{Registry, RegistryOptions},
    skopeo::digest_of,
};

use crate::harness::{Shim, backend_toml, http, with_query};
use testkit::http::Sent;

#[tokio::test]
async fn shutdown_drains_a_download_in_flight() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let base = shim.url();
    let c = http();
    let data: Vec<u8> = (0..32 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let d = digest_of(&data);
    let r = c
        .post(format!("{base}/v2/acme/s/blobs/uploads/"))
        .sent()
        .await;
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let r = c
        .put(with_query(&format!("{base}{loc}"), &format!("digest={d}")))
        .body(data.clone())
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let mut resp = c.get(format!("{base}/v2/acme/s/blobs/{d}")).sent().await;
    assert_eq!(resp.status(), StatusCode::OK);
    let first = resp.chunk().await.unwrap().unwrap();
    let stopping = tokio::spawn(shim.shutdown());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        http().get(format!("{base}/v2/")).send().await.is_err(),
        "a new connection was accepted during shutdown"
    );
    let mut got = first.to_vec();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got.len(), data.len());
    assert_eq!(digest_of(&got), d);
    stopping.await.unwrap();
}
