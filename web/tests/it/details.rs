//! What the version, package, status and docs pages show beyond the basics, the JSON API's
//! cache headers and API-types endpoint, install lines, and malformed query strings.

use testkit::{
    oci::IndexSpec,
    xpkg_image::{self, PackageImage},
};

use crate::{
    harness::{Env, READER_TOKEN},
    pages::with_meta,
};

const META: &str = r#"apiVersion: meta.pkg.crossplane.io/v1
kind: Provider
metadata:
  name: provider-nop
  labels:
    pkg.crossplane.io/provider-family: family-nop
  annotations:
    meta.crossplane.io/maintainer: Nop Maintainers <nop@example.com>
    meta.crossplane.io/source: https://github.com/example/provider-nop
    meta.crossplane.io/license: Apache-2.0
    meta.crossplane.io/description: A provider that does nothing
spec:
  crossplane:
    version: ">=v1.14.0-0""#;

/// A Composition: not allowed in a Provider package (a lint finding), composing two resources.
const COMPOSITION: &str = r#"apiVersion: apiextensions.crossplane.io/v1
kind: Composition
metadata:
  name: xnops.example.com
spec:
  compositeTypeRef:
    apiVersion: example.com/v1alpha1
    kind: XNop
  mode: Pipeline
  pipeline:
  - step: patch-and-transform
    functionRef:
      name: function-patch-and-transform
    input:
      apiVersion: pt.fn.crossplane.io/v1beta1
      kind: Resources
      resources:
      - name: first-nop
        base:
          apiVersion: nop.crossplane.io/v1alpha1
          kind: NopResource
      - name: second-nop
        base:
          apiVersion: nop.crossplane.io/v1alpha1
          kind: NopResource"#;

fn nop_with_composition() -> PackageImage {
    let mut image = with_meta("provider-nop-main", META);
    image.package_yaml.extend_from_slice(b"\n---\n");
    image.package_yaml.extend_from_slice(COMPOSITION.as_bytes());
    image.package_yaml.push(b'\n');
    image
}

#[tokio::test]
async fn version_package_status_and_docs_pages_show_every_fact() {
    let env = Env::start().await;
    let image = nop_with_composition();
    env.push_image(&image, "acme/provider-nop", "v1.0.0").await;
    // A non-semver tag of the same package.
    env.push_image(&image, "acme/provider-nop", "main").await;
    // A multi-platform package: an index of two platform images.
    let amd = xpkg_image::write(
        &env.layout,
        "amd",
        &PackageImage {
            runtime_bytes: Some(4096),
            seed: 1,
            ..image.clone()
        },
    );
    let arm = xpkg_image::write(
        &env.layout,
        "arm",
        &PackageImage {
            runtime_bytes: Some(4096),
            seed: 2,
            ..image.clone()
        },
    );
    let index = env.layout.add_index(IndexSpec {
        manifests: vec![
            amd.clone().with_platform("linux", "amd64"),
            arm.with_platform("linux", "arm64"),
        ],
        ..Default::default()
    });
    env.layout.tag("multi", &index);
    env.push_layout("multi", "acme/provider-multi", "v2.0.0", &["--all"])
        .await;
    env.push_aws_network().await;
    env.index_all().await;

    // The package page: the meta facts, the pull count and the non-semver tags listed apart.
    let page = env.text("/packages/acme/provider-nop").await;
    for fact in [
        "<dt>Maintainer</dt><dd>Nop Maintainers &#60;nop@example.com&#62;</dd>",
        "<dt>Source</dt><dd><a href=\"https://github.com/example/provider-nop\"",
        "<dt>License</dt><dd>Apache-2.0</dd>",
        "<dt>Family</dt><dd><a href=\"/search?q=family-nop\"",
        "<dt>Pulls</dt>",
    ] {
        assert!(page.contains(fact), "{fact} not in\n{page}");
    }
    let other = &page[page.find("id=\"other-tags\"").expect("other tags listed")..];
    let other = &other[..other.find("</tbody>").unwrap()];
    assert!(
        other.contains("href=\"/packages/acme/provider-nop/versions/main\""),
        "{other}"
    );
    let semver = &page[page.find("id=\"semver-versions\"").unwrap()..];
    let semver = &semver[..semver.find("</tbody>").unwrap()];
    assert!(
        semver.contains("v1.0.0") && !semver.contains(">main<"),
        "{semver}"
    );

    // The version page: the Crossplane version constraint, the meta fields, lint findings.
    let version = env
        .text("/packages/acme/provider-nop/versions/v1.0.0")
        .await;
    assert!(version.contains("Crossplane version"), "{version}");
    assert!(version.contains("&#62;=v1.14.0-0"), "{version}");
    assert!(version.contains("Apache-2.0") && version.contains("family-nop"));
    let lint = &version[version
        .find("<section class=\"lint\" id=\"lint\">")
        .expect("lint section")..];
    assert!(
        lint.contains(
            "Composition (apiextensions.crossplane.io/v1) is not allowed in a Provider package"
        ),
        "{lint}"
    );

    // A multi-platform package is one version: its platform manifests (pushed by digest before
    // the index, each indexed on its own) are not listed as untagged versions beside it.
    let package = env.text("/packages/acme/provider-multi").await;
    assert!(package.contains("v2.0.0"), "{package}");
    assert!(!package.contains("id=\"untagged\""), "{package}");
    let api = env.json("/api/v1/packages/acme/provider-multi").await;
    let versions: Vec<&str> = api["versions"]
        .as_array()
        .unwrap_or_else(|| panic!("{api}"))
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v2.0.0"], "{api}");
    // Nor do they define its API types a second and third time.
    let apis = env.json("/api/v1/apis?kind=NopResource").await;
    let multi_definers: Vec<&str> = apis["apis"][0]["definitions"]
        .as_array()
        .unwrap_or_else(|| panic!("{apis}"))
        .iter()
        .filter(|d| d["repository"] == "acme/provider-multi")
        .map(|d| d["version"].as_str().unwrap())
        .collect();
    assert_eq!(multi_definers, ["v2.0.0"], "{apis}");
    // Nor are they counted as versions on the home page.
    let rows: i64 = testkit::pg::scalar(
        &env.pool,
        "select count(*) from versions where kind = 'package'",
    )
    .await;
    let home = env.text("/").await;
    let shown = format!("<span id=\"count-versions\">{}</span>", rows - 2);
    assert!(home.contains(&shown), "{shown} not in\n{home}");
    // A multi-platform package: its index digest and a docker pull line.
    let multi = env
        .text("/packages/acme/provider-multi/versions/v2.0.0")
        .await;
    assert!(multi.contains("<dt>Index digest</dt>"), "{multi}");
    assert!(
        multi.contains(
            "<dt>Platforms</dt><dd><code>linux/amd64</code> <code>linux/arm64</code> </dd>"
        ),
        "{multi}"
    );
    assert!(!multi.contains("Platform image of"), "{multi}");
    // A platform image's own page (by its digest) names the version it is part of.
    let platform = env
        .text(&format!(
            "/packages/acme/provider-multi/versions/{}",
            amd.digest
        ))
        .await;
    assert!(
        platform.contains(
            "<dt>Platform image of</dt><dd><a href=\"/packages/acme/provider-multi/versions/v2.0.0\"><code>v2.0.0</code></a> </dd>"
        ),
        "{platform}"
    );
    let api = env
        .json(&format!(
            "/api/v1/packages/acme/provider-multi/versions/{}",
            amd.digest
        ))
        .await;
    assert_eq!(api["platform_of"][0]["version"], "v2.0.0", "{api}");
    assert_eq!(
        api["platform_of"][0]["manifest_digest"],
        index.digest.as_str(),
        "{api}"
    );
    let api = env
        .json("/api/v1/packages/acme/provider-multi/versions/v2.0.0")
        .await;
    assert_eq!(
        api["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"]),
        "{api}"
    );
    assert!(multi.contains(&index.digest), "{multi}");
    assert!(
        multi.contains("<code>docker pull 127.0.0.1:5000/acme/provider-multi@sha256:"),
        "{multi}"
    );
    assert!(
        multi.contains("<code>crossplane xpkg install provider 127.0.0.1:5000/acme/provider-multi:v2.0.0</code>"),
        "{multi}"
    );

    // A Composition's summary: its composite type, pipeline steps and the resources composed.
    let composition: String = testkit::pg::scalar(
        &env.pool,
        "select digest from objects where class = 'composition' and name = 'xnops.example.com'",
    )
    .await;
    let docs = env.text(&format!("/docs/{composition}")).await;
    assert!(
        docs.contains(
            "<dt>Composite type</dt><dd><a href=\"/search?q=XNop.example.com\">XNop example.com/v1alpha1</a></dd>"
        ),
        "{docs}"
    );
    assert!(
        docs.contains("<li>patch-and-transform <code>function-patch-and-transform</code></li>"),
        "{docs}"
    );
    assert!(
        docs.contains("<li>first-nop: <code>NopResource nop.crossplane.io/v1alpha1</code></li>")
    );
    assert!(
        docs.contains("<li>second-nop: <code>NopResource nop.crossplane.io/v1alpha1</code></li>")
    );
    // A real package's Composition: a function pipeline.
    let network: String = testkit::pg::scalar(
        &env.pool,
        "select digest from objects where class = 'composition'
         and name = 'xnetworks.aws.platform.upbound.io'",
    )
    .await;
    let docs = env.text(&format!("/docs/{network}")).await;
    assert!(
        docs.contains(
            "<li>render-templates <code>crossplane-contrib-function-go-templating</code></li>"
        ),
        "{docs}"
    );

    // The JSON API: a short max-age, an ETag, 304 while it matches.
    for path in [
        "/api/v1/packages/acme/provider-nop",
        "/api/v1/packages/acme/provider-nop/versions/v1.0.0",
        "/api/v1/search?q=NopResource",
    ] {
        let r = env.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cache-control"], "public, max-age=60", "{path}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let etag = r.headers()["etag"].to_str().unwrap().to_owned();
        let r = env.get_with(path, &[("if-none-match", &etag)]).await;
        assert_eq!(r.status(), 304, "{path}");
        assert_eq!(r.headers()["etag"], etag.as_str());
        let r = env.get_with(path, &[("if-none-match", "\"other\"")]).await;
        assert_eq!(r.status(), 200, "{path}");
    }

    // The status page: a failed job and its error, for readers only. (The row is written
    // directly: a job that fails for good takes several backed-off attempts to get there.)
    testkit::pg::exec(
        &env.pool,
        "insert into index_jobs (backend, repository, reference, digest, source, state, attempts,
                                 last_error)
         values ('primary', 'acme/provider-broken', 'v9.9.9', 'sha256:' || repeat('e', 64),
                 'push', 'failed', 5, 'the package layer is not a gzip stream')",
    )
    .await;
    let bearer = format!("Bearer {READER_TOKEN}");
    let r = env.get_with("/status", &[("authorization", &bearer)]).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    let status = r.text().await.unwrap();
    assert!(status.contains("acme/provider-broken"), "{status}");
    assert!(
        status.contains("the package layer is not a gzip stream"),
        "{status}"
    );
    assert!(status.contains("failed"), "{status}");
    let status = env.text("/status").await;
    assert!(
        !status.contains("acme/provider-broken")
            && !status.contains("the package layer is not a gzip stream"),
        "jobs are for readers only: {status}"
    );
    assert!(status.contains("failed"), "the counts are shown: {status}");
}

#[tokio::test]
async fn install_lines_api_types_and_malformed_queries() {
    let env = Env::start().await;
    env.push_plain_nop("acme/provider-nop", "v1.0.0").await;
    env.push_plain_nop("private/provider-nop", "v3.0.0").await;
    env.index_all().await;

    // Install lines name the host the request was addressed to (with the shim's port), never
    // the listen address; a malformed Host header falls back to localhost.
    let path = "/packages/acme/provider-nop/versions/v1.0.0";
    let page = env
        .get_with(path, &[("host", "catalogue.example.test:8080")])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<code>docker pull catalogue.example.test:5000/acme/provider-nop@sha256:"),
        "{page}"
    );
    let json = env.json(&format!("/api/v1{path}")).await;
    let install = json["install"].to_string();
    assert!(
        install.contains("127.0.0.1:5000/acme/provider-nop"),
        "{install}"
    );
    assert!(!install.contains("0.0.0.0"), "{install}");
    let page = env
        .get_with(path, &[("host", "bad_host:80")])
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<code>docker pull localhost:5000/acme/provider-nop@sha256:"),
        "{page}"
    );

    // Malformed query strings: a readable error page, and the API's error envelope.
    let r = env.get("/search?q=a&q=b").await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let body = r.text().await.unwrap();
    assert!(
        body.contains("<h1 id=\"error-title\">400 Bad Request</h1>"),
        "{body}"
    );
    assert!(body.contains("query string could not be read"), "{body}");
    assert!(body.contains("duplicate field"), "{body}");
    let r = env.get("/api/v1/search?q=a&q=b").await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("query string could not be read"),
        "{v}"
    );
    let r = env.get("/api/v1/apis?kind=a&kind=b").await;
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], 400, "{v}");

    // API types by kind and group: each with the versions that define it and its docs URL,
    // private packages only for readers.
    let v = env.json("/api/v1/apis?kind=nopresource").await;
    let apis = v["apis"].as_array().unwrap();
    assert_eq!(apis.len(), 1, "{v}");
    assert_eq!(apis[0]["group"], "nop.crossplane.io");
    assert_eq!(apis[0]["kind"], "NopResource");
    let defs = apis[0]["definitions"].as_array().unwrap();
    assert_eq!(defs.len(), 1, "no private definer: {v}");
    assert_eq!(defs[0]["repository"], "acme/provider-nop");
    assert_eq!(defs[0]["version"], "v1.0.0");
    assert_eq!(
        defs[0]["url"],
        "/packages/acme/provider-nop/versions/v1.0.0"
    );
    let docs_url = defs[0]["docs_url"].as_str().unwrap();
    assert!(docs_url.starts_with("/docs/sha256:"), "{v}");
    assert_eq!(env.get(docs_url).await.status(), 200);
    let by_group = env
        .json("/api/v1/apis?group=nop.crossplane.io&kind=NopResource")
        .await;
    assert_eq!(by_group["apis"], v["apis"]);
    let bearer = format!("Bearer {READER_TOKEN}");
    let r = env
        .get_with(
            "/api/v1/apis?kind=NopResource",
            &[("authorization", &bearer)],
        )
        .await;
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    let v: serde_json::Value = r.json().await.unwrap();
    let repos: Vec<&str> = v["apis"][0]["definitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["repository"].as_str().unwrap())
        .collect();
    assert_eq!(repos, ["acme/provider-nop", "private/provider-nop"], "{v}");
    let none = env.json("/api/v1/apis?kind=NoSuchKind").await;
    assert_eq!(none["apis"], serde_json::json!([]));
    let r = env.get("/api/v1/apis").await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_rejected_version_says_why_and_offers_no_install_line() {
    let env = Env::start().await;
    let mut image = with_meta("provider-nop-main", "apiVersion: meta.pkg.crossplane.io/v1");
    image.package_yaml = b"---\nkind: [unclosed\n".to_vec();
    env.push_image(&image, "acme/broken", "v1.0.0").await;
    env.index_all().await;
    let page = env.text("/packages/acme/broken/versions/v1.0.0").await;
    assert!(page.contains("<strong>Rejected:</strong>"), "{page}");
    assert!(
        page.contains("id=\"digests-heading\">Digests</h2>"),
        "{page}"
    );
    assert!(
        page.contains("<span class=\"badge rejected\">rejected</span>"),
        "{page}"
    );
    assert!(!page.contains("docker pull"), "{page}");
    assert!(!page.contains("xpkg install"), "{page}");
    assert!(page.contains("<dt>Manifest digest</dt>"), "{page}");
    let api = env
        .json("/api/v1/packages/acme/broken/versions/v1.0.0")
        .await;
    assert!(api["rejection"].is_string(), "{api}");
    assert_eq!(api["install"], serde_json::json!([]), "{api}");
}
