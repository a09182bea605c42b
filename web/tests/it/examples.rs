//! The examples on an API type's docs page: never from a package the request may not see, and
//! fixed once the page can be served (the page is immutable).

use crate::{
    harness::{Env, NOP_META, READER_TOKEN},
    pages::with_meta,
};

/// provider-nop (its NopResource CRD) with NopResource examples of these names, or none.
fn nop_with_examples(names: &[&str]) -> testkit::xpkg_image::PackageImage {
    let mut image = with_meta("provider-nop-main", NOP_META);
    image.examples_yaml = (!names.is_empty()).then(|| {
        names
            .iter()
            .map(|n| {
                format!(
                    "apiVersion: nop.crossplane.io/v1alpha1\nkind: NopResource\nmetadata:\n  name: {n}\nspec:\n  forProvider: {{}}\n"
                )
            })
            .collect::<Vec<_>>()
            .join("---\n")
            .into_bytes()
    });
    image
}

#[tokio::test]
async fn docs_examples_never_leak_private_packages_and_never_change_once_served() {
    let env = Env::start().await;
    // A private package is indexed first with the CRD and an example of it ...
    env.push_image(
        &nop_with_examples(&["secret-example"]),
        "private/provider-nop",
        "v1.0.0",
    )
    .await;
    env.index_all().await;
    // ... then a public one that shares the CRD, without examples.
    env.push_image(&nop_with_examples(&[]), "acme/provider-nop", "v1.0.0")
        .await;
    env.index_all().await;
    let digest: String = testkit::pg::scalar(
        &env.pool,
        "select distinct object_digest from api_types where kind = 'NopResource'",
    )
    .await;
    let url = format!("/docs/{digest}");

    let r = env.get(&url).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(r.headers()["etag"], format!("\"{digest}\"").as_str());
    let public_page = r.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&public_page);
    assert!(
        !text.contains("secret-example"),
        "a private package's example on a public page"
    );
    assert!(text.contains("No examples for this kind."), "{text}");

    // The page is one for everyone: it varies on the encoding alone (a CDN keeps one copy), and
    // a reader gets the same bytes. Private examples are on their private version's page, which
    // only readers see.
    assert_eq!(r_vary(&env, &url, None).await, "Accept-Encoding");
    let bearer = format!("Bearer {READER_TOKEN}");
    let r = env.get_with(&url, &[("authorization", &bearer)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["vary"], "Accept-Encoding");
    assert_eq!(r.headers()["etag"], format!("\"{digest}\"").as_str());
    assert_eq!(
        r.bytes().await.unwrap(),
        public_page,
        "a reader's page differs"
    );
    let private = env
        .get_with(
            "/packages/private/provider-nop/versions/v1.0.0",
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(private.status(), 200);
    assert!(private.text().await.unwrap().contains("secret-example"));
    assert_eq!(
        env.get("/packages/private/provider-nop/versions/v1.0.0")
            .await
            .status(),
        404
    );

    // A later public version with examples of the same CRD changes nothing: same bytes, same tag.
    env.push_image(
        &nop_with_examples(&["later-one", "later-two"]),
        "acme/provider-nop",
        "v1.0.1",
    )
    .await;
    env.index_all().await;
    let versions = env
        .json("/api/v1/packages/acme/provider-nop/versions/v1.0.1")
        .await;
    assert_eq!(
        versions["examples"].as_array().unwrap().len(),
        2,
        "the new version's examples are indexed (and listed on its version page)"
    );
    let r = env.get(&url).await;
    assert_eq!(r.headers()["etag"], format!("\"{digest}\"").as_str());
    assert_eq!(r.bytes().await.unwrap(), public_page, "docs page changed");
}

/// The `Vary` header of `url`, fetched with `authorization` if given.
async fn r_vary(env: &Env, url: &str, authorization: Option<&str>) -> String {
    let r = match authorization {
        Some(a) => env.get_with(url, &[("authorization", a)]).await,
        None => env.get(url).await,
    };
    r.headers()["vary"].to_str().unwrap().to_owned()
}
