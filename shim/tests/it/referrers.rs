//! The referrers API and `OCI-Subject` pass through.
//!
//! A HAND-WRITTEN FAKE BACKEND, for behaviour the real server cannot produce: docker-registry
//! 2.8 predates distribution spec 1.1, so it has no `referrers/<digest>` endpoint and never
//! answers a manifest `PUT` with `OCI-Subject`. The fake below does only what a 1.1 registry
//! does there (and records every request it gets); everything else in this suite runs against
//! the real registry.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::{Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use testkit::skopeo::digest_of;

use crate::harness::{Shim, backend_toml, http};
use testkit::http::Sent;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A 1.1 registry's referrers and subject behaviour; repository `acme/old` plays a registry
/// without the referrers API (404, after which clients fall back to the tag schema).
struct FakeRegistry {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The referrers index the fake serves, byte for byte (the shim must not re-encode it).
fn referrers_index(subject: &str) -> String {
    format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{INDEX}\",\"manifests\":[{{\"mediaType\":\"{OCI_MANIFEST}\",\
         \"digest\":\"{}\",\"size\":321,\"artifactType\":\"application/vnd.example.sig.v1\",\
         \"annotations\":{{\"subject\":\"{subject}\"}}}}]}}\n",
        digest_of(b"the signature manifest")
    )
}

async fn fake(State(seen): State<Arc<Mutex<Vec<String>>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    seen.lock()
        .unwrap()
        .push(format!("{} {pq}", parts.method.as_str()));
    let path = parts.uri.path();
    let not_found = |code: &str| {
        (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "application/json")],
            format!(r#"{{"errors":[{{"code":"{code}","message":"not here"}}]}}"#),
        )
            .into_response()
    };
    if path == "/v2/" {
        return "{}".into_response();
    }
    if let Some((repo, subject)) = path
        .strip_prefix("/v2/")
        .and_then(|p| p.split_once("/referrers/"))
        && parts.method == Method::GET
    {
        if repo == "acme/old" {
            return not_found("NOT_FOUND");
        }
        let mut resp = Response::new(Body::from(referrers_index(subject)));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, INDEX.parse().unwrap());
        resp.headers_mut()
            .insert(header::ETAG, "\"referrers-v1\"".parse().unwrap());
        if parts
            .uri
            .query()
            .is_some_and(|q| q.contains("artifactType="))
        {
            resp.headers_mut()
                .insert("oci-filters-applied", "artifactType".parse().unwrap());
        }
        return resp;
    }
    if let Some((repo, _)) = path
        .strip_prefix("/v2/")
        .and_then(|p| p.split_once("/manifests/"))
        && parts.method == Method::PUT
    {
        let bytes: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let digest = digest_of(&bytes);
        let mut resp = (
            StatusCode::CREATED,
            [
                (header::LOCATION, format!("/v2/{repo}/manifests/{digest}")),
                (
                    header::HeaderName::from_static("docker-content-digest"),
                    digest.clone(),
                ),
            ],
        )
            .into_response();
        if let Some(subject) = manifest["subject"]["digest"].as_str() {
            resp.headers_mut()
                .insert("oci-subject", subject.parse().unwrap());
        }
        return resp;
    }
    not_found("UNSUPPORTED")
}

impl FakeRegistry {
    async fn start() -> FakeRegistry {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(fake).with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeRegistry { addr, seen, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn referrers_pass_through_verbatim_and_a_404_stays_a_404() {
    let fake = FakeRegistry::start().await;
    let shim = Shim::start(&backend_toml("v11", &fake.url(), "")).await;
    let c = http();
    let subject = digest_of(b"the subject manifest");
    let query = "artifactType=application%2Fvnd.example.sig.v1";

    let r = c
        .get(shim.v2(&format!("acme/art/referrers/{subject}?{query}")))
        .header(header::ACCEPT, INDEX)
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    assert_eq!(r.headers()[header::CONTENT_TYPE], INDEX);
    assert_eq!(r.headers()[header::ETAG], "\"referrers-v1\"");
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(r.text().await.unwrap(), referrers_index(&subject));
    assert!(
        fake.seen()
            .contains(&format!("GET /v2/acme/art/referrers/{subject}?{query}")),
        "the backend did not get the query verbatim: {:?}",
        fake.seen()
    );

    // Without a filter the backend applies none, and the shim adds none.
    let r = c
        .get(shim.v2(&format!("acme/art/referrers/{subject}")))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("oci-filters-applied").is_none());

    // A backend without the API: its 404 reaches the client as a 404.
    let r = c
        .get(shim.v2(&format!("acme/old/referrers/{subject}?{query}")))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        fake.seen()
            .contains(&format!("GET /v2/acme/old/referrers/{subject}?{query}"))
    );
}

#[tokio::test]
async fn a_manifest_push_answers_with_the_backends_oci_subject() {
    let fake = FakeRegistry::start().await;
    let shim = Shim::start(&backend_toml("v11", &fake.url(), "")).await;
    let subject = digest_of(b"the subject manifest");
    let empty = digest_of(b"{}");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig.v1",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 123},
    })
    .to_string();
    let digest = digest_of(manifest.as_bytes());
    let r = http()
        .put(shim.v2(&format!("acme/art/manifests/{digest}")))
        .header(header::CONTENT_TYPE, OCI_MANIFEST)
        .body(manifest)
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["oci-subject"], subject.as_str());
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(
        r.headers()[header::LOCATION],
        format!("/v2/acme/art/manifests/{digest}").as_str()
    );
    assert!(
        fake.seen()
            .contains(&format!("PUT /v2/acme/art/manifests/{digest}"))
    );
}
