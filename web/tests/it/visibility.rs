//! Private packages: indexed, but absent from every page, search and API answer unless the
//! request carries a reader token.

use testkit::registry::RegistryOptions;

use crate::{
    harness::{Env, READER_TOKEN},
    pages::with_meta,
};

fn meta(name: &str, description: &str) -> String {
    format!(
        "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: {name}\n  annotations:\n    meta.crossplane.io/description: {description}\nspec: {{}}"
    )
}

#[tokio::test]
async fn private_packages_are_seen_only_with_a_reader_token() {
    let env = Env::start().await;
    env.push_image(
        &with_meta("provider-nop-main", &meta("provider-public", "visible")),
        "acme/provider-public",
        "v1.0.0",
    )
    .await;
    // A private package whose CRD no public package has.
    env.push_source(
        "provider-kubernetes-v0.18.0",
        "private/provider-secret",
        "v0.18.0",
    )
    .await;
    env.index_all().await;
    let vis: String = testkit::pg::scalar(
        &env.pool,
        "select visibility from packages where repository = 'private/provider-secret'",
    )
    .await;
    assert_eq!(vis, "private");
    let secret_doc: String = testkit::pg::scalar(&env.pool, "select a.object_digest from api_types a join packages p on p.latest_version_id = a.version_id
         where p.repository = 'private/provider-secret' limit 1").await;

    let bearer = format!("Bearer {READER_TOKEN}");
    let cookie = format!("theme=dark; shimmer_token={READER_TOKEN}");
    let anonymous: &[(&str, &str)] = &[];
    let wrong: &[(&str, &str)] = &[("authorization", "Bearer not-the-token")];
    let with_bearer: &[(&str, &str)] = &[("authorization", &bearer)];
    let with_cookie: &[(&str, &str)] = &[("cookie", &cookie)];

    for (headers, sees) in [
        (anonymous, false),
        (wrong, false),
        (with_bearer, true),
        (with_cookie, true),
    ] {
        let home = env.get_with("/", headers).await;
        let cc = home.headers()["cache-control"].to_str().unwrap().to_owned();
        let home = home.text().await.unwrap();
        assert_eq!(home.contains("private/provider-secret"), sees, "home");
        assert_eq!(
            home.contains("<span id=\"count-packages\">2</span>"),
            sees,
            "count"
        );
        assert_eq!(cc.starts_with("private"), sees, "{cc}");
        for path in [
            "/packages/private/provider-secret".to_owned(),
            "/packages/private/provider-secret/versions/v0.18.0".to_owned(),
            "/api/v1/packages/private/provider-secret".to_owned(),
            format!("/docs/{secret_doc}"),
            format!("/api/v1/objects/{secret_doc}"),
        ] {
            let r = env.get_with(&path, headers).await;
            assert_eq!(r.status().as_u16(), if sees { 200 } else { 404 }, "{path}");
            if sees && path.starts_with("/docs") {
                assert!(
                    r.headers()["cache-control"]
                        .to_str()
                        .unwrap()
                        .starts_with("private"),
                    "a CDN must not keep it"
                );
            }
        }
        for (q, what) in [("provider-secret", "search"), ("Object", "API search")] {
            let s = env
                .json_with(&format!("/api/v1/search?q={q}"), headers)
                .await;
            let hits = s["hits"].as_array().unwrap();
            let found = hits
                .iter()
                .any(|h| h["repository"] == "private/provider-secret");
            assert_eq!(found, sees, "{what}: {s}");
        }
        let status = env.json_with("/api/v1/status", headers).await;
        assert_eq!(status.get("jobs").is_some(), sees);
    }
    // The public package is there for everyone.
    assert_eq!(
        env.get("/packages/acme/provider-public").await.status(),
        200
    );
}

#[tokio::test]
async fn a_backend_that_demands_credentials_makes_its_packages_private() {
    let env = Env::start_with(
        RegistryOptions {
            htpasswd: Some(("alice".into(), "s3cret-pass".into())),
            ..Default::default()
        },
        "",
    )
    .await;
    env.push_source_with_creds(
        "provider-nop-main",
        "acme/provider-nop",
        "v1.0.0",
        "alice:s3cret-pass",
    )
    .await;
    env.index_all().await;
    let vis: String = testkit::pg::scalar(
        &env.pool,
        "select visibility from packages where repository = 'acme/provider-nop'",
    )
    .await;
    assert_eq!(
        vis, "private",
        "the indexer saw the backend refuse anonymous reads"
    );
    assert_eq!(env.get("/packages/acme/provider-nop").await.status(), 404);
    let bearer = format!("Bearer {READER_TOKEN}");
    assert_eq!(
        env.get_with("/packages/acme/provider-nop", &[("authorization", &bearer)])
            .await
            .status(),
        200
    );
}
