//! The pages in a real browser (headless Chromium): styles and the script load under the
//! page's Content-Security-Policy, a field link opens the schema tree at that field, hostile
//! package content never runs, and search works without JavaScript.

use testkit::chromium;

use crate::{harness::Env, pages::hostile_image};

/// Where screenshots go for a person to look at: `target/web-screenshots/`.
fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn pages_work_in_a_real_browser_and_hostile_content_never_runs() {
    let env = Env::start().await;
    env.push_source(
        "provider-kubernetes-v1.2.1",
        "crossplane-contrib/provider-kubernetes",
        "v1.2.1",
    )
    .await;
    env.push_image(&hostile_image(), "acme/provider-hostile", "v1.0.0")
        .await;
    env.index_all().await;

    // A hostile package: none of its script, handlers or links ran (each would have set
    // data-pwned on <body>), and its readme is there as text.
    for path in [
        "/packages/acme/provider-hostile",
        "/packages/acme/provider-hostile/versions/v1.0.0",
        "/",
    ] {
        let dom = chromium::dump_dom(&format!("{}{path}", env.web))
            .await
            .unwrap();
        assert!(dom.contains("<body"), "{dom}");
        assert!(
            !dom.contains("data-pwned"),
            "{path}: hostile content ran:\n{dom}"
        );
        if path != "/" {
            assert!(dom.contains("Hostile readme"), "{dom}");
        }
    }

    // A link to a field deep in a schema opens the tree down to it (app.js, loaded under CSP).
    let object: String = sqlx::query_scalar(
        "select object_digest from api_types where kind = 'Object' and api_group = 'kubernetes.crossplane.io'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let url = format!(
        "{}/docs/{object}#v1alpha2.spec.forProvider.manifest",
        env.web
    );
    let dom = chromium::dump_dom(&url).await.unwrap();
    let forprovider = dom
        .split("<details")
        .find(|d| d.contains("id=\"v1alpha2.spec.forProvider\""))
        .expect("forProvider field");
    let attrs = &forprovider[..forprovider.find('>').unwrap()];
    assert!(
        attrs.contains("open"),
        "the field's ancestors were opened: <details{attrs}>"
    );
    // Without the anchor, only spec is open.
    let dom = chromium::dump_dom(&format!("{}/docs/{object}", env.web))
        .await
        .unwrap();
    let forprovider = dom
        .split("<details")
        .find(|d| d.contains("id=\"v1alpha2.spec.forProvider\""))
        .unwrap();
    assert!(!forprovider[..forprovider.find('>').unwrap()].contains("open"));

    // Search without JavaScript: the form is a GET, the results page lists the kind.
    let dom = chromium::dump_dom(&format!(
        "{}/search?q=Object.kubernetes.crossplane.io",
        env.web
    ))
    .await
    .unwrap();
    assert!(dom.contains("class=\"kind\""), "{dom}");
    assert!(dom.contains(&format!("href=\"/docs/{object}\"")), "{dom}");

    // The hostile CRD's docs: nothing in its descriptions ran.
    let hostile: String =
        sqlx::query_scalar("select object_digest from api_types where kind = 'Hostile'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let dom = chromium::dump_dom(&format!("{}/docs/{hostile}", env.web))
        .await
        .unwrap();
    assert!(dom.contains("hostile field"), "{dom}");
    assert!(
        !dom.contains("data-pwned"),
        "hostile CRD content ran:\n{dom}"
    );

    // A visit: home, a search, a package, a version, a CRD's docs; the rendered text is
    // checked and each page is photographed for a person to look at.
    let dir = screenshot_dir();
    let visit = [
        ("home", "/".to_owned(), "Recently indexed"),
        (
            "search",
            "/search?q=ProviderConfig".to_owned(),
            "ProviderConfig",
        ),
        (
            "package",
            "/packages/crossplane-contrib/provider-kubernetes".to_owned(),
            "Latest version: v1.2.1",
        ),
        (
            "version",
            "/packages/crossplane-contrib/provider-kubernetes/versions/v1.2.1".to_owned(),
            "API types (",
        ),
        (
            "docs",
            format!("/docs/{object}"),
            "Object (kubernetes.crossplane.io)",
        ),
    ];
    for (name, path, text) in visit {
        let url = format!("{}{path}", env.web);
        let dom = chromium::dump_dom(&url).await.unwrap();
        assert!(dom.contains(text), "{name}: {text:?} not in\n{dom}");
        let shot = dir.join(format!("{name}.png"));
        chromium::screenshot(&url, &shot).await.unwrap();
        let png = std::fs::read(&shot).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: {} bytes",
            png.len()
        );
        println!("screenshot of {path}: {}", shot.display());
    }
}
