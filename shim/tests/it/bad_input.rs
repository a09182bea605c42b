//! Untrusted input gets the spec's error code from the shim, and the backend never sees it.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{StatusCode, header};
use testkit::{
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
};

use crate::harness::{Shim, backend_toml, error_code, http};
use testkit::http::Sent;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[tokio::test]
async fn malformed_requests_are_refused_before_reaching_the_backend() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start(&reg.url()).await;
    let toml = format!(
        "[server]\nmax_manifest_bytes = 65536\n{}",
        backend_toml("primary", &rec.url(), "")
    );
    let shim = Shim::start(&toml).await;
    let c = http();
    let base = shim.url();
    let valid = format!("sha256:{}", "a".repeat(64));

    let cases: Vec<(reqwest::RequestBuilder, StatusCode, &str)> = vec![
        (
            c.get(format!("{base}/v2/acme/x/nothing-here")),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            c.get(format!("{base}/v2/acme/x")),
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
        ),
        (
            c.get(format!("{base}/v2/Acme/X/manifests/v1")),
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
        ),
        (
            c.get(format!("{base}/v2/a..b/manifests/v1")),
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
        ),
        (
            c.get(format!("{base}/v2/acme/x/blobs/sha256:123")),
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        ),
        (
            c.get(format!("{base}/v2/acme/x/manifests/md5:zz")),
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        ),
        (
            // A tag the grammar refuses names no manifest: a read is a 404, a push invalid.
            c.get(format!("{base}/v2/acme/x/manifests/-tag")),
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        ),
        (
            c.put(format!("{base}/v2/acme/x/manifests/-tag"))
                .header(header::CONTENT_TYPE, OCI_MANIFEST)
                .body("{}"),
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
        ),
        (
            c.post(format!("{base}/v2/acme/x/manifests/v1")),
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
        ),
        (
            c.put(format!("{base}/v2/acme/x/manifests/v1"))
                .header(header::CONTENT_TYPE, OCI_MANIFEST)
                .body(vec![b' '; 70_000]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
        ),
        (
            // Too large without a Content-Length: caught while reading.
            c.put(format!("{base}/v2/acme/x/manifests/v1"))
                .header(header::CONTENT_TYPE, OCI_MANIFEST)
                .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                    (0..20).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 8192])),
                ))),
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
        ),
        (
            c.put(format!("{base}/v2/acme/x/manifests/v1"))
                .header(header::CONTENT_TYPE, OCI_MANIFEST)
                .body("{not json"),
            StatusCode::BAD_REQUEST,
            "MANIFEST_INVALID",
        ),
        (
            c.put(format!("{base}/v2/acme/x/manifests/{valid}"))
                .header(header::CONTENT_TYPE, OCI_MANIFEST)
                .body("{}"),
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        ),
        (
            c.get(format!("{base}/v2/acme/x/blobs/uploads/~bm90LWEtcGF0aA")),
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            // A session the shim never signed, naming another repository's manifest.
            c.get(format!(
                "{base}/v2/acme/x/blobs/uploads/~{}",
                URL_SAFE_NO_PAD.encode("/v2/secret/repo/manifests/latest")
            )),
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            // `\` is `/` to a URL parser: these would climb to /v2/secret/repo/manifests/latest.
            c.get(format!(
                "{base}/v2/acme/x/blobs/uploads/..%5C..%5C..%5C..%5C..%5Csecret%5Crepo%5Cmanifests%5Clatest"
            )),
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            c.put(format!(
                "{base}/v2/acme/x/blobs%2Fuploads%2F..%5C..%5C..%5C..%5C..%5Csecret%5Crepo%5Cmanifests%5Clatest"
            ))
            .body("not a manifest"),
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        ),
        (
            c.get(format!("{base}/v2/acme/x/blobs/uploads/abc%3Fx=1")),
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
        ),
    ];
    for (i, (req, status, code)) in cases.into_iter().enumerate() {
        let resp = req.sent().await;
        assert_eq!(resp.status(), status, "case {i}");
        if status == StatusCode::METHOD_NOT_ALLOWED {
            // RFC 9110 §15.5.6: a 405 names what is allowed.
            assert_eq!(
                resp.headers()["allow"],
                "GET, HEAD, PUT, DELETE",
                "case {i}"
            );
        }
        assert_eq!(
            resp.headers()["docker-distribution-api-version"],
            "registry/2.0",
            "case {i}"
        );
        assert_eq!(error_code(resp).await, code, "case {i}");
    }
    assert_eq!(
        rec.requests(),
        vec![],
        "the backend was called with bad input"
    );
}

#[tokio::test]
async fn default_manifest_limit_is_4_mib() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let mut body = br#"{"schemaVersion":2,"pad":""#.to_vec();
    body.resize(4 * 1024 * 1024 + 1, b'a');
    let resp = http()
        .put(shim.v2("acme/x/manifests/v1"))
        .header(header::CONTENT_TYPE, OCI_MANIFEST)
        .body(body)
        .sent()
        .await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(resp).await, "SIZE_INVALID");
}

/// Request heads past hyper's limits (a 600 KB header, 150 headers, a 100 KB path) are refused
/// by hyper itself, 431 or 414 with an empty body, before the shim's code runs: there is no
/// envelope, as there is none from docker-registry (Go's net/http) past its own limit. The
/// backend never sees them, and the shim goes on serving.
#[tokio::test]
async fn oversized_request_heads_are_refused_before_reaching_the_backend() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let reg = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start(&reg.url()).await;
    let shim = Shim::start(&backend_toml("primary", &rec.url(), "")).await;
    let c = http();
    let base = shim.url();

    let big = c
        .get(format!("{base}/v2/"))
        .header("x-big", "a".repeat(600_000));
    let mut many = c.get(format!("{base}/v2/"));
    for i in 0..150 {
        many = many.header(format!("x-h{i}"), "v");
    }
    for (what, req) in [("600 KB header", big), ("150 headers", many)] {
        let resp = req.sent().await;
        assert_eq!(
            resp.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "{what}"
        );
    }
    // A URI this long is refused by reqwest itself, so it goes over a raw socket.
    let mut raw = tokio::net::TcpStream::connect(&shim.host_port)
        .await
        .unwrap();
    let path = format!("/v2/{}/manifests/v1", "a".repeat(100_000));
    raw.write_all(format!("GET {path} HTTP/1.1\r\nHost: shim\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    raw.read_to_end(&mut answer).await.unwrap();
    let status_line = String::from_utf8_lossy(&answer);
    let status_line = status_line.lines().next().unwrap_or_default();
    assert_eq!(status_line, "HTTP/1.1 414 URI Too Long");
    assert_eq!(rec.requests(), vec![], "the backend was called");

    let ok = c.get(format!("{base}/v2/")).sent().await;
    assert_eq!(ok.status(), StatusCode::OK);
    // The first request a backend gets is preceded by the shim's anonymous auth probe.
    let seen: Vec<_> = rec
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path_and_query))
        .collect();
    assert_eq!(seen, vec!["GET /v2/", "GET /v2/"], "the shim serves on");
}
