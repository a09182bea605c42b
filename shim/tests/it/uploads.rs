//! Blob uploads by hand, as the spec describes them: chunked, monolithic, mounted; against a
//! backend that answers absolute `Location`s and one that answers relative ones.

use reqwest::{StatusCode, header};
use testkit::{
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
    skopeo::digest_of,
};

use crate::harness::{
    Shim, assert_blob_is, backend_toml, http, paced_body, start_upload, with_query,
};
use testkit::http::Sent;

/// The `Location` of a response, which must point at the shim (relative, no backend host).
fn location(resp: &reqwest::Response, shim: &Shim, backend_host: &str) -> String {
    let loc = resp
        .headers()
        .get(header::LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        !loc.contains(backend_host),
        "Location leaks the backend: {loc}"
    );
    assert!(
        loc.starts_with("/v2/"),
        "Location is not a shim path: {loc}"
    );
    format!("{}{loc}", shim.url())
}

/// Chunked upload, monolithic upload, cross-repository mount and a ranged read, through a shim
/// whose backend stores repositories under `mirror/`, and serves its API under `path` (its
/// `http.prefix`, as behind a load balancer routing by path) when given.
async fn uploads_work(relative_urls: bool, path: Option<&str>) {
    let reg = Registry::start(RegistryOptions {
        relative_urls,
        prefix: path.map(str::to_owned),
        ..Default::default()
    })
    .await;
    let mut toml = backend_toml("primary", &reg.api_base(), "");
    toml = toml.replace("[[route]]", "repository_prefix = \"mirror/\"\n\n[[route]]");
    let shim = Shim::start(&toml).await;
    // As from behind a TLS-terminating load balancer, which adds these to every request. A
    // backend building its `Location`s from them would send the client to itself over https
    // (X-Forwarded-Proto) or to the balancer under the backend's name (X-Forwarded-Host).
    let forwarded: header::HeaderMap = [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "lb.example.com"),
        ("forwarded", "proto=https;host=lb.example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
    .collect();
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .default_headers(forwarded)
        .build()
        .unwrap();
    let base = shim.url();

    // Chunked: POST, three PATCHes, PUT with the digest.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let digest = digest_of(&data);
    let resp = c
        .post(format!("{base}/v2/acme/x/blobs/uploads/"))
        .sent()
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(resp.headers().contains_key("docker-upload-uuid"));
    let mut next = location(&resp, &shim, &reg.host_port());
    let mut offset = 0;
    for chunk in data.chunks(110_000) {
        let end = offset + chunk.len() - 1;
        let resp = c
            .patch(&next)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_RANGE, format!("{offset}-{end}"))
            .body(chunk.to_vec())
            .sent()
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "{}",
            resp.text().await.unwrap()
        );
        assert_eq!(resp.headers()[header::RANGE], format!("0-{end}"));
        next = location(&resp, &shim, &reg.host_port());
        offset = end + 1;
    }
    let status = c.get(&next).sent().await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT, "upload status");
    let resp = c
        .put(with_query(&next, &format!("digest={digest}")))
        .sent()
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["docker-content-digest"], digest.as_str());
    location(&resp, &shim, &reg.host_port());

    // The backend stored it under the mapped name; the shim serves it under its own.
    let direct = c
        .get(format!("{}v2/mirror/acme/x/blobs/{digest}", reg.api_base()))
        .sent()
        .await;
    assert_eq!(direct.status(), StatusCode::OK);
    let got = c
        .get(format!("{base}/v2/acme/x/blobs/{digest}"))
        .sent()
        .await;
    assert_eq!(
        got.headers()[header::CONTENT_LENGTH],
        data.len().to_string().as_str()
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());

    // Range requests pass through.
    let part = c
        .get(format!("{base}/v2/acme/x/blobs/{digest}"))
        .header(header::RANGE, "bytes=10-19")
        .sent()
        .await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        format!("bytes 10-19/{}", data.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &data[10..20]);

    // Cross-repository mount within the backend: 201, nothing uploaded.
    let resp = c
        .post(format!(
            "{base}/v2/acme/y/blobs/uploads/?mount={digest}&from=acme/x"
        ))
        .sent()
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "mount");
    let loc = location(&resp, &shim, &reg.host_port());
    assert!(
        loc.ends_with(&format!("/v2/acme/y/blobs/{digest}")),
        "{loc}"
    );
    let head = c
        .head(format!("{base}/v2/acme/y/blobs/{digest}"))
        .sent()
        .await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        data.len().to_string().as_str()
    );

    // Monolithic upload: one PUT with the whole body. (A single POST with `?digest=` is an
    // optional form docker-registry 2.8 answers with 202 and a session; it passes through too.)
    let small = b"monolithic".to_vec();
    let d2 = digest_of(&small);
    let resp = c
        .post(format!("{base}/v2/acme/y/blobs/uploads/?digest={d2}"))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(small.clone())
        .sent()
        .await;
    assert!(resp.status() == StatusCode::CREATED || resp.status() == StatusCode::ACCEPTED);
    if resp.status() == StatusCode::ACCEPTED {
        let session = location(&resp, &shim, &reg.host_port());
        let resp = c
            .put(with_query(&session, &format!("digest={d2}")))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(small.clone())
            .sent()
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "monolithic PUT");
    }
    let got = c.get(format!("{base}/v2/acme/y/blobs/{d2}")).sent().await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), small.as_slice());

    // Cancelling an upload session.
    let resp = c
        .post(format!("{base}/v2/acme/x/blobs/uploads/"))
        .sent()
        .await;
    let session = location(&resp, &shim, &reg.host_port());
    let resp = c.delete(&session).sent().await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = c.get(&session).sent().await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Blob delete.
    let resp = c
        .delete(format!("{base}/v2/acme/y/blobs/{d2}"))
        .sent()
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn uploads_through_a_backend_with_absolute_locations() {
    uploads_work(false, None).await;
}

#[tokio::test]
async fn uploads_through_a_backend_with_relative_locations() {
    uploads_work(true, None).await;
}

/// Relative `Location`s are not tried under a path: docker-registry 2.8 leaves `http.prefix` out
/// of them (`POST /registry/v2/a/blobs/uploads/` answers `Location: /v2/a/blobs/uploads/…`), so
/// no client, the shim included, can follow them to the registry.
#[tokio::test]
async fn uploads_through_a_backend_under_a_path() {
    uploads_work(false, Some("/registry/")).await;
}

#[tokio::test]
async fn mount_from_another_backend_becomes_a_plain_upload() {
    let (a, b) = (
        Registry::start(RegistryOptions::default()).await,
        Registry::start(RegistryOptions::default()).await,
    );
    let rec = Recorder::start(&b.url()).await;
    let toml = format!(
        "{}{}",
        backend_toml("a", &a.url(), "a/"),
        backend_toml("b", &rec.url(), "b/")
    );
    let shim = Shim::start(&toml).await;
    let d = digest_of(b"x");
    // From another backend's repository, from a name that cannot exist (the spec: a registry
    // that cannot mount answers with an upload session, as docker-registry does), and with the
    // keys percent-encoded (the backend decodes them: `fr%6Fm` is `from` to it).
    let queries = [
        format!("mount={d}&from=a/x"),
        format!("mount={d}&from=Bad_Name"),
        format!("m%6Funt={d}&fr%6Fm=a%2Fx&keep=1"),
    ];
    for query in &queries {
        let resp = http()
            .post(shim.v2(&format!("b/y/blobs/uploads/?{query}")))
            .sent()
            .await;
        assert_eq!(
            resp.status(),
            StatusCode::ACCEPTED,
            "an ordinary upload session ({query})"
        );
    }
    // The shim's own probe (`GET /v2/`) aside, the backend got exactly one request each.
    let sent: Vec<_> = rec
        .requests()
        .into_iter()
        .filter(|r| r.path_and_query != "/v2/")
        .collect();
    assert_eq!(sent.len(), 3, "{sent:?}");
    for s in &sent {
        let q = s.path_and_query.split_once('?').map_or("", |(_, q)| q);
        assert!(
            url::form_urlencoded::parse(q.as_bytes()).all(|(k, _)| k != "mount" && k != "from"),
            "{s:?}"
        );
    }
    // What is not about mounting goes on as written.
    assert!(sent[2].path_and_query.ends_with("?keep=1"), "{:?}", sent[2]);
}

#[tokio::test]
async fn a_percent_encoded_upload_session_goes_back_to_the_backend_as_it_wrote_it() {
    // docker-registry's sessions are UUIDs; another registry may put `+`, `=` or an escaped `/`
    // in its session path. The shim must not decode them on the way back: `abc%2Fx` decoded is
    // a path of two segments, and another session. Labelled stand-in: a recording relay in
    // front of a real registry rewrites the Location of the upload's start.
    let reg = Registry::start(RegistryOptions::default()).await;
    const SESSION: &str = "/v2/acme/enc/blobs/uploads/abc%2Bdef%3D%2Fx";
    let relay = Recorder::start_with_hook(
        &reg.url(),
        std::sync::Arc::new(|req, resp| {
            if req.method == "POST" {
                let loc = format!("{SESSION}?_state=opaque%3D%3D");
                resp.headers.insert(header::LOCATION, loc.parse().unwrap());
            }
        }),
    )
    .await;
    let shim = Shim::start(&backend_toml("primary", &relay.url(), "")).await;
    let c = http();
    let resp = c.post(shim.v2("acme/enc/blobs/uploads/")).sent().await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let next = location(&resp, &shim, &reg.host_port());
    assert!(
        next.ends_with("/v2/acme/enc/blobs/uploads/abc%2Bdef%3D%2Fx?_state=opaque%3D%3D"),
        "{next}"
    );
    // The backend does not know this session (the relay invented it): what matters is the
    // request it got.
    c.patch(&next).body("x").sent().await;
    let patched: Vec<String> = relay
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.path_and_query)
        .collect();
    assert_eq!(patched, [format!("{SESSION}?_state=opaque%3D%3D")]);
}

/// docker's and go-containerregistry's (`crossplane xpkg push`) layer upload: one `PATCH` whose
/// body is streamed with no `Content-Length` (chunked transfer coding), then an empty `PUT` with
/// the digest. The body reaches the backend streamed the same way, and arrives whole.
#[tokio::test]
async fn a_patch_streamed_without_a_length_reaches_the_backend_streamed() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start(&reg.url()).await;
    let shim = Shim::start(&backend_toml("primary", &rec.url(), "")).await;
    let c = http();
    let pieces: Vec<Vec<u8>> = (0..5u8)
        .map(|n| (0..500_000u32).map(|i| (i % 241) as u8 ^ n).collect())
        .collect();
    let whole = pieces.concat();
    let digest = digest_of(&whole);

    let next = start_upload(&shim.url(), "team/streamed").await;
    let resp = c
        .patch(&next)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(paced_body(pieces, std::time::Duration::from_millis(20)))
        .sent()
        .await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        resp.headers()[header::RANGE],
        format!("0-{}", whole.len() - 1)
    );
    let next = location(&resp, &shim, &reg.host_port());
    let resp = c
        .put(with_query(&next, &format!("digest={digest}")))
        .sent()
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let patch = rec
        .requests()
        .into_iter()
        .find(|r| r.method == "PATCH")
        .expect("the PATCH reached the backend");
    assert_eq!(patch.header("transfer-encoding"), Some("chunked"));
    assert_eq!(patch.header("content-length"), None);
    assert_blob_is(&shim, "team/streamed", &digest, &whole).await;
}
