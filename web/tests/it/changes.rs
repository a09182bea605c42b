//! Breaking changes between versions in the marketplace (issue 27): the indexer stores each
//! release's changes from its predecessor in semver order (again for the next release when an
//! earlier one arrives later), the version page says "N breaking changes since vX" with a
//! changelog, the package page marks the releases that break, the diff page compares any two,
//! and the JSON API answers the same; a private package's diffs stay private.

use crate::harness::{Env, READER_TOKEN};

const REPO: &str = "crossplane-contrib/provider-kubernetes";

#[tokio::test]
async fn releases_carry_their_changes_and_any_two_compare() {
    let env = Env::start().await;
    // Newest first, then the oldest, then the one between: out of release order.
    for (source, tag) in [
        ("provider-kubernetes-v1.2.1", "v1.2.1"),
        ("provider-kubernetes-v0.9.0", "v0.9.0"),
        ("provider-kubernetes-v0.18.0", "v0.18.0"),
    ] {
        env.push_source(source, REPO, tag).await;
        env.index_all().await;
    }
    let from_of = async |tag: &str| -> Option<String> {
        sqlx::query_scalar(
            "select ft.tag from version_diffs d join tags t on t.version_id = d.version_id
             join tags ft on ft.version_id = d.from_version_id where t.tag = $1",
        )
        .bind(tag)
        .fetch_optional(&env.pool)
        .await
        .unwrap()
    };
    assert_eq!(
        from_of("v1.2.1").await.as_deref(),
        Some("v0.18.0"),
        "recomputed when v0.18.0 came"
    );
    assert_eq!(from_of("v0.18.0").await.as_deref(), Some("v0.9.0"));
    assert_eq!(
        from_of("v0.9.0").await,
        None,
        "the first release has no predecessor"
    );

    // v1.2.1 removed spec.publishConnectionDetailsTo from Object's two versions.
    let page = env.text(&format!("/packages/{REPO}/versions/v1.2.1")).await;
    let diff = format!("/packages/{REPO}/diff?from=v0.18.0&#38;to=v1.2.1");
    assert!(page.contains(&format!("<a href=\"{diff}\"><span class=\"badge rejected\">2 breaking changes</span> since v0.18.0</a>")), "{page}");
    let changes = &page[page
        .find("<section class=\"changes\" id=\"changes\">")
        .expect("a changes section")..];
    let changes = &changes[..changes.find("</section>").unwrap()];
    assert!(changes.contains("<h3>Removed</h3>"), "{changes}");
    assert!(
        changes.contains(
            "<li>kubernetes.crossplane.io/Object v1alpha2 spec.publishConnectionDetailsTo</li>"
        ),
        "{changes}"
    );
    assert!(
        changes.contains("<h3>Added</h3>")
            && changes.contains("<li>kubernetes.m.crossplane.io/Object</li>"),
        "{changes}"
    );
    let oldest = env.text(&format!("/packages/{REPO}/versions/v0.9.0")).await;
    assert!(!oldest.contains("id=\"changes\""), "{oldest}");
    let package = env.text(&format!("/packages/{REPO}")).await;
    assert!(
        package.contains(&format!(
            "<a class=\"badge rejected\" href=\"/packages/{REPO}/diff?to=v1.2.1\">2 breaking</a>"
        )),
        "{package}"
    );

    // The diff page: by default the latest against its predecessor; any two on request.
    let default = env.text(&format!("/packages/{REPO}/diff")).await;
    assert!(
        default.contains("<span id=\"diff-breaking\">2</span> breaking changes"),
        "{default}"
    );
    assert!(
        default.contains(
            "<code>field-removed</code></td><td><code>spec.publishConnectionDetailsTo</code>"
        ),
        "{default}"
    );
    assert!(
        default.contains("<option value=\"v0.18.0\" selected>"),
        "{default}"
    );
    // A version against itself: every API unchanged, collapsed.
    let same = env
        .text(&format!("/packages/{REPO}/diff?from=v1.2.1&to=v1.2.1"))
        .await;
    assert!(
        same.contains("The two versions define the same APIs."),
        "{same}"
    );
    assert!(
        same.contains("<details class=\"unchanged\"><summary>9 APIs unchanged</summary>"),
        "{same}"
    );
    let reverse = env
        .text(&format!("/packages/{REPO}/diff?from=v1.2.1&to=v0.18.0"))
        .await;
    assert!(reverse.contains("<code>api-removed</code>"), "{reverse}");
    let r = env
        .get(&format!("/packages/{REPO}/diff?from=v9.9.9&to=v1.2.1"))
        .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("has no version v9.9.9"));
    assert_eq!(
        env.get(&format!("/packages/{REPO}/diff?from=a/b"))
            .await
            .status(),
        400
    );

    // The JSON API: the version's changes since its predecessor, and any two compared.
    let v = env
        .json(&format!("/api/v1/packages/{REPO}/versions/v1.2.1"))
        .await;
    assert_eq!(v["changes_since"]["from"], "v0.18.0", "{v}");
    assert_eq!(v["changes_since"]["breaking"], 2, "{v}");
    let d = env
        .json(&format!(
            "/api/v1/packages/{REPO}/diff?from=v0.9.0&to=v1.2.1"
        ))
        .await;
    assert_eq!(
        (d["from"].as_str(), d["to"].as_str()),
        (Some("v0.9.0"), Some("v1.2.1")),
        "{d}"
    );
    assert!(d["breaking"].as_u64().unwrap() >= 2, "{d}");
    for bad in ["from=v0.9.0&colour=red", "from=v0.9.0&from=v0.18.0"] {
        let r = env
            .get(&format!("/api/v1/packages/{REPO}/diff?{bad}"))
            .await;
        assert_eq!(r.status(), 400, "{bad}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["status"], 400, "{v}");
    }
    let r = env
        .get(&format!("/api/v1/packages/{REPO}/diff?from=v9.9.9"))
        .await;
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].as_str().unwrap().contains("v9.9.9"),
        "{v}"
    );
    let first = &d["changes"][0];
    for key in [
        "api", "version", "path", "change", "breaking", "severity", "detail",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
}

#[tokio::test]
async fn a_private_packages_changes_reach_readers_only() {
    let env = Env::start().await;
    for (source, tag) in [
        ("provider-nop-v0.2.0", "v1.0.0"),
        ("provider-nop-main", "v1.1.0"),
    ] {
        env.push_source(source, "private/provider-nop", tag).await;
        env.index_all().await;
    }
    let bearer = format!("Bearer {READER_TOKEN}");
    for path in [
        "/packages/private/provider-nop/diff",
        "/api/v1/packages/private/provider-nop/diff?from=v1.0.0&to=v1.1.0",
    ] {
        assert_eq!(env.get(path).await.status(), 404, "{path}");
        let r = env.get_with(path, &[("authorization", &bearer)]).await;
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .starts_with("private"),
            "{path}"
        );
    }
    let page = env
        .get_with(
            "/packages/private/provider-nop/versions/v1.1.0",
            &[("authorization", &bearer)],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("breaking changes</span> since v1.0.0"),
        "{page}"
    );
    assert!(
        !env.text("/").await.contains("breaking"),
        "nothing of it on the public home page"
    );
}
