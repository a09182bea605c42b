//! `server.header_read_timeout` against clients that hold connections without completing a
//! request: one that trickles its request head a byte at a time (slowloris) and one that idles
//! after a request. The backend is a real docker-registry; the slow clients are raw sockets
//! (`testkit::slow_client`), since no real client can be made to send a head this slowly.

use std::time::Duration;

use reqwest::StatusCode;
use testkit::{
    registry::Registry,
    slow_client::{assert_trickled_head_cut_off, idle_after},
};

use crate::harness::{Shim, assert_slow_upload_arrives_whole, backend_toml, http};
use testkit::http::Sent;

async fn shim(reg: &Registry) -> Shim {
    let toml = format!(
        "[server]\nheader_read_timeout = \"1s\"\n{}",
        backend_toml("primary", &reg.url(), "")
    );
    Shim::start(&toml).await
}

/// A client that keeps sending, one header byte every 100 ms, but never finishes its head is
/// cut off: the limit is on the whole head, not on silence. A well-behaved client on another
/// connection meanwhile gets its answer.
#[tokio::test]
async fn a_client_trickling_its_request_head_is_disconnected() {
    let reg = Registry::start(Default::default()).await;
    let shim = shim(&reg).await;
    assert_trickled_head_cut_off(&shim.host_port, || async {
        let ok = http().get(shim.v2("")).sent().await;
        assert_eq!(ok.status(), StatusCode::OK, "others are served meanwhile");
    })
    .await;
}

/// A connection left idle after a complete exchange is closed, after its answer arrived whole.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let reg = Registry::start(Default::default()).await;
    let shim = shim(&reg).await;

    let got = idle_after(&shim.host_port, b"GET /v2/ HTTP/1.1\r\nHost: shim\r\n\r\n")
        .await
        .expect("the shim should close a connection left idle");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("docker-distribution-api-version: registry/2.0"),
        "{text}"
    );
}

/// The limit is on heads only: an upload whose body takes three times as long reaches the
/// registry whole.
#[tokio::test]
async fn a_body_slower_than_the_header_timeout_goes_through() {
    let reg = Registry::start(Default::default()).await;
    let shim = shim(&reg).await;
    // Six pieces, 500 ms apart: 3 s in all against a 1 s header timeout.
    let pieces: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 16 * 1024]).collect();
    assert_slow_upload_arrives_whole(&shim, "team/slow", pieces, Duration::from_millis(500)).await;
}

/// HTTP/2 in plain text (h2c, prior knowledge) is refused: hyper's HTTP/2 server has no head
/// or idle timeout, so an h2c connection could be held open for ever. No registry client speaks
/// h2c; HTTP/2 comes over TLS, which a load balancer in front terminates.
#[tokio::test]
async fn an_h2c_connection_is_refused() {
    let reg = Registry::start(Default::default()).await;
    let shim = shim(&reg).await;
    // The client preface, then an empty SETTINGS frame.
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let got = idle_after(&shim.host_port, &preface)
        .await
        .expect("an h2c connection should be closed, not served");
    // A server speaking HTTP/2 would have answered with its own SETTINGS frame (type 4).
    assert!(
        got.len() < 9 || got[3] != 4,
        "the shim answered in HTTP/2: {got:?}"
    );
    let ok = http().get(shim.v2("")).sent().await;
    assert_eq!(ok.status(), StatusCode::OK);
}
