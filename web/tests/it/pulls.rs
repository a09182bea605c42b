//! Pull counts: the shim counts manifest pulls and the package page and JSON show them.

use std::time::Duration;

use testkit::skopeo;

use crate::harness::Env;

#[tokio::test]
async fn pulls_through_the_shim_are_counted_on_the_package_page_and_json() {
    let env = Env::start().await;
    env.push_plain_nop("acme/provider-nop", "v1.0.0").await;
    env.index_all().await;
    // Pushing and indexing are not pulls.
    let json = env.json("/api/v1/packages/acme/provider-nop").await;
    assert_eq!(json["pulls"], 0, "{json}");

    let out = tempfile::tempdir().unwrap();
    for n in 0..3 {
        skopeo::copy(
            &format!("docker://{}/acme/provider-nop:v1.0.0", env.shim),
            &format!("oci:{}:pull{n}", out.path().join("pulled").display()),
            &[],
        )
        .await
        .unwrap();
    }
    let web = env.web.clone();
    testkit::wait_until(
        "the shim flushed its pull counts",
        Duration::from_secs(30),
        || {
            let web = web.clone();
            async move {
                let r = crate::harness::client()
                    .get(format!("{web}/api/v1/packages/acme/provider-nop"))
                    .send()
                    .await
                    .unwrap();
                let v: serde_json::Value = r.json().await.unwrap();
                v["pulls"].as_i64().unwrap_or(0) >= 3
            }
        },
    )
    .await;
    let json = env.json("/api/v1/packages/acme/provider-nop").await;
    assert_eq!(json["pulls"], 3, "{json}");
    let page = env.text("/packages/acme/provider-nop").await;
    assert!(
        page.contains("<dt>Pulls</dt><dd class=\"pulls\">3</dd>"),
        "{page}"
    );
    let rows = env
        .scalar("select count(*) from package_pulls where repository = 'acme/provider-nop'")
        .await;
    assert_eq!(rows, 1, "one row per repository and day");
}
