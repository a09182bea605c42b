//! Credentials: a backend's challenge reaches the client; a client's credentials reach only the
//! backend that asked for them.

use reqwest::{StatusCode, header};
use testkit::{
    oci::{ImageSpec, LayerSpec, OciLayout, tar_gz},
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
    skopeo,
    token::TokenServer,
};

use crate::harness::{Shim, backend_toml, dir_digests, docker, http};
use testkit::http::Sent;

#[tokio::test]
async fn basic_auth_backend_challenges_and_credentials_never_reach_the_open_backend() {
    let secure = Registry::with_login("alice", "s3cret-pass").await;
    let open = Registry::start(RegistryOptions::default()).await;
    // A logging relay in front of the real open registry: it records what reached it.
    let open_rec = Recorder::start(&open.url()).await;
    let toml = format!(
        "[server]\nping_backend = \"secure\"\n{}{}",
        backend_toml("secure", &secure.url(), "private/"),
        backend_toml("open", &open_rec.url(), "public/")
    );
    let shim = Shim::start(&toml).await;
    let c = http();

    // Without credentials: the backend's own challenge, unchanged.
    let r = c.get(shim.v2("")).sent().await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let r = c.get(shim.v2("private/x/tags/list")).sent().await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    let image = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"auth")]))],
        ..Default::default()
    });
    layout.tag("v1", &image);

    let err = skopeo::copy(&layout.skopeo_ref("v1"), &shim.docker("private/x:v1"), &[])
        .await
        .unwrap_err();
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
    let creds = ["--dest-creds", "alice:s3cret-pass"];
    shim.push(&layout, "v1", "private/x:v1", &creds).await;
    // skopeo sends the same credentials for every repository on the shim's host.
    shim.push(&layout, "v1", "public/y:v1", &creds).await;
    skopeo::inspect_raw(&docker(&open.host_port(), "public/y:v1"), &[])
        .await
        .unwrap();

    let reached_open = open_rec.requests();
    assert!(
        reached_open.len() >= 4,
        "the push went through the open backend"
    );
    for r in &reached_open {
        assert!(
            r.header("authorization").is_none(),
            "credentials for the secure backend reached the open one: {r:?}"
        );
    }
    // The secure backend did receive them (the push succeeded only with them).
    let with = c
        .get(shim.v2("private/x/tags/list"))
        .basic_auth("alice", Some("s3cret-pass"))
        .sent()
        .await;
    assert_eq!(with.status(), StatusCode::OK);
}

/// `docker login` against a backend with registry token auth: the backend's Bearer challenge
/// reaches the client unchanged, the client fetches a token from the backend's realm itself
/// and sends it through the shim, and the token only ever reaches the backend that asked.
#[tokio::test]
async fn token_auth_backend_challenge_reaches_the_client_and_its_token_reaches_only_that_backend() {
    let tokens = TokenServer::start("bob", "t0ken-pass").await;
    let secure = Registry::with_tokens(&tokens).await;
    let open = Registry::start(RegistryOptions::default()).await;
    // Logging relays: what reached each backend, and what the client sent the shim.
    let secure_rec = Recorder::start(&secure.url()).await;
    let open_rec = Recorder::start(&open.url()).await;
    let toml = format!(
        "[server]\nping_backend = \"secure\"\n{}{}",
        backend_toml("secure", &secure_rec.url(), "private/"),
        backend_toml("open", &open_rec.url(), "public/")
    );
    let shim = Shim::start(&toml).await;
    let front = Recorder::start(&shim.url()).await;
    let c = http();

    // Without credentials: exactly the challenge (and error body) the backend gives directly.
    for path in [
        "/v2/",
        "/v2/private/x/tags/list",
        "/v2/private/x/manifests/v1",
    ] {
        let direct = c.get(format!("{}{path}", secure.url())).sent().await;
        let via = c.get(format!("{}{path}", shim.url())).sent().await;
        assert_eq!(direct.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(via.status(), StatusCode::UNAUTHORIZED, "{path}");
        let challenge = via.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(
            challenge,
            direct.headers()[header::WWW_AUTHENTICATE],
            "{path}"
        );
        assert!(
            challenge.starts_with(&format!(
                "Bearer realm=\"{}\"",
                tokens.registry_auth().realm
            )),
            "{challenge}"
        );
        assert_eq!(
            via.headers()["docker-distribution-api-version"],
            "registry/2.0"
        );
        assert_eq!(via.bytes().await.unwrap(), direct.bytes().await.unwrap());
    }

    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    let image = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"token auth")]))],
        ..Default::default()
    });
    layout.tag("v1", &image);
    let via_front = |r: &str| docker(&front.host_port(), r);

    let err = skopeo::copy(&layout.skopeo_ref("v1"), &via_front("private/x:v1"), &[])
        .await
        .unwrap_err();
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
    let creds = "bob:t0ken-pass";
    skopeo::copy(
        &layout.skopeo_ref("v1"),
        &via_front("private/x:v1"),
        &["--dest-creds", creds],
    )
    .await
    .unwrap();
    // The shim's `GET /v2/` is the secure backend's, so skopeo fetches a token for the open
    // backend's repository too and sends it along.
    skopeo::copy(
        &layout.skopeo_ref("v1"),
        &via_front("public/y:v1"),
        &["--dest-creds", creds],
    )
    .await
    .unwrap();

    // Pull back with the credentials: identical to a direct pull from the backend.
    let (a, b) = (tmp.path().join("shim"), tmp.path().join("direct"));
    skopeo::copy(
        &via_front("private/x:v1"),
        &format!("dir:{}", a.display()),
        &["--src-creds", creds],
    )
    .await
    .unwrap();
    skopeo::copy(
        &docker(&secure.host_port(), "private/x:v1"),
        &format!("dir:{}", b.display()),
        &["--src-creds", creds],
    )
    .await
    .unwrap();
    let pulled = dir_digests(&a);
    assert!(pulled.len() >= 3, "{pulled:?}");
    assert_eq!(pulled, dir_digests(&b));
    let raw = skopeo::inspect_raw(&via_front("private/x:v1"), &["--creds", creds])
        .await
        .unwrap();
    assert_eq!(skopeo::digest_of(&raw), image.digest);

    // skopeo asked the realm itself, with its credentials, for push access to the repository.
    let asked = tokens.requests();
    assert!(
        asked.iter().any(|t| t
            .scopes
            .iter()
            .any(|s| s.starts_with("repository:private/x:") && s.contains("push"))
            && t.authorization
                .as_deref()
                .is_some_and(|a| a.starts_with("Basic "))),
        "{asked:?}"
    );
    let bearer = |r: &testkit::recorder::RecordedRequest| {
        r.header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
    };
    let sent = front.requests();
    assert!(
        sent.iter()
            .any(|r| r.path_and_query.starts_with("/v2/public/y/") && bearer(r)),
        "the client sent its token for the open backend's repository to the shim"
    );
    assert!(
        secure_rec
            .requests()
            .iter()
            .any(|r| r.path_and_query.starts_with("/v2/private/x/") && bearer(r)),
        "the secure backend got the client's token"
    );
    let reached_open = open_rec.requests();
    assert!(
        reached_open
            .iter()
            .any(|r| r.path_and_query.starts_with("/v2/public/y/")),
        "the push went through the open backend"
    );
    for r in &reached_open {
        assert!(
            r.header("authorization").is_none(),
            "a token meant for the secure backend reached the open one: {r:?}"
        );
    }
    skopeo::inspect_raw(&docker(&open.host_port(), "public/y:v1"), &[])
        .await
        .unwrap();
}
