//! Upstreams selected by containerd's `?ns=` parameter, proven with a real containerd pulling
//! through the shim from two real registries that stand in for two registry hosts.

use reqwest::{StatusCode, header};
use testkit::{
    containerd::{ConnectionCounter, Containerd},
    oci::{ImageSpec, IndexSpec, LayerSpec, OciLayout, tar_gz},
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
    skopeo,
};

use crate::harness::{
    Shim, docker, error_code, first_layer, http, private_upstream, push, scratch_layout,
    upstream_toml,
};
use testkit::http::Sent;

fn image(layout: &OciLayout, tag: &str, content: &str) -> testkit::oci::Descriptor {
    layout.file_image(tag, content.as_bytes())
}

#[tokio::test]
async fn containerd_pulls_from_two_upstreams_chosen_by_ns() {
    let (a, b) = (
        Registry::start(RegistryOptions::default()).await,
        Registry::start(RegistryOptions::default()).await,
    );
    let (_tmp, layout) = scratch_layout();
    let one = image(&layout, "one", "served by a");
    let amd = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"amd64 from b")]))],
        ..Default::default()
    });
    let arm = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"arm64 from b")]))],
        ..Default::default()
    });
    let index = layout.add_index(IndexSpec {
        manifests: vec![
            amd.with_platform("linux", "amd64"),
            arm.clone().with_platform("linux", "arm64"),
        ],
        ..Default::default()
    });
    layout.tag("multi", &index);
    push(&layout, "one", &a, "team/one:v1").await;
    skopeo::push(&layout, "multi", &b.host_port(), "team/two:v1", &["--all"]).await;

    let shim = Shim::start(&format!(
        "{}{}",
        upstream_toml("a", "registry-a.test", &a.url()),
        upstream_toml("b", "registry-b.test", &b.url())
    ))
    .await;
    // A relay between containerd and the shim shows what containerd sent.
    let seen = Recorder::start(&shim.url()).await;
    let fallback = ConnectionCounter::start().await;
    let ctrd = Containerd::start().await;
    for host in ["registry-a.test", "registry-b.test"] {
        ctrd.mirror(host, &seen.url(), &fallback.url());
    }

    ctrd.fetch("registry-a.test/team/one:v1", &[])
        .await
        .unwrap();
    ctrd.fetch(&format!("registry-a.test/team/one@{}", one.digest), &[])
        .await
        .unwrap();
    ctrd.fetch("registry-b.test/team/two:v1", &["--all-platforms"])
        .await
        .unwrap();

    assert_eq!(
        fallback.connections(),
        0,
        "containerd never fell back to its server"
    );
    let requests = seen.requests();
    assert!(requests.len() >= 6, "{requests:?}");
    for r in &requests {
        assert!(
            r.path_and_query.contains("ns=registry-a.test")
                || r.path_and_query.contains("ns=registry-b.test"),
            "a request without ns: {r:?}"
        );
    }
    // Each upstream served only its own repository.
    let (log_a, log_b) = (a.log(), b.log());
    assert!(
        log_a.contains("team/one") && !log_a.contains("team/two"),
        "upstream a's log"
    );
    assert!(
        log_b.contains("team/two") && !log_b.contains("team/one"),
        "upstream b's log"
    );
    // Both platforms of the index came from b.
    assert!(
        log_b.contains(&arm.digest)
            || requests
                .iter()
                .any(|r| r.path_and_query.contains(&arm.digest))
    );
}

#[tokio::test]
async fn an_unknown_ns_gets_404_and_is_never_dialled() {
    let a = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&upstream_toml("a", "registry-a.test", &a.url())).await;
    // A listener on the host the client names: the shim must never connect to it.
    let target = ConnectionCounter::start().await;
    let ns = format!("127.0.0.1:{}", target.port);
    let r = http()
        .get(shim.v2(&format!("team/x/manifests/v1?ns={ns}")))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");
    assert_eq!(
        target.connections(),
        0,
        "the shim dialled the host ns named"
    );

    // containerd, told to mirror an unconfigured host through the shim, falls back to `server`.
    let fallback = ConnectionCounter::start().await;
    let ctrd = Containerd::start().await;
    ctrd.mirror("registry-c.test", &shim.url(), &fallback.url());
    assert!(ctrd.fetch("registry-c.test/team/x:v1", &[]).await.is_err());
    assert!(
        fallback.connections() > 0,
        "containerd fell back to its own server"
    );
}

#[tokio::test]
async fn upstreams_get_configured_credentials_never_the_clients_and_are_read_only() {
    let (a, rec, shim) = private_upstream().await;
    let (_tmp, layout) = scratch_layout();
    let d = image(&layout, "v1", "private upstream");
    skopeo::push(
        &layout,
        "v1",
        &a.host_port(),
        "team/p:v1",
        &["--dest-creds", "mirror:upstream-secret"],
    )
    .await;
    let r = http()
        .head(shim.v2("team/p/manifests/v1?ns=registry-a.test"))
        .header(header::ACCEPT, "application/vnd.oci.image.manifest.v1+json")
        .basic_auth("client", Some("client-password"))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["oci-namespace"], "registry-a.test");
    assert_eq!(r.headers()["docker-content-digest"], d.digest.as_str());
    assert!(r.headers().contains_key(header::CONTENT_LENGTH));
    let sent = rec.requests();
    assert!(!sent.is_empty());
    for s in &sent {
        assert_eq!(
            s.header("authorization"),
            Some("Basic bWlycm9yOnVwc3RyZWFtLXNlY3JldA=="),
            "{s:?}"
        );
        assert!(!s.path_and_query.contains("ns="), "ns was forwarded: {s:?}");
    }
    // Pushes through an upstream are refused.
    let r = http()
        .post(shim.v2("team/p/blobs/uploads/?ns=registry-a.test"))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(r).await, "UNSUPPORTED");
}

#[tokio::test]
async fn the_host_in_path_form_reaches_the_same_upstream() {
    let a = Registry::start(RegistryOptions::default()).await;
    let (_tmp, layout) = scratch_layout();
    let d = image(&layout, "v1", "in path");
    push(&layout, "v1", &a, "team/p:v1").await;
    let shim = Shim::start(&upstream_toml("a", "registry-a.test", &a.url())).await;
    // skopeo sends no ns: it names the upstream host in the repository path.
    let raw = skopeo::inspect_raw(&shim.docker("registry-a.test/team/p:v1"), &[])
        .await
        .unwrap();
    assert_eq!(skopeo::digest_of(&raw), d.digest);
    // A host that is not configured is just part of a repository name (no route here: 404).
    let r = http()
        .get(shim.v2("registry-z.test/team/p/manifests/v1"))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "NAME_UNKNOWN");
}

#[tokio::test]
async fn an_upstream_with_token_auth_gets_a_bearer_token_for_the_configured_credentials() {
    let tokens = testkit::token::TokenServer::start("mirror", "upstream-secret").await;
    let up = Registry::with_tokens(&tokens).await;
    let (tmp, layout) = scratch_layout();
    let d = image(&layout, "v1", "behind a token service");
    // skopeo does the token dance itself against the real registry.
    skopeo::push(
        &layout,
        "v1",
        &up.host_port(),
        "team/p:v1",
        &["--dest-creds", "mirror:upstream-secret"],
    )
    .await;
    let blob = first_layer(&layout, &d);
    let cache_dir = tmp.path().join("cache");
    for cached in [false, true] {
        let cache = if cached {
            format!("[cache]\npath = \"{}\"\n", cache_dir.display())
        } else {
            String::new()
        };
        let shim = Shim::start(&format!(
            "{cache}{}username = \"mirror\"\npassword = \"upstream-secret\"\n",
            upstream_toml("t", "registry-t.test", &up.url())
        ))
        .await;
        let before = tokens.requests().len();
        let r = http()
            .get(shim.v2("team/p/manifests/v1?ns=registry-t.test"))
            .header(header::ACCEPT, "application/vnd.oci.image.manifest.v1+json")
            .basic_auth("client", Some("client-password"))
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK, "cached: {cached}");
        assert_eq!(r.headers()["docker-content-digest"], d.digest.as_str());
        let r = http()
            .get(shim.v2(&format!("team/p/blobs/{blob}?ns=registry-t.test")))
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            testkit::skopeo::digest_of(&r.bytes().await.unwrap()),
            blob,
            "the blob arrived whole"
        );
        // A real client through the host-in-path form.
        let out = tmp.path().join(format!("pulled-{cached}"));
        skopeo::copy(
            &docker(&shim.host_port, "registry-t.test/team/p:v1"),
            &format!("dir:{}", out.display()),
            &[],
        )
        .await
        .unwrap();
        // The token service saw shimmer's configured credentials, for the right scope and
        // service, never the client's; and one token served the repository's requests.
        let asked = &tokens.requests()[before..];
        assert!(!asked.is_empty(), "a token was fetched");
        assert!(asked.len() <= 2, "tokens are reused: {asked:?}");
        for t in asked {
            assert_eq!(
                t.authorization.as_deref(),
                Some("Basic bWlycm9yOnVwc3RyZWFtLXNlY3JldA=="),
                "{t:?}"
            );
            assert_eq!(t.scope.as_deref(), Some("repository:team/p:pull"));
            assert_eq!(t.service.as_deref(), Some(testkit::token::SERVICE));
        }
    }
    // Without credentials the token carries no access: the upstream's 401 reaches the client.
    let shim = Shim::start(&upstream_toml("t", "registry-t.test", &up.url())).await;
    let r = http()
        .get(shim.v2("team/p/manifests/v1?ns=registry-t.test"))
        .header(header::ACCEPT, "application/vnd.oci.image.manifest.v1+json")
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_static_token_from_a_file_reaches_the_upstream_as_bearer_never_the_clients_credentials() {
    let up = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start(&up.url()).await;
    let (tmp, layout) = scratch_layout();
    let d = image(&layout, "v1", "token from a file");
    push(&layout, "v1", &up, "team/tok:v1").await;
    let blob = first_layer(&layout, &d);
    let token_file = tmp.path().join("upstream.token");
    std::fs::write(&token_file, "file-token-3f9a\n").unwrap();
    for cached in [false, true] {
        let cache = if cached {
            format!(
                "[cache]\npath = \"{}\"\n",
                tmp.path().join("cache").display()
            )
        } else {
            String::new()
        };
        let shim = Shim::start(&format!(
            "{cache}{}token_file = \"{}\"\n",
            upstream_toml("a", "registry-a.test", &rec.url()),
            token_file.display()
        ))
        .await;
        assert!(
            !format!("{:?}", shim.state.upstreams).contains("file-token-3f9a"),
            "the token is redacted"
        );
        let before = rec.requests().len();
        let r = http()
            .get(shim.v2("team/tok/manifests/v1?ns=registry-a.test"))
            .header(header::ACCEPT, "application/vnd.oci.image.manifest.v1+json")
            .bearer_auth("client-own-token")
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK, "cached: {cached}");
        assert_eq!(r.headers()["docker-content-digest"], d.digest.as_str());
        let r = http()
            .get(shim.v2(&format!("team/tok/blobs/{blob}?ns=registry-a.test")))
            .basic_auth("client", Some("client-password"))
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK, "cached: {cached}");
        assert_eq!(skopeo::digest_of(&r.bytes().await.unwrap()), blob);
        let sent = &rec.requests()[before..];
        assert!(sent.len() >= 2, "cached: {cached}: {sent:?}");
        for s in sent {
            assert_eq!(
                s.header("authorization"),
                Some("Bearer file-token-3f9a"),
                "cached: {cached}: {s:?}"
            );
            assert_eq!(
                s.headers
                    .iter()
                    .filter(|(n, _)| n == "authorization")
                    .count(),
                1,
                "{s:?}"
            );
        }
    }
}
