//! Registry token auth for a backend with a `repository_prefix`: the client's token request goes
//! through the shim's `/token/<backend>`, which renames the scopes to the backend's names (see
//! `shim/src/token.rs`). Real docker-registry with `auth.token`, testkit's token service,
//! skopeo and containerd.

use reqwest::{StatusCode, header};
use testkit::{
    containerd::{ConnectionCounter, Containerd},
    oci::OciLayout,
    registry::{Registry, RegistryOptions},
    skopeo,
    token::{SERVICE, TokenServer},
};

use crate::harness::{
    Shim, backend_toml, dir_digests, docker, error_code, http, prefixed_backend_toml,
};
use testkit::http::Sent;

const CREDS: &str = "bob:t0ken-pass";

/// A token-auth backend storing `acme/` under `mirror/`, also answering `GET /v2/`, and an open
/// backend without a prefix (`public/`), behind one shim.
async fn start() -> (TokenServer, Registry, Registry, Shim) {
    let tokens = TokenServer::start("bob", "t0ken-pass").await;
    let backend = Registry::with_tokens(&tokens).await;
    let open = Registry::start(RegistryOptions::default()).await;
    let toml = format!(
        "[server]\nping_backend = \"tokens\"\n{}{}",
        prefixed_backend_toml("tokens", &backend.url(), "acme/", "mirror/"),
        backend_toml("open", &open.url(), "public/")
    );
    let shim = Shim::start(&toml).await;
    (tokens, backend, open, shim)
}

fn image(dir: &std::path::Path) -> (OciLayout, String) {
    let layout = OciLayout::create(dir.join("layout"));
    let digest = layout.file_image("v1", b"prefixed and token-authed").digest;
    (layout, digest)
}

fn basic(creds: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(creds)
    )
}

#[tokio::test]
async fn prefixed_token_backend_logins_work_through_the_shims_token_endpoint() {
    let (tokens, backend, _open, shim) = start().await;
    let c = http();
    let realm = tokens.registry_auth().realm;
    let shim_realm = format!("http://{}/token/tokens", shim.host_port);

    // The challenge a client sees is the backend's, pointed at the shim and in the shim's names.
    for path in ["/", "/acme/app/manifests/v1", "/acme/app/tags/list"] {
        let backend_path = path.replace("/acme/", "/mirror/acme/");
        let direct = c
            .get(format!("{}/v2{backend_path}", backend.url()))
            .sent()
            .await;
        let via = c.get(format!("{}/v2{path}", shim.url())).sent().await;
        assert_eq!(direct.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(via.status(), StatusCode::UNAUTHORIZED, "{path}");
        let direct = direct.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            direct.starts_with(&format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\"")),
            "{direct}"
        );
        let expected = direct
            .replace(&realm, &shim_realm)
            .replace("repository:mirror/acme/", "repository:acme/");
        assert_eq!(via.headers()[header::WWW_AUTHENTICATE], expected, "{path}");
        if path != "/" {
            assert!(
                expected.contains("scope=\"repository:acme/app:pull\""),
                "{expected}"
            );
        }
    }

    let tmp = tempfile::tempdir().unwrap();
    let (layout, digest) = image(tmp.path());
    let err = skopeo::copy(&layout.skopeo_ref("v1"), &shim.docker("acme/app:v1"), &[])
        .await
        .unwrap_err();
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );
    shim.push(&layout, "v1", "acme/app:v1", &["--dest-creds", CREDS])
        .await;
    // Stored under the backend's name, and readable there with the same login.
    let direct_ref = docker(&backend.host_port(), "mirror/acme/app:v1");
    let raw = skopeo::inspect_raw(&direct_ref, &["--creds", CREDS])
        .await
        .unwrap();
    assert_eq!(skopeo::digest_of(&raw), digest);

    // The token service was asked, with skopeo's credentials, for push on the backend's name,
    // and never for a repository by the shim's name.
    let asked = tokens.requests();
    assert!(
        asked.iter().any(|t| t
            .scopes
            .iter()
            .any(|s| { s.starts_with("repository:mirror/acme/app:") && s.contains("push") })
            && t.authorization.as_deref() == Some(basic(CREDS).as_str())),
        "{asked:?}"
    );
    for t in &asked {
        for s in &t.scopes {
            assert!(
                !s.starts_with("repository:") || s.starts_with("repository:mirror/"),
                "the token service was asked for a shim name: {t:?}"
            );
        }
    }

    // Pulled back through the shim: identical to a direct pull.
    let (a, b) = (tmp.path().join("shim"), tmp.path().join("direct"));
    skopeo::copy(
        &shim.docker("acme/app:v1"),
        &format!("dir:{}", a.display()),
        &["--src-creds", CREDS],
    )
    .await
    .unwrap();
    skopeo::copy(
        &direct_ref,
        &format!("dir:{}", b.display()),
        &["--src-creds", CREDS],
    )
    .await
    .unwrap();
    let pulled = dir_digests(&a);
    assert!(pulled.len() >= 3, "{pulled:?}");
    assert_eq!(pulled, dir_digests(&b));

    // A wrong password is the token service's refusal.
    let err = skopeo::copy(
        &shim.docker("acme/app:v1"),
        &format!("dir:{}", tmp.path().join("wrong").display()),
        &["--src-creds", "bob:wrong"],
    )
    .await
    .unwrap_err();
    assert!(
        err.to_lowercase().contains("unauthorized") || err.contains("401"),
        "{err}"
    );

    // containerd with credentials asks by the OAuth2 form (`POST`) first: renamed the same way.
    let before = tokens.requests().len();
    let ctrd = Containerd::start().await;
    let source = format!("{}/acme/app:v1", shim.host_port);
    ctrd.pull(&source, &["--user", CREDS]).await.unwrap();
    let posted: Vec<_> = tokens.requests()[before..]
        .iter()
        .filter(|t| t.method == "POST")
        .cloned()
        .collect();
    assert!(
        posted.iter().any(|t| t.username.as_deref() == Some("bob")
            && t.scopes
                .iter()
                .any(|s| s == "repository:mirror/acme/app:pull")),
        "{posted:?}"
    );
}

#[tokio::test]
async fn the_token_endpoint_relays_only_to_the_realm_a_prefixed_backend_named() {
    let (tokens, backend, _open, shim) = start().await;
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _) = image(tmp.path());
    skopeo::push(
        &layout,
        "v1",
        &backend.host_port(),
        "mirror/acme/app:v1",
        &["--dest-creds", CREDS],
    )
    .await;
    let c = http();
    let elsewhere = ConnectionCounter::start().await;

    // Before any challenge went through this shim (another process handed it out), the shim
    // learns the realm from the backend's own `GET /v2/`. A `realm` in the query is only a
    // parameter passed on: nothing is dialled but the backend's token service. Scopes on names
    // the shim routes elsewhere, or nowhere, and malformed ones are left out.
    let before = tokens.requests().len();
    let answer = c
        .get(format!(
            "{}/token/tokens?service={SERVICE}&scope=repository:acme/app:pull&realm={}/x\
             &scope=repository:public/y:pull&scope=repository:zzz/q:pull+repository:acme/x",
            shim.url(),
            elsewhere.url()
        ))
        .header(header::AUTHORIZATION, basic(CREDS))
        .sent()
        .await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: serde_json::Value = answer.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    assert_eq!(elsewhere.connections(), 0);
    let asked = &tokens.requests()[before..];
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].scopes, ["repository:mirror/acme/app:pull"]);
    assert_eq!(asked[0].service.as_deref(), Some(SERVICE));
    assert_eq!(
        asked[0].authorization.as_deref(),
        Some(basic(CREDS).as_str())
    );
    // The token is the backend's: it reads the repository under the backend's name, directly
    // and through the shim.
    for url in [
        format!("{}/v2/mirror/acme/app/tags/list", backend.url()),
        shim.v2("acme/app/tags/list"),
    ] {
        let tags = c.get(&url).bearer_auth(&token).sent().await;
        assert_eq!(tags.status(), StatusCode::OK, "{url}");
    }

    // The token service's refusal reaches the client as it was given.
    let refused = c
        .get(format!(
            "{}/token/tokens?service={SERVICE}&scope=repository:acme/app:pull",
            shim.url()
        ))
        .header(header::AUTHORIZATION, basic("bob:wrong"))
        .sent()
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // No relay for a backend without a prefix (its challenges name its own realm) or for a
    // name that is no backend; the token service hears nothing of them.
    let before = tokens.requests().len();
    for name in ["open", "nope", "..%2Ftokens"] {
        let resp = c
            .get(format!(
                "{}/token/{name}?scope=repository:acme/app:pull",
                shim.url()
            ))
            .header(header::AUTHORIZATION, basic(CREDS))
            .sent()
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{name}");
        assert_eq!(error_code(resp).await, "NOT_FOUND", "{name}");
    }
    // An OAuth2 form past the limit is refused before anything is sent.
    let oversized = c
        .post(format!("{}/token/tokens", shim.url()))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=password&username=bob&password=t0ken-pass&scope={}",
            "a".repeat(70 * 1024)
        ))
        .sent()
        .await;
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(tokens.requests().len(), before);
}

/// `relay_tokens` on a backend without a prefix: for a token service the shim reaches and its
/// clients do not (an internal Harbor's, say). Clients never see the backend's realm; they ask
/// the shim, which asks the realm for the same scopes.
#[tokio::test]
async fn relay_tokens_keeps_the_token_service_behind_the_shim() {
    let tokens = TokenServer::start("bob", "t0ken-pass").await;
    let backend = Registry::with_tokens(&tokens).await;
    let toml = backend_toml("internal", &backend.url(), "").replacen(
        "\n\n[[route]]",
        "\nrelay_tokens = true\n\n[[route]]",
        1,
    );
    let shim = Shim::start(&toml).await;
    let front = testkit::recorder::Recorder::start(&shim.url()).await;
    let realm = tokens.registry_auth().realm;

    let challenge = http()
        .get(format!("{}/v2/team/app/manifests/v1", front.url()))
        .sent()
        .await;
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let challenge = challenge.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"http://{}/token/internal\",service=\"{SERVICE}\"",
            front.host_port()
        )) && challenge.contains("scope=\"repository:team/app:pull\""),
        "{challenge}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let (layout, digest) = image(tmp.path());
    let via_front = |r: &str| docker(&front.host_port(), r);
    skopeo::copy(
        &layout.skopeo_ref("v1"),
        &via_front("team/app:v1"),
        &["--dest-creds", CREDS],
    )
    .await
    .unwrap();
    let raw = skopeo::inspect_raw(&via_front("team/app:v1"), &["--creds", CREDS])
        .await
        .unwrap();
    assert_eq!(skopeo::digest_of(&raw), digest);

    // skopeo asked the shim for its tokens, with its credentials; the shim asked the realm for
    // the same scopes; no answer the client got named the realm.
    let sent = front.requests();
    assert!(
        sent.iter()
            .any(|r| r.path_and_query.starts_with("/token/internal?")
                && r.header("authorization") == Some(basic(CREDS).as_str())),
        "{sent:?}"
    );
    let asked = tokens.requests();
    assert!(
        asked.iter().any(|t| t
            .scopes
            .iter()
            .any(|s| s.starts_with("repository:team/app:") && s.contains("push"))),
        "{asked:?}"
    );
    assert!(!challenge.contains(&realm));
}

/// A relayed backend that asks for no token: the shim learns that from its `GET /v2/` once and
/// remembers it, so a flood of token requests is not a flood of requests to the backend.
#[tokio::test]
async fn a_backend_without_a_token_service_is_asked_once() {
    let backend = Registry::start(RegistryOptions::default()).await;
    let recorded = testkit::recorder::Recorder::start(&backend.url()).await;
    let toml = backend_toml("internal", &recorded.url(), "").replacen(
        "\n\n[[route]]",
        "\nrelay_tokens = true\n\n[[route]]",
        1,
    );
    let shim = Shim::start(&toml).await;
    let c = http();
    for _ in 0..5 {
        let resp = c
            .get(format!(
                "{}/token/internal?scope=repository:team/app:pull",
                shim.url()
            ))
            .sent()
            .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(error_code(resp).await, "NOT_FOUND");
    }
    let pings = recorded
        .requests()
        .iter()
        .filter(|r| r.path_and_query == "/v2/")
        .count();
    assert_eq!(pings, 1, "{:?}", recorded.requests());
}
