//! The pages in a real browser (headless Chromium): styles and the script load under the
//! page's Content-Security-Policy, a field link opens the schema tree at that field, hostile
//! package content never runs, search works without JavaScript, and a person's visit (typing,
//! submitting, clicking) driven over WebDriver.

use testkit::chromium;

use crate::{
    harness::Env,
    pages::hostile_image,
    webdriver::{Browser, ENTER},
};

/// Where screenshots go for a person to look at: `target/web-screenshots/`.
pub(crate) fn screenshot_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test reports what it measured or wrote"
)]
async fn pages_work_in_a_real_browser_and_hostile_content_never_runs() {
    let env = Env::start().await;
    env.push_kubernetes().await;
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
    let object = env.latest_object_crd().await;
    let url = format!(
        "{}/docs/{object}#v1alpha2.spec.providerConfigRef.policy.resolve",
        env.web
    );
    let dom = chromium::dump_dom(&url).await.unwrap();
    let details_attrs = |dom: &str, id: &str| {
        let d = dom
            .split("<details")
            .find(|d| d.contains(&format!("id=\"{id}\"")))
            .unwrap_or_else(|| panic!("{id} field"))
            .to_owned();
        d[..d.find('>').unwrap()].to_owned()
    };
    let attrs = details_attrs(&dom, "v1alpha2.spec.providerConfigRef");
    assert!(
        attrs.contains("open"),
        "the field's ancestors were opened: <details{attrs}>"
    );
    // Without the anchor, spec and the fields a user fills in (forProvider) are open, the rest
    // closed.
    let dom = chromium::dump_dom(&format!("{}/docs/{object}", env.web))
        .await
        .unwrap();
    assert!(details_attrs(&dom, "v1alpha2.spec.forProvider").contains("open"));
    assert!(!details_attrs(&dom, "v1alpha2.spec.providerConfigRef").contains("open"));

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
    let hostile: String = testkit::pg::scalar(
        &env.pool,
        "select object_digest from api_types where kind = 'Hostile'",
    )
    .await;
    let dom = chromium::dump_dom(&format!("{}/docs/{hostile}", env.web))
        .await
        .unwrap();
    assert!(dom.contains("hostile field"), "{dom}");
    assert!(
        !dom.contains("data-pwned"),
        "hostile CRD content ran:\n{dom}"
    );

    // A person's visit, driven over WebDriver: type a kind into the home page's search box and
    // submit, click the package in the results, go to an older version, open a CRD's docs. The
    // rendered text is checked at each step and each page photographed for a person to look at.
    let dir = screenshot_dir();
    let browser = Browser::start().await;
    let shoot = async |name: &str| {
        let png = browser.screenshot().await;
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{name}: {} bytes",
            png.len()
        );
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        println!("screenshot of {name}: {}", path.display());
    };
    browser.goto(&format!("{}/", env.web)).await;
    browser.wait_for_text("Recently indexed").await;
    shoot("home").await;

    let q = browser
        .find("css selector", ".hero form input[name=q]")
        .await;
    browser.type_text(&q, "ProviderConfig").await;
    browser.type_text(&q, ENTER).await;
    let text = browser.wait_for_text("results").await;
    assert!(browser.url().await.contains("/search?q=ProviderConfig"));
    assert!(text.contains("ProviderConfig"), "{text}");
    assert!(
        text.contains("crossplane-contrib/provider-kubernetes"),
        "{text}"
    );
    shoot("search").await;

    let hit = browser
        .find(
            "css selector",
            "li.hit-api a[href^='/packages/crossplane-contrib/provider-kubernetes']",
        )
        .await;
    browser.click(&hit).await;
    browser.wait_for_text("APIs (").await;
    let title = browser.find("css selector", ".package-header h1 a").await;
    browser.click(&title).await;
    let text = browser.wait_for_text("Latest version: v1.2.1").await;
    assert!(
        browser
            .url()
            .await
            .ends_with("/packages/crossplane-contrib/provider-kubernetes"),
        "{}",
        browser.url().await
    );
    assert!(text.contains("v0.18.0"), "{text}");
    shoot("package").await;

    let version = browser.find("link text", "v0.18.0").await;
    browser.click(&version).await;
    let text = browser.wait_for_text("APIs (").await;
    assert!(
        browser.url().await.ends_with("/versions/v0.18.0"),
        "{}",
        browser.url().await
    );
    assert!(text.contains("Object"), "{text}");
    shoot("version").await;

    let docs = browser
        .find(
            "xpath",
            "//a[contains(@class, 'api-link') and normalize-space(.)='Object']",
        )
        .await;
    browser.click(&docs).await;
    let text = browser
        .wait_for_text("Object (kubernetes.crossplane.io)")
        .await;
    // The API's page within the version: the version's APIs listed beside it, a way back.
    assert!(
        browser
            .url()
            .await
            .ends_with("/versions/v0.18.0/apis/kubernetes.crossplane.io/Object"),
        "{}",
        browser.url().await
    );
    assert!(
        text.contains("crossplane-contrib/provider-kubernetes v0.18.0"),
        "{text}"
    );
    assert!(text.contains("Examples"), "{text}");
    shoot("docs").await;
    browser.quit().await;
}
