//! The registry client against a real docker-registry 2.8 (no referrers API, token auth from
//! testkit's token service): what it reads is verified, paged, authenticated once per scope,
//! and referrers come from the spec's fallback tag.

use futures_util::StreamExt;
use http::header;
use sha2::{Digest, Sha256};
use shimmer_config::{BackendConfig, Secret};
use shimmer_registry::{Auth, Client, auth::pull_scope, fallback_tag};
use testkit::http::Sent;
use testkit::{
    registry::{Registry, RegistryOptions},
    token::TokenServer,
};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn http_client() -> reqwest::Client {
    shimmer_registry::install_crypto_provider();
    reqwest::Client::new()
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Pushes with plain HTTP, `authorization` on every request (docker-registry's monolithic
/// upload: `POST` then `PUT ?digest=`).
struct Pusher {
    base: String,
    authorization: Option<String>,
    http: reqwest::Client,
}

impl Pusher {
    fn req(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, url);
        match &self.authorization {
            Some(a) => r.header(header::AUTHORIZATION, a),
            None => r,
        }
    }

    async fn blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let started = self.req(reqwest::Method::POST, &url).sent().await;
        assert_eq!(started.status(), 202, "{:?}", started.text().await);
        let location = started.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        let sep = if location.contains('?') { '&' } else { '?' };
        let done = self
            .req(reqwest::Method::PUT, &format!("{location}{sep}digest={d}"))
            .body(bytes.to_vec())
            .sent()
            .await;
        assert_eq!(done.status(), 201);
        d
    }

    /// An image manifest with one layer of `layer` bytes (and `subject`, if given).
    async fn image(&self, repo: &str, tag: &str, layer: &[u8], subject: Option<&str>) -> String {
        let config = self.blob(repo, b"{}").await;
        let layer_digest = self.blob(repo, layer).await;
        let mut m = serde_json::json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
        });
        if let Some(s) = subject {
            m["subject"] = serde_json::json!({"mediaType": MANIFEST, "digest": s, "size": 1});
            m["artifactType"] = "application/vnd.example.sbom".into();
        }
        self.manifest(repo, tag, MANIFEST, &serde_json::to_vec(&m).unwrap())
            .await
    }

    async fn manifest(&self, repo: &str, reference: &str, media: &str, body: &[u8]) -> String {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let put = self
            .req(reqwest::Method::PUT, &url)
            .header(header::CONTENT_TYPE, media)
            .body(body.to_vec())
            .sent()
            .await;
        assert_eq!(put.status(), 201, "{:?}", put.text().await);
        digest(body)
    }
}

#[tokio::test]
async fn reads_are_verified_and_paged() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let push = Pusher {
        base: registry.url(),
        authorization: None,
        http: http_client(),
    };
    let mut tags = Vec::new();
    for i in 0..5 {
        push.image("acme/app", &format!("v{i}"), b"layer bytes", None)
            .await;
        tags.push(format!("v{i}"));
    }
    push.image("acme/other", "latest", b"other", None).await;
    let client = Client::from_config(&BackendConfig::new("r", registry.url().parse().unwrap()))
        .unwrap()
        .with_page_size(2);

    let mut listed = client.tags("acme/app").await.unwrap();
    listed.sort();
    assert_eq!(listed, tags, "every tag once, two a page");
    let mut repos = client.catalog().await.unwrap();
    repos.sort();
    assert_eq!(repos, ["acme/app", "acme/other"]);

    let (bytes, by_tag) = client.manifest("acme/app", "v0").await.unwrap();
    assert_eq!(by_tag, digest(&bytes));
    let (again, by_digest) = client.manifest("acme/app", &by_tag).await.unwrap();
    assert_eq!((again, by_digest), (bytes, by_tag.clone()));

    // A blob read to the end passes its digest check; the same blob corrupted on the
    // registry's disk (a real server serving what its storage holds) fails on the last read.
    let layer = digest(b"layer bytes");
    let read = |c: Client, d: String| async move {
        let mut s = Box::pin(c.blob("acme/app", &d).await.unwrap());
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok::<_, std::io::Error>(out)
    };
    assert_eq!(
        read(client.clone(), layer.clone()).await.unwrap(),
        b"layer bytes"
    );
    let hex = layer.trim_start_matches("sha256:");
    let data = registry.data_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    std::fs::write(&data, b"LAYER BYTES").unwrap();
    let err = read(client.clone(), layer).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");

    let missing = client.manifest("acme/app", "nope").await.unwrap_err();
    assert!(missing.is_manifest_unknown(), "{missing}");
    assert_eq!(
        client.anonymous_can_read("acme/app", &by_tag).await,
        Some(true)
    );
}

#[tokio::test]
async fn bearer_tokens_are_fetched_once_a_scope_and_anonymous_reads_are_refused() {
    let tokens = TokenServer::start("alice", "s3cret").await;
    let registry = Registry::with_tokens(&tokens).await;
    // A push token, earned the way the client earns pull tokens.
    let http = http_client();
    let challenge = http.get(format!("{}/v2/", registry.url())).sent().await;
    let auth = Auth::basic(Some(("alice".into(), Secret::new("s3cret"))));
    let push_token = auth
        .authorize_after(
            &http,
            "test",
            "repository:acme/app:pull,push",
            challenge.headers().get(header::WWW_AUTHENTICATE),
        )
        .await
        .expect("a push token");
    let push = Pusher {
        base: registry.url(),
        authorization: Some(push_token.to_str().unwrap().to_owned()),
        http,
    };
    let pushed = push.image("acme/app", "v1", b"private layer", None).await;

    let mut cfg = BackendConfig::new("r", registry.url().parse().unwrap());
    cfg.username = Some("alice".into());
    cfg.password = Some(Secret::new("s3cret"));
    let client = Client::from_config(&cfg).unwrap();
    let before = tokens.requests().len();
    for _ in 0..3 {
        let (_, d) = client.manifest("acme/app", "v1").await.unwrap();
        assert_eq!(d, pushed);
    }
    let asked: Vec<_> = tokens.requests()[before..].to_vec();
    assert_eq!(asked.len(), 1, "one token for three reads: {asked:?}");
    assert!(
        client
            .auth()
            .authorization_for(&pull_scope("acme/app"))
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Bearer ")
    );
    assert_eq!(
        client.anonymous_can_read("acme/app", &pushed).await,
        Some(false)
    );
}

#[tokio::test]
async fn referrers_come_from_the_fallback_tag_on_a_registry_without_the_api() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let push = Pusher {
        base: registry.url(),
        authorization: None,
        http: http_client(),
    };
    let subject = push.image("acme/app", "v1", b"app", None).await;
    let sbom = push
        .image("acme/app", "sbom", b"sbom", Some(&subject))
        .await;
    let client =
        Client::from_config(&BackendConfig::new("r", registry.url().parse().unwrap())).unwrap();
    assert!(
        client
            .referrers("acme/app", &subject)
            .await
            .unwrap()
            .is_empty(),
        "no index yet"
    );

    // What a client following the spec's fallback procedure writes.
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": INDEX,
        "manifests": [{"mediaType": MANIFEST, "digest": sbom, "size": 1, "artifactType": "application/vnd.example.sbom"}],
    });
    push.manifest(
        "acme/app",
        &fallback_tag(&subject),
        INDEX,
        &serde_json::to_vec(&index).unwrap(),
    )
    .await;
    let found = client.referrers("acme/app", &subject).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["digest"], sbom.as_str());
    assert_eq!(found[0]["artifactType"], "application/vnd.example.sbom");
    let other = digest(b"no such subject");
    assert!(
        client
            .referrers("acme/app", &other)
            .await
            .unwrap()
            .is_empty()
    );
}
