//! What the package hub answers beyond its layout (issue 25): the version selector's redirect,
//! the ready install manifest, rejections in plain sight (package page, search, `/status` and its
//! JSON), API hits described, and `/api/v1/apis` in semver order.

use crate::{harness::Env, pages::with_meta};

#[tokio::test]
async fn the_hub_installs_redirects_and_shows_rejections_everywhere() {
    let env = Env::start().await;
    // v1.2.1 indexed before v0.18.0: indexing order is not release order.
    env.push_kubernetes().await;
    let mut broken = with_meta("provider-nop-main", "apiVersion: meta.pkg.crossplane.io/v1");
    broken.package_yaml = b"---\nkind: [unclosed\n".to_vec();
    env.push_image(&broken, "acme/broken", "v1.0.0").await;
    env.index_all().await;
    let package = "/packages/crossplane-contrib/provider-kubernetes";

    // The version selector without its script: `?version=` is a redirect to that version.
    let r = env.get(&format!("{package}?version=v0.18.0")).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("{package}/versions/v0.18.0").as_str()
    );
    let r = env
        .get(&format!("{package}/versions/v1.2.1?version=v0.18.0"))
        .await;
    assert_eq!(
        r.headers()["location"],
        format!("{package}/versions/v0.18.0").as_str()
    );
    for bad in ["", "a/b"] {
        let r = env.get(&format!("{package}?version={bad}")).await;
        assert_eq!(r.status(), 400, "version={bad}");
        assert!(r.text().await.unwrap().contains("version must be one of"));
    }
    let page = env.text(package).await;
    assert!(page.contains("id=\"version-select\""), "{page}");
    assert!(
        page.contains("<option value=\"v0.18.0\">v0.18.0</option>"),
        "{page}"
    );
    // A ready manifest beside the install line, naming the page's own tag.
    let version = env.text(&format!("{package}/versions/v0.18.0")).await;
    assert!(version.contains("apiVersion: pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: provider-kubernetes\nspec:\n  package: "), "{version}");
    assert!(
        version.contains("/crossplane-contrib/provider-kubernetes:v0.18.0\n</code>"),
        "{version}"
    );
    assert!(version.contains("<p class=\"version-title\">Version <strong>v0.18.0</strong> · the latest is <a href=\"/packages/crossplane-contrib/provider-kubernetes/versions/v1.2.1\">v1.2.1</a></p>"), "{version}");

    // A package whose only push was rejected: the reason on its page, in search and on /status.
    let reason: String = testkit::pg::scalar(
        &env.pool,
        "select rejection from versions where kind = 'rejected'",
    )
    .await;
    let escaped = |s: &str| {
        s.replace('"', "&#34;")
            .replace('\'', "&#39;")
            .replace('<', "&#60;")
            .replace('>', "&#62;")
    };
    let first_words: String = reason
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    let broken_page = env.text("/packages/acme/broken").await;
    assert!(
        broken_page.contains("<p class=\"reason\">"),
        "{broken_page}"
    );
    assert!(
        broken_page.contains(&escaped(&first_words)),
        "{first_words} in {broken_page}"
    );
    let search = env.json("/api/v1/search?q=broken").await;
    let hit = &search["hits"][0];
    assert_eq!(hit["repository"], "acme/broken", "{search}");
    assert!(
        hit["rejection"].as_str().unwrap().starts_with(&first_words),
        "{search}"
    );
    let search_page = env.text("/search?q=broken").await;
    assert!(
        search_page.contains("<span class=\"badge rejected\">rejected</span>"),
        "{search_page}"
    );
    let status = env.text("/status").await;
    assert!(
        status.contains("<td id=\"jobs-rejected\">1</td>"),
        "{status}"
    );
    assert!(status.contains("<td id=\"jobs-done\">2</td>"), "{status}");
    assert!(
        status.contains("href=\"/packages/acme/broken/versions/v1.0.0\""),
        "{status}"
    );
    assert!(status.contains(&escaped(&first_words)), "{status}");
    let status = env.json("/api/v1/status").await;
    assert_eq!(status["counts"]["rejected"], 1, "{status}");
    assert_eq!(status["counts"]["done"], 2, "{status}");
    assert_eq!(
        status["rejections"][0]["repository"], "acme/broken",
        "{status}"
    );
    assert_eq!(status["rejections"][0]["rejection"], reason.as_str());

    // An API hit carries the kind's description and its served versions.
    let search = env
        .json("/api/v1/search?q=Object.kubernetes.crossplane.io")
        .await;
    let hit = &search["hits"][0];
    assert_eq!(hit["kind"], "Object", "{search}");
    assert_eq!(
        hit["versions"],
        serde_json::json!(["v1alpha1", "v1alpha2"]),
        "{search}"
    );
    assert!(
        hit["description"].as_str().is_some_and(|d| !d.is_empty()),
        "{search}"
    );

    // Every package's definitions of a kind, the highest release first, whatever the order
    // they were indexed in.
    let apis = env
        .json("/api/v1/apis?group=kubernetes.crossplane.io&kind=Object")
        .await;
    let versions: Vec<&str> = apis["apis"][0]["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1.2.1", "v0.18.0"], "{apis}");
}
