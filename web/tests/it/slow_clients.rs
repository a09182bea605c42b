//! `web.header_read_timeout`: the marketplace, like the shim, closes connections that trickle
//! their request head (slowloris) or idle after a request. The slow clients are raw sockets
//! (`testkit::slow_client`), since no real client can be made to send a head this slowly.

use testkit::slow_client::{assert_trickled_head_cut_off, idle_after};

use crate::harness::{bare_web, client};
use testkit::http::Sent;

async fn web(db: &testkit::pg::TestDatabase) -> String {
    bare_web(db, "header_read_timeout = \"1s\"").await
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_disconnected() {
    let db = testkit::pg::fresh_database().await;
    let web = web(&db).await;
    assert_trickled_head_cut_off(&web, || async {
        let ok = client().get(format!("http://{web}/")).sent().await;
        assert_eq!(ok.status(), 200, "others are served meanwhile");
    })
    .await;
}

/// Closed after its answer arrived whole: the home page of the empty marketplace.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let db = testkit::pg::fresh_database().await;
    let web = web(&db).await;
    let got = idle_after(&web, b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
        .await
        .expect("the marketplace should close a connection left idle");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("</html>"), "the page arrived whole: {text}");
}
