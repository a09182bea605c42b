//! A backend's `read_timeout` on the pass-through path: a backend that never answers, and one
//! that stops sending in the middle of a blob. Both are faults no real registry can be made to
//! show on demand, so the backend here is a hand-written TCP listener that says so.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::harness::{Shim, assert_slow_upload_arrives_whole, error_code, http};
use testkit::http::Sent;

const BLOB: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
const DECLARED: usize = 1 << 20;
const SENT: usize = 1000;

/// Hand-written fake backend: answers `GET /v2/` with `{}`; answers a blob `GET` with a 200
/// declaring 1 MiB, sends 1000 bytes of it and then stalls; never answers anything else.
/// Every connection is held open, so only the shim's read timeout can end a wait.
async fn stalling_backend() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(serve(conn));
        }
    });
    (url, task)
}

async fn serve(mut conn: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 4096];
        let Ok(n @ 1..) = conn.read(&mut chunk).await else {
            return;
        };
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let path = head.split_whitespace().nth(1).unwrap_or("").to_owned();
        if path == "/v2/" {
            let ok =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
            if conn.write_all(ok.as_bytes()).await.is_err() {
                return;
            }
        } else {
            if path.contains("/blobs/") {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {DECLARED}\r\ndocker-content-digest: {BLOB}\r\n\r\n"
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(&[7u8; SENT]).await;
            }
            // Stall: hold the connection without another byte.
            let _ = conn.read(&mut [0u8; 1]).await;
            std::future::pending::<()>().await;
        }
    }
}

async fn shim_with_read_timeout(url: &str) -> Shim {
    Shim::start(&format!(
        "[[backend]]\nname = \"slow\"\nurl = \"{url}\"\nread_timeout = \"500ms\"\n\n\
         [[route]]\nprefix = \"\"\nbackend = \"slow\"\n"
    ))
    .await
}

#[tokio::test]
async fn a_backend_that_never_answers_gets_the_client_a_502_after_the_read_timeout() {
    let (url, _task) = stalling_backend().await;
    let shim = shim_with_read_timeout(&url).await;
    let started = Instant::now();
    let r = http()
        .get(shim.v2("team/app/manifests/v1"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer from the shim, not the client's own timeout");
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(error_code(r).await, "UNAVAILABLE");
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "the shim waited for the read timeout, not less"
    );
}

#[tokio::test]
async fn a_backend_that_stalls_mid_blob_ends_the_transfer_short_after_the_read_timeout() {
    let (url, _task) = stalling_backend().await;
    let shim = shim_with_read_timeout(&url).await;
    let mut r = http()
        .get(shim.v2(&format!("team/app/blobs/{BLOB}")))
        .timeout(Duration::from_secs(30))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-length"], DECLARED.to_string());
    let mut got = 0;
    let ended = loop {
        match r.chunk().await {
            Ok(Some(c)) => got += c.len(),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    assert_eq!(got, SENT, "every byte the backend sent reached the client");
    let error = ended.expect_err("a short body is an error, never a complete transfer");
    assert!(
        !error.is_timeout(),
        "the shim ended the transfer, not the client's 30 s timeout: {error}"
    );
}

/// `read_timeout` bounds silence, not a transfer: a blob upload that keeps moving but takes four
/// times the timeout reaches a real docker-registry whole.
#[tokio::test]
async fn an_upload_longer_than_the_read_timeout_goes_through_while_it_moves() {
    let reg = testkit::registry::Registry::start(Default::default()).await;
    let shim = shim_with_read_timeout(&reg.url()).await;
    // Eight pieces, 250 ms apart: 2 s in all against a 500 ms read timeout.
    let pieces: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 64 * 1024]).collect();
    let took =
        assert_slow_upload_arrives_whole(&shim, "team/slow", pieces, Duration::from_millis(250))
            .await;
    assert!(took >= Duration::from_secs(2));
}
