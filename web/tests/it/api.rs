//! The JSON API: packages, versions with their APIs, objects, search, status, and its errors.

use crate::harness::Env;
use testkit::http::Sent;

#[tokio::test]
async fn json_api_answers_packages_versions_objects_search_and_status() {
    let env = Env::with_catalogue().await;
    let p = env
        .json("/api/v1/packages/crossplane-contrib/provider-kubernetes")
        .await;
    assert_eq!(p["repository"], "crossplane-contrib/provider-kubernetes");
    assert_eq!(p["package_type"], "Provider");
    assert_eq!(p["latest_version"], "v1.2.1");
    let versions: Vec<&str> = p["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1.2.1", "v0.18.0"]);
    // Times for programs: RFC 3339, to the second, in UTC.
    let rfc3339 = |t: &serde_json::Value| {
        let t = t.as_str().unwrap();
        t.len() == 20
            && &t[10..11] == "T"
            && t.ends_with('Z')
            && t[11..19].matches(':').count() == 2
    };
    assert!(rfc3339(&p["versions"][0]["indexed_at"]), "{p}");

    let v = env
        .json("/api/v1/packages/crossplane-contrib/provider-kubernetes/versions/v1.2.1")
        .await;
    assert_eq!(v["version"], "v1.2.1");
    assert_eq!(v["kind"], "package");
    assert!(rfc3339(&v["indexed_at"]), "{v}");
    // People get minutes.
    let page = env
        .text("/packages/crossplane-contrib/provider-kubernetes/versions/v1.2.1")
        .await;
    assert!(page.contains(" UTC</dd>"), "{page}");
    let apis = v["apis"].as_array().unwrap();
    let stored = env
        .scalar(
            "select count(*) from api_types a join tags t on t.version_id = a.version_id
             join packages p on p.id = t.package_id
             where t.tag = 'v1.2.1' and p.repository = 'crossplane-contrib/provider-kubernetes'",
        )
        .await;
    assert_eq!(apis.len() as i64, stored);
    let object = apis
        .iter()
        .find(|a| a["kind"] == "Object" && a["group"] == "kubernetes.crossplane.io")
        .expect("the Object API");
    let names: Vec<&str> = object["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"v1alpha2"), "{names:?}");
    let docs_url = object["docs_url"].as_str().unwrap();
    assert!(docs_url.starts_with("/docs/sha256:"));
    assert_eq!(env.get(docs_url).await.status(), 200);
    let digest = docs_url.trim_start_matches("/docs/");
    let o = env.json(&format!("/api/v1/objects/{digest}")).await;
    assert_eq!(o["kind"], "CustomResourceDefinition");
    assert_eq!(o["body"]["spec"]["names"]["kind"], "Object");
    assert!(v["bytes_downloaded"].as_i64().unwrap() > 0);
    assert!(v["image_bytes"].as_i64().unwrap() > 0);

    let s = env
        .json("/api/v1/search?q=Object.kubernetes.crossplane.io")
        .await;
    let first = &s["hits"][0];
    assert_eq!(first["type"], "api");
    assert_eq!(
        first["repository"],
        "crossplane-contrib/provider-kubernetes"
    );
    assert_eq!(first["version"], "v1.2.1");
    assert_eq!(first["group"], "kubernetes.crossplane.io");
    assert_eq!(first["kind"], "Object");

    let st = env.json("/api/v1/status").await;
    assert_eq!(
        st["counts"]["done"].as_i64().unwrap(),
        env.scalar("select count(*) from index_jobs where state = 'done'")
            .await
    );
    assert!(st.get("jobs").is_none(), "job details are for readers");

    // Errors: the envelope, the right status, never cached.
    for (path, status, says) in [
        ("/api/v1/search", 400, "q is required"),
        ("/api/v1/search?q=x&page=0", 400, "page must be"),
        ("/api/v1/search?q=x&type=Helm", 400, "type must be one of"),
        (
            "/api/v1/packages/acme/nothing",
            404,
            "No package named acme/nothing",
        ),
        (
            "/api/v1/packages/crossplane-contrib/provider-kubernetes/versions/v0.0.0",
            404,
            "has no version",
        ),
        ("/api/v1/objects/sha256:xyz", 400, "sha256:<64 hex digits>"),
        ("/api/v1/nothing/here", 404, "No such API endpoint"),
    ] {
        let r = env.get(path).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"]["status"], status);
        assert!(
            e["error"]["message"].as_str().unwrap().contains(says),
            "{path}: {e}"
        );
    }
    let long = "x".repeat(300);
    let r = env.get(&format!("/api/v1/search?q={long}")).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_pre_release_is_the_latest_version_only_while_there_is_no_release() {
    let env = Env::start().await;
    env.push_source("provider-kubernetes-v1.2.1", "acme/pre", "v1.3.0-rc.1")
        .await;
    env.index_all().await;
    let latest = || async { env.json("/api/v1/packages/acme/pre").await["latest_version"].clone() };
    assert_eq!(latest().await, "v1.3.0-rc.1", "the only version");
    // A lower release outranks the higher pre-release (semver alone would pick the rc).
    env.push_source("provider-kubernetes-v0.18.0", "acme/pre", "v0.18.0")
        .await;
    env.index_all().await;
    assert_eq!(latest().await, "v0.18.0");
    let page = env.text("/packages/acme/pre").await;
    assert!(page.contains("v0.18.0"), "{page}");

    // A package indexed before the rule: its latest is put right once, by the migrations.
    testkit::pg::exec(
        &env.pool,
        "update packages p set latest_tag = t.tag, latest_version_id = t.version_id
         from tags t where t.package_id = p.id and t.tag = 'v1.3.0-rc.1'",
    )
    .await;
    testkit::pg::exec(&env.pool, "delete from data_fixes").await;
    assert_eq!(latest().await, "v1.3.0-rc.1", "as stored before");
    shimmer_store::migrate(&env.pool).await.unwrap();
    assert_eq!(latest().await, "v0.18.0");
}

#[tokio::test]
async fn install_lines_name_the_pages_own_tag_never_the_moving_latest_and_vary_on_host() {
    let env = Env::start().await;
    // One digest, two tags: `latest` sorts first.
    env.push_plain_nop("acme/two", "latest").await;
    env.push_plain_nop("acme/two", "v1.0.0").await;
    env.index_all().await;
    let v = env.json("/api/v1/packages/acme/two/versions/v1.0.0").await;
    let digest = v["manifest_digest"].as_str().unwrap().to_owned();
    let install = |v: &serde_json::Value| v["install"][0].as_str().unwrap().to_owned();
    assert!(install(&v).ends_with("/acme/two:v1.0.0"), "{v}");
    let by_digest = env
        .json(&format!("/api/v1/packages/acme/two/versions/{digest}"))
        .await;
    assert!(
        install(&by_digest).ends_with("/acme/two:v1.0.0"),
        "{by_digest}"
    );
    let page = env.text("/packages/acme/two/versions/latest").await;
    assert!(
        page.contains("/acme/two:latest</code>"),
        "the page's own tag"
    );
    // The API's definitions name the version the same way.
    let apis = env.json("/api/v1/apis?kind=NopResource").await;
    let definition = &apis["apis"][0]["definitions"][0];
    assert_eq!(definition["version"], "v1.0.0", "{apis}");
    assert_eq!(apis["truncated"], false);

    // Install lines come from the request's Host here (no `[server] public_url`).
    let r = env
        .get_with("/packages/acme/two", &[("host", "elsewhere.example")])
        .await;
    let vary = r.headers()["vary"].to_str().unwrap().to_owned();
    assert!(vary.ends_with(", Host"), "{vary}");
    assert!(r.text().await.unwrap().contains("elsewhere.example:"));
}

#[tokio::test]
async fn unreadable_addresses_get_a_page_or_json_never_a_database_error() {
    let env = Env::start().await;
    // (path, status, JSON?): a NUL used to fail the query (503), a path that is not UTF-8 got
    // axum's plain-text rejection, `/api/v1/` the HTML 404.
    for (path, status, json) in [
        ("/search?q=%00", 400, false),
        ("/api/v1/search?q=a%00b", 400, true),
        ("/api/v1/apis?group=%00", 400, true),
        ("/packages/acme%00/x", 400, false),
        ("/api/v1/packages/%ff", 400, true),
        ("/docs/%ff", 400, false),
        ("/api/v1/", 404, true),
    ] {
        let r = env.get(path).await;
        assert_eq!(r.status().as_u16(), status, "{path}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        let body = r.text().await.unwrap();
        if json {
            assert!(
                content_type.starts_with("application/json"),
                "{path}: {content_type}"
            );
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"]["status"], status, "{path}: {body}");
        } else {
            assert!(
                content_type.starts_with("text/html"),
                "{path}: {content_type}"
            );
            assert!(body.contains(&format!("{status} ")), "{path}: {body}");
        }
    }
    // Other methods: a 405 naming what is allowed, as the API's JSON or a page.
    let c = crate::harness::client();
    for (path, json) in [("/api/v1/packages", true), ("/search?q=x", false)] {
        let r = c.post(format!("{}{path}", env.web)).sent().await;
        assert_eq!(r.status(), 405, "{path}");
        assert_eq!(r.headers()["allow"], "GET, HEAD", "{path}");
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(content_type.starts_with("application/json"), json, "{path}");
    }
    // The catalogue still answers.
    assert_eq!(env.get("/api/v1/packages").await.status(), 200);
}
