//! `shimmer shim` as a process: draining on SIGTERM, and a log span per request.

use crate::helpers::{ShimProcess, http10_get, push, scratch_layout};
use testkit::{
    registry::{Registry, RegistryOptions},
    skopeo,
};

/// `shimmer shim` on SIGTERM: stops accepting connections at once, finishes the blob download
/// in flight (all of it, the right bytes), then exits 0; afterwards nothing listens.
#[tokio::test]
async fn sigterm_drains_a_download_in_flight_then_exits_zero() {
    use std::time::Duration;
    use testkit::oci::{ImageSpec, LayerSpec};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let (dir, layout) = scratch_layout();
    let image = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::random_gzip(64 * 1024 * 1024, 11)],
        ..Default::default()
    });
    layout.tag("big", &image);
    let manifest: serde_json::Value =
        serde_json::from_slice(&layout.read_blob(&image.digest)).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    push(&layout, "big", &registry, "acme/big:v1", &[]).await;
    // The drain may take far longer than this test waits, so an exit within the wait below is
    // the drain finishing, not timing out.
    // It prints the address it bound (port 0: no race for a free port).
    let mut shim = ShimProcess::configured(
        &dir,
        "shutdown_timeout = \"120s\"\nthreads = 3\n",
        &db.url,
        &registry.url(),
        false,
    )
    .await;
    let (server, addr) = (&mut shim.child, shim.addr.clone());

    // A client that reads slowly: the first 64 KiB of a 64 MiB blob, then nothing for a while.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(
        format!("GET /v2/acme/big/blobs/{layer} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let head_end = loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the response head");
        received.extend_from_slice(&buf[..n]);
        if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {size}\r\n")),
        "{head}"
    );
    let mut body = received.split_off(head_end);

    let pid = server.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    testkit::wait_until(
        "the shim refuses new connections",
        Duration::from_secs(20),
        || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(&addr).await.is_err() }
        },
    )
    .await;
    assert!(
        server.try_wait().unwrap().is_none(),
        "the shim exited with a download in flight"
    );

    while (body.len() as u64) < size {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "the download was cut off at {} of {size} bytes",
            body.len()
        );
        body.extend_from_slice(&buf[..n]);
    }
    assert_eq!(body.len() as u64, size);
    assert_eq!(skopeo::digest_of(&body), layer);
    drop(conn);

    let status = tokio::time::timeout(Duration::from_secs(60), server.wait())
        .await
        .expect("the shim exits once the download is done")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "something still listens on {addr}"
    );
}

/// With JSON logs at debug, every request's events sit in one `shim` span naming its method,
/// the endpoint it is for and the `x-request-id` its answer carries: registry requests and the
/// operational endpoints alike, so one id finds a request in the logs whichever it was. The span
/// names the endpoint (`manifest`, or the matched route), never the raw path, which can carry a
/// signed upload session.
#[tokio::test]
async fn every_request_logs_in_a_span_with_its_request_id() {
    use std::time::Duration;
    use tokio::io::AsyncBufReadExt;

    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let mut shim = ShimProcess::configured(
        &dir,
        "[log]\nformat = \"json\"\nfilter = \"shimmer_shim=debug,tower_http=debug\"\n",
        &db.url,
        &registry.url(),
        true,
    )
    .await;
    let (server, addr) = (&mut shim.child, shim.addr.clone());

    let mut asked = Vec::new();
    fn endpoint_of(path: &str) -> &str {
        match path {
            "/v2/" => "base",
            "/v2/acme/none/manifests/v1" => "manifest",
            other => other,
        }
    }
    for path in ["/v2/", "/healthz", "/v2/acme/none/manifests/v1", "/metrics"] {
        let (head, _) = http10_get(&addr, path).await;
        let id = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-request-id")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("{path}: no x-request-id in {head}"));
        asked.push((endpoint_of(path).to_owned(), id));
    }

    // Each request's start and finish, at debug, in its span.
    let mut logs = tokio::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let mut seen: Vec<(String, String, String)> = Vec::new();
    let wanted = |seen: &[(String, String, String)]| {
        asked
            .iter()
            .all(|(path, id)| seen.iter().filter(|(p, i, _)| p == path && i == id).count() >= 2)
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = logs.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
            let span = &v["span"];
            if span["name"] == "shim" {
                assert!(
                    span.get("path").is_none(),
                    "a span with the raw path: {line}"
                );
                let field = |k: &str| span[k].as_str().unwrap_or_default().to_owned();
                seen.push((
                    field("endpoint"),
                    field("request_id"),
                    v["fields"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
                if wanted(&seen) {
                    break;
                }
            }
        }
    })
    .await;
    for (path, id) in &asked {
        let messages: Vec<&str> = seen
            .iter()
            .filter(|(p, i, _)| p == path && i == id)
            .map(|(_, _, m)| m.as_str())
            .collect();
        assert!(
            messages.contains(&"started processing request")
                && messages.contains(&"finished processing request"),
            "{path} ({id}): {messages:?} in {seen:#?}"
        );
    }
}
