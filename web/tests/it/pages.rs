//! The HTML pages: what they show, their caching headers, and hostile package content.

use base64::Engine;
use testkit::{xpkg_image, xpkg_source};

use crate::harness::{Env, client};
use testkit::http::Sent;

/// The provider-nop source with its meta replaced by `meta`.
pub fn with_meta(source: &str, meta: &str) -> xpkg_image::PackageImage {
    let mut image = xpkg_image::from_source(&xpkg_source::testdata_root().join(source));
    let text = String::from_utf8(image.package_yaml.clone()).unwrap();
    let rest: Vec<&str> = text.split("\n---\n").skip(1).collect();
    image.package_yaml = format!("---\n{meta}\n---\n{}", rest.join("\n---\n")).into_bytes();
    image
}

pub const HOSTILE_META: &str = r#"apiVersion: meta.pkg.crossplane.io/v1
kind: Provider
metadata:
  name: provider-hostile
  annotations:
    friendly-name.meta.crossplane.io: "<img src=x onerror=\"document.body.dataset.pwned=1\">Hostile"
    meta.crossplane.io/maintainer: "\"><script>document.body.dataset.pwned=2</script>"
    meta.crossplane.io/source: "javascript:document.body.dataset.pwned=3"
    meta.crossplane.io/description: "<script>document.body.dataset.pwned=4</script> A provider"
    meta.crossplane.io/iconURI: "data:image/svg+xml;base64,PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnPjxzY3JpcHQ+YWxlcnQoMSk8L3NjcmlwdD48L3N2Zz4="
    meta.crossplane.io/readme: |
      # Hostile readme

      <script>document.body.dataset.pwned=5</script>
      <a href="javascript:document.body.dataset.pwned=6">click</a>
      <b onclick="document.body.dataset.pwned=7">bold text</b>
      [link](javascript:document.body.dataset.pwned=8)
      <iframe src="https://example.invalid"></iframe>
      <img src="x" onerror="document.body.dataset.pwned=9">
      <style>body { display: none }</style>

      A [safe link](https://example.com).
spec: {}"#;

/// A CRD whose descriptions and field names carry markup and script.
pub const HOSTILE_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: hostiles.evil.example.com
spec:
  group: evil.example.com
  names: {kind: Hostile, plural: hostiles, listKind: HostileList, singular: hostile}
  scope: Cluster
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: "<script>document.body.dataset.pwned=10</script>"
        properties:
          spec:
            type: object
            description: "<img src=x onerror=\"document.body.dataset.pwned=11\"> [x](javascript:document.body.dataset.pwned=12) <b onclick=\"document.body.dataset.pwned=14\">hostile field</b>"
            properties:
              "<b onmouseover=document.body.dataset.pwned=15>f</b>":
                type: string
                description: "<a href=\"javascript:document.body.dataset.pwned=13\">y</a>"
                enum: ["<script>document.body.dataset.pwned=16</script>"]"#;

/// provider-nop with a hostile meta (readme, description, names, icon) and a hostile CRD.
pub fn hostile_image() -> xpkg_image::PackageImage {
    let mut image = with_meta("provider-nop-main", HOSTILE_META);
    image.package_yaml.extend_from_slice(b"\n---\n");
    image.package_yaml.extend_from_slice(HOSTILE_CRD.as_bytes());
    image.package_yaml.push(b'\n');
    image
}

#[tokio::test]
async fn pages_show_packages_versions_apis_and_docs() {
    let env = Env::with_catalogue().await;
    let db_packages = env
        .scalar("select count(*) from packages where latest_version_id is not null")
        .await;
    let missing: Vec<(String, String)> = testkit::pg::rows(&env.pool, "select p.repository, coalesce(string_agg(v.kind || ':' || coalesce(v.rejection, ''), ','), '')
         from packages p left join versions v on v.package_id = p.id
         group by p.repository").await;
    assert_eq!(db_packages, 4, "packages and their versions: {missing:?}");
    let db_apis = env
        .scalar(
            "select count(*) from api_types a join packages p on p.latest_version_id = a.version_id",
        )
        .await;

    let home = env.text("/").await;
    assert!(
        home.contains(&format!("<span id=\"count-packages\">{db_packages}</span>")),
        "{home}"
    );
    assert!(
        home.contains(&format!("<span id=\"count-apis\">{db_apis}</span>")),
        "{home}"
    );
    for repo in [
        "crossplane-contrib/provider-kubernetes",
        "crossplane-contrib/function-patch-and-transform",
        "upbound/configuration-aws-network",
    ] {
        assert!(
            home.contains(&format!("href=\"/packages/{repo}\"")),
            "{repo} on home"
        );
    }

    // Package: versions newest first, the latest version's APIs linking to their docs.
    let pkg = env
        .text("/packages/crossplane-contrib/provider-kubernetes")
        .await;
    let list = &pkg[pkg.find("id=\"semver-versions\"").expect("a version list")..];
    let v1 = list.find(">v1.2.1</a>").expect("v1.2.1 listed");
    let v0 = list.find(">v0.18.0</a>").expect("v0.18.0 listed");
    assert!(v1 < v0, "semver order");
    assert!(pkg.contains("Latest version: v1.2.1"), "{pkg}");
    let latest_apis = env
        .scalar(
            "select count(*) from api_types a join packages p on p.latest_version_id = a.version_id
             where p.repository = 'crossplane-contrib/provider-kubernetes'",
        )
        .await;
    assert_eq!(
        pkg.matches("class=\"api-link\"").count() as i64,
        latest_apis
    );

    // Version page: install line, digests, cost, APIs (v0.18.0 has no examples; v1.2.1 does).
    let latest = env
        .text("/packages/crossplane-contrib/provider-kubernetes/versions/v1.2.1")
        .await;
    assert!(latest.contains("Examples ("), "examples listed");
    let page = env
        .text("/packages/crossplane-contrib/provider-kubernetes/versions/v0.18.0")
        .await;
    assert!(!page.contains("Examples ("));
    assert!(
        page.contains("crossplane xpkg install provider ")
            && page.contains("/crossplane-contrib/provider-kubernetes:v0.18.0"),
        "{page}"
    );
    let digest: String = testkit::pg::scalar(&env.pool, "select v.manifest_digest from versions v join tags t on t.version_id = v.id where t.tag = 'v0.18.0'").await;
    assert!(page.contains(&digest));
    assert!(
        page.contains("id=\"cost\">To index this version shimmer read "),
        "{page}"
    );
    // The same page by digest.
    let by_digest = env
        .get(&format!(
            "/packages/crossplane-contrib/provider-kubernetes/versions/{digest}"
        ))
        .await;
    assert_eq!(by_digest.status(), 200);

    // Docs of the Object CRD: a field tree with anchors, its examples.
    let object: String = testkit::pg::scalar(&env.pool, "select a.object_digest from api_types a join packages p on p.latest_version_id = a.version_id
         where p.repository = 'crossplane-contrib/provider-kubernetes'
           and a.kind = 'Object' and a.api_group = 'kubernetes.crossplane.io'").await;
    let docs = env.text(&format!("/docs/{object}")).await;
    assert!(
        docs.contains("<h1 class=\"docs-title\">Object (kubernetes.crossplane.io)</h1>"),
        "{docs}"
    );
    assert!(
        docs.contains("id=\"v1alpha2.spec.forProvider.manifest\""),
        "field anchor"
    );
    assert!(
        docs.contains("href=\"#v1alpha2.spec.forProvider.manifest\""),
        "field link"
    );
    assert!(docs.contains("<span class=\"required\">required</span>"));
    assert!(
        docs.contains("x-kubernetes-embedded-resource")
            || docs.contains("x-kubernetes-preserve-unknown-fields")
    );
    assert!(
        docs.contains("kind: Object"),
        "an example of the kind is shown"
    );

    // A Configuration: dependencies with constraints, a Composition summary.
    let conf = env
        .text("/packages/upbound/configuration-aws-network")
        .await;
    assert!(conf.contains("Dependencies"), "{conf}");
    assert!(conf.contains("provider-aws-ec2"), "{conf}");
    let composition: String = testkit::pg::scalar(
        &env.pool,
        "select o.digest from objects o where o.class = 'composition' limit 1",
    )
    .await;
    let comp = env.text(&format!("/docs/{composition}")).await;
    assert!(
        comp.contains("Composite type") && comp.contains("Mode"),
        "{comp}"
    );

    // Real 404 pages that say what is missing and nothing internal.
    for (path, says) in [
        ("/packages/acme/nothing", "No package named acme/nothing"),
        (
            "/packages/crossplane-contrib/provider-kubernetes/versions/v9.9.9",
            "has no version v9.9.9",
        ),
        (
            "/docs/sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "No object",
        ),
        ("/docs/sha256:not-a-digest", "Docs addresses look like"),
        ("/no/such/page", "There is no page"),
        ("/static/style.0000.css", "No such file"),
    ] {
        let r = env.get(path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        let body = r.text().await.unwrap();
        assert!(body.contains(says), "{path}: {body}");
        assert!(body.contains("<h1 id=\"error-title\">404 Not Found</h1>"));
    }
    let r = env.get("/search?q=x&page=nope").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("page must be a number"));
}

#[tokio::test]
async fn docs_are_content_addressed_immutable_and_shared_between_versions() {
    let env = Env::start().await;
    let meta = |description: &str| {
        format!(
            "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: provider-nop\n  annotations:\n    meta.crossplane.io/description: {description}\nspec: {{}}"
        )
    };
    env.push_image(
        &with_meta("provider-nop-main", &meta("first")),
        "acme/provider-nop",
        "v1.0.0",
    )
    .await;
    env.push_image(
        &with_meta("provider-nop-main", &meta("second")),
        "acme/provider-nop",
        "v1.0.1",
    )
    .await;
    env.index_all().await;
    let a = env
        .json("/api/v1/packages/acme/provider-nop/versions/v1.0.0")
        .await;
    let b = env
        .json("/api/v1/packages/acme/provider-nop/versions/v1.0.1")
        .await;
    assert_ne!(a["manifest_digest"], b["manifest_digest"]);
    let docs_a: Vec<&str> = a["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["docs_url"].as_str().unwrap())
        .collect();
    let docs_b: Vec<&str> = b["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["docs_url"].as_str().unwrap())
        .collect();
    assert!(!docs_a.is_empty());
    assert_eq!(docs_a, docs_b, "two versions sharing a CRD link to one URL");
    let url = docs_a[0];
    let digest = url.trim_start_matches("/docs/");
    assert!(digest.starts_with("sha256:") && digest.len() == 71);

    // Immutable, ETag = digest, 304 when it matches; .yaml and .json too.
    for suffix in ["", ".yaml", ".json"] {
        let r = env.get(&format!("{url}{suffix}")).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(r.headers()["etag"], format!("\"{digest}\"").as_str());
        let body = r.text().await.unwrap();
        match suffix {
            ".yaml" => assert!(body.contains("kind: CustomResourceDefinition"), "{body}"),
            ".json" => {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v["kind"], "CustomResourceDefinition");
            }
            _ => assert!(body.contains("<h1 class=\"docs-title\">NopResource")),
        }
        let r = env
            .get_with(
                &format!("{url}{suffix}"),
                &[("if-none-match", &format!("\"{digest}\""))],
            )
            .await;
        assert_eq!(r.status(), 304);
        assert!(r.bytes().await.unwrap().is_empty());
    }

    // Pages that change: a short max-age and an ETag of the body, 304 while it matches.
    let r = env.get("/packages/acme/provider-nop").await;
    assert_eq!(r.headers()["cache-control"], "public, max-age=60");
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("href=\"{url}\"")),
        "the package page points at the immutable URL"
    );
    let r = env
        .get_with("/packages/acme/provider-nop", &[("if-none-match", &etag)])
        .await;
    assert_eq!(r.status(), 304);

    // Security headers everywhere.
    let r = env.get("/").await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");

    // Static assets at hashed, immutable URLs.
    let home = r.text().await.unwrap();
    let css = home
        .split('"')
        .find(|s| s.starts_with("/static/style.") && s.ends_with(".css"))
        .expect("a hashed stylesheet URL")
        .to_owned();
    let r = env.get(&css).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    assert_eq!(
        r.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    // The same for everyone: no Vary on credentials, which some CDNs decline to cache.
    assert_eq!(r.headers()["vary"], "Accept-Encoding");
    let today = r.text().await.unwrap();
    let page = env.get("/").await;
    let vary = page.headers()["vary"].to_str().unwrap().to_owned();
    assert!(vary.contains("Authorization, Cookie"), "{vary}");
    // No favicon (a 204 browsers remember), and a robots.txt keeping crawlers out of searches.
    let r = env.get("/favicon.ico").await;
    assert_eq!(r.status(), 204);
    let robots = env.text("/robots.txt").await;
    assert!(robots.contains("Disallow: /search"), "{robots}");

    // An immutable docs page rendered by an earlier release names that release's stylesheet:
    // it gets this one's, cached briefly, never a 404.
    let r = env.get("/static/style.0123456789abcdef.css").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/css; charset=utf-8");
    let cc = r.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(
        !cc.contains("immutable") && cc.contains("max-age=3600"),
        "{cc}"
    );
    assert_eq!(r.text().await.unwrap(), today);

    // Compressed with gzip and brotli when asked.
    for enc in ["gzip", "br"] {
        let r = env.get_with(url, &[("accept-encoding", enc)]).await;
        assert_eq!(r.headers()["content-encoding"], enc);
        let plain = env.get(url).await.bytes().await.unwrap().len();
        let packed = r.bytes().await.unwrap().len();
        assert!(packed < plain, "{enc}: {packed} < {plain}");
    }
}

#[tokio::test]
async fn a_cdn_base_makes_immutable_urls_absolute() {
    let env = Env::start().await;
    env.push_source("provider-nop-main", "acme/provider-nop", "v1.0.0")
        .await;
    env.index_all().await;
    let db_url = env.db_url();
    let config = shimmer_config::Config::from_toml(&format!(
        "[database]\nurl = \"{db_url}\"\n[web]\npublic_url = \"https://cdn.example.com/\"\n"
    ))
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(shimmer_web::run(
        listener,
        &config,
        env.pool.clone(),
        tokio_util::sync::CancellationToken::new(),
    ));
    let v: serde_json::Value = client()
        .get(format!(
            "{base}/api/v1/packages/acme/provider-nop/versions/v1.0.0"
        ))
        .sent()
        .await
        .json()
        .await
        .unwrap();
    let docs = v["apis"][0]["docs_url"].as_str().unwrap();
    assert!(
        docs.starts_with("https://cdn.example.com/docs/sha256:"),
        "{docs}"
    );
    let r = client().get(format!("{base}/")).sent().await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("https://cdn.example.com"), "{csp}");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("href=\"https://cdn.example.com/static/style."),
        "{html}"
    );
}

#[tokio::test]
async fn hostile_package_content_is_escaped_and_sanitised() {
    let env = Env::start().await;
    env.push_image(&hostile_image(), "acme/provider-hostile", "v1.0.0")
        .await;
    env.index_all().await;
    let hostile_crd: String = testkit::pg::scalar(
        &env.pool,
        "select object_digest from api_types where kind = 'Hostile'",
    )
    .await;
    let docs = env.text(&format!("/docs/{hostile_crd}")).await;
    assert!(docs.contains("hostile field"), "{docs}");
    for tag in tags(&docs) {
        if tag.starts_with("<script src=\"/static/app.") {
            continue;
        }
        let t = tag.to_ascii_lowercase();
        for bad in [
            "<script",
            "<img",
            " onerror",
            " onclick",
            " onmouseover",
            "javascript:",
        ] {
            assert!(!t.contains(bad), "{bad} in a docs tag: {tag}");
        }
    }
    let page = env
        .text("/packages/acme/provider-hostile/versions/v1.0.0")
        .await;
    let pkg = env.text("/packages/acme/provider-hostile").await;
    for html in [&page, &pkg] {
        assert!(html.contains("<div class=\"markdown readme\">"), "{html}");
        assert!(html.contains("Hostile readme"));
        assert!(
            html.contains("href=\"https://example.com\""),
            "safe links stay"
        );
        // Escaped text may show `onerror=` as text; no tag may carry it.
        for tag in tags(html) {
            if tag.starts_with("<script src=\"/static/app.") {
                continue;
            }
            let t = tag.to_ascii_lowercase();
            for bad in [
                "<script",
                "<iframe",
                "<style",
                "<img src=\"x\"",
                " onerror",
                " onclick",
                "javascript:",
            ] {
                assert!(!t.contains(bad), "{bad} in a tag: {tag}");
            }
        }
        assert!(
            html.contains("&#60;script&#62;document.body.dataset.pwned=4&#60;/script&#62;"),
            "description is escaped"
        );
    }
    // The icon is served only as an image, an SVG with a policy that forbids its script.
    let icon = pkg
        .split('"')
        .find(|s| s.starts_with("/icons/sha256:"))
        .expect("icon URL")
        .to_owned();
    let r = env.get(&icon).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // The raw data URI never reaches a page.
    assert!(!pkg.contains("data:image/svg"));
    let svg = base64::engine::general_purpose::STANDARD.decode(
        "PHN2ZyB4bWxucz0naHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmcnPjxzY3JpcHQ+YWxlcnQoMSk8L3NjcmlwdD48L3N2Zz4=",
    ).unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), svg.as_slice());
}

/// Every tag (`<...>`) of a page, as written.
pub fn tags(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .map(|e| start + e + 1)
            .unwrap_or(rest.len());
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// `provider-kubernetes-v1.2.1` -> (`upbound/provider-kubernetes`, `v1.2.1`).
fn repo_and_tag(dir: &std::path::Path) -> (String, String) {
    let name = dir.file_name().unwrap().to_str().unwrap();
    let (repo, tag) = name.rsplit_once('-').unwrap();
    (format!("upbound/{repo}"), tag.to_owned())
}

#[tokio::test]
async fn every_page_of_every_real_package_renders() {
    let env = Env::start().await;
    let dirs = xpkg_source::package_dirs();
    for dir in &dirs {
        let (repo, tag) = repo_and_tag(dir);
        let image = xpkg_image::from_source(dir);
        env.push_image(&image, &repo, &tag).await;
    }
    env.index_all().await;
    let repos: Vec<String> =
        testkit::pg::scalars(&env.pool, "select repository from packages order by 1").await;
    assert!(repos.len() >= 7, "{repos:?}");
    let mut docs = std::collections::BTreeSet::new();
    for repo in &repos {
        let p = env.json(&format!("/api/v1/packages/{repo}")).await;
        assert!(
            env.text(&format!("/packages/{repo}"))
                .await
                .contains("<h2>Versions</h2>")
        );
        for v in p["versions"].as_array().unwrap() {
            let url = v["url"].as_str().unwrap();
            let html = env.text(url).await;
            assert!(html.contains("class=\"version-title\""), "{url}");
            let api = env.json(v["api_url"].as_str().unwrap()).await;
            for a in api["apis"].as_array().unwrap() {
                docs.insert(a["docs_url"].as_str().unwrap().to_owned());
            }
            for o in api["objects"].as_array().unwrap() {
                if o["class"] != "meta" {
                    docs.insert(o["docs_url"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    let stored: i64 = env
        .scalar("select count(distinct object_digest) from api_types")
        .await;
    assert!(
        docs.len() as i64 >= stored,
        "every API's docs: {} < {stored}",
        docs.len()
    );
    for url in &docs {
        let r = env.get(url).await;
        assert_eq!(r.status(), 200, "{url}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("<h1 class=\"docs-title\">"),
            "{url}"
        );
    }

    // A known field's description appears under its path.
    let (object, body): (String, serde_json::Value) = testkit::pg::row(&env.pool, "select a.object_digest, o.body from api_types a join objects o on o.digest = a.object_digest
         join tags t on t.version_id = a.version_id join packages p on p.id = t.package_id
         where p.repository = 'upbound/provider-kubernetes' and t.tag = 'v1.2.1'
           and a.kind = 'Object' and a.api_group = 'kubernetes.crossplane.io'").await;
    let v1alpha2 = body["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1alpha2")
        .unwrap();
    let description =
        v1alpha2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["deletionPolicy"]
            ["description"]
            .as_str()
            .unwrap();
    let html = env.text(&format!("/docs/{object}")).await;
    let at = html
        .find("id=\"v1alpha2.spec.deletionPolicy\"")
        .expect("the field's anchor");
    let field = &html[at..at + html[at..].find("</li>").unwrap()];
    let first_words: Vec<&str> = description.split_whitespace().take(6).collect();
    assert!(
        field.contains(&first_words.join(" ")),
        "{first_words:?} under the path: {field}"
    );
    // A deprecated version is marked.
    let v1alpha1 = &html[html
        .find("<section class=\"schema-version\" id=\"v1alpha1\"")
        .unwrap()..];
    let heading = &v1alpha1[..v1alpha1.find("</h2>").unwrap()];
    assert!(heading.contains("badge deprecated"), "{heading}");
    // The kind's own description, before its fields.
    let section = &v1alpha1[..v1alpha1.find("<ul class=\"tree\">").unwrap()];
    assert!(
        section.contains(
            "<div class=\"schema-description\"><p>A Object is an provider Kubernetes API type</p>"
        ),
        "{section}"
    );
    // The page cannot list its definers (it is immutable; they are not): it links a search that
    // does, with this package among them.
    let definers = "/search?q=Object.kubernetes.crossplane.io";
    assert!(html.contains(&format!("href=\"{definers}\"")), "{html}");
    let found = env.text(definers).await;
    assert!(found.contains("upbound/provider-kubernetes"), "{found}");
    let version_page = env
        .text("/packages/upbound/provider-kubernetes/versions/v1.2.1")
        .await;
    assert!(
        version_page
            .contains("class=\"apiversion deprecated\" title=\"served, deprecated\">v1alpha1"),
        "deprecated marked in the API table"
    );

    // Dependencies link to the packages shimmer has indexed.
    let conf = env
        .text("/packages/upbound/configuration-aws-network/versions/v0.15.0")
        .await;
    assert!(
        conf.contains("<a href=\"/packages/upbound/provider-aws-ec2\">xpkg.upbound.io/upbound/provider-aws-ec2</a>"),
        "{conf}"
    );
    assert!(conf.contains("xpkg.upbound.io/crossplane-contrib/function-auto-ready"));
    assert!(!conf.contains("<a href=\"/packages/crossplane-contrib/function-auto-ready\">"));
}

#[tokio::test]
async fn lists_shorten_a_long_description_and_name_the_repository_the_package_page_shows_it_whole()
{
    let env = Env::start().await;
    let long = format!("Starts here. {}Ends here.", "padding words ".repeat(2000));
    let meta = format!(
        "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: provider-min\n  annotations:\n    meta.crossplane.io/description: \"{long}\"\nspec: {{}}"
    );
    env.push_image(&with_meta("provider-nop-main", &meta), "acme/min", "v1.0.0")
        .await;
    env.push_plain_nop("other/min", "v1.0.0").await;
    env.index_all().await;
    let home = env.text("/").await;
    assert!(home.contains("Starts here."), "{home}");
    assert!(
        !home.contains("Ends here."),
        "the card's description is shortened"
    );
    assert!(home.len() < 20_000, "home is {} bytes", home.len());
    // Two packages named alike are told apart by their repositories.
    assert!(
        home.contains("<span class=\"repository\">acme/min</span>"),
        "{home}"
    );
    let hits = env.text("/search?q=min").await;
    assert!(hits.contains("Starts here.") && !hits.contains("Ends here."));
    let page = env.text("/packages/acme/min").await;
    assert!(
        page.contains("Ends here."),
        "the package page shows it whole"
    );
    // The JSON lists carry the same summary; the package's own answer the whole.
    let list = env.json("/api/v1/packages").await.to_string();
    assert!(list.contains("Starts here.") && !list.contains("Ends here."));
    let hits = env.json("/api/v1/search?q=min").await.to_string();
    assert!(
        hits.contains("Starts here.") && !hits.contains("Ends here."),
        "{hits}"
    );
    let whole = env.json("/api/v1/packages/acme/min").await.to_string();
    assert!(whole.contains("Ends here."));
}

#[tokio::test]
async fn bidirectional_controls_cannot_make_one_name_read_as_another() {
    let env = Env::start().await;
    // Shown raw, `provider-\u{202E}swa` reads as "provider-aws" and reorders the title after it.
    let meta = "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: provider-spoof\n  annotations:\n    friendly-name.meta.crossplane.io: \"provider-\\u202Eswa\"\n    meta.crossplane.io/source: \"github.com/acme/provider-spoof\"\nspec: {}";
    env.push_image(
        &with_meta("provider-nop-main", meta),
        "acme/spoof",
        "v1.0.0",
    )
    .await;
    env.index_all().await;
    let page = env.text("/packages/acme/spoof").await;
    if let Some(at) = page.find('\u{202E}') {
        panic!("{}", &page[at.saturating_sub(300)..at + 50]);
    }
    assert!(page.contains(">provider-swa</a>"), "{page}");
    // The scheme-less source most packages give is a link.
    assert!(
        page.contains("href=\"https://github.com/acme/provider-spoof\""),
        "{page}"
    );
}

#[tokio::test]
async fn every_package_is_listed_by_repository_a_page_at_a_time() {
    let env = Env::start().await; // pages of 5
    let repos = [
        "acme/g", "acme/b", "acme/f", "acme/a", "acme/e", "acme/c", "acme/d",
    ];
    for repo in repos {
        env.push_plain_nop(repo, "v1.0.0").await;
    }
    env.index_all().await;
    let home = env.text("/").await;
    assert!(
        home.contains("<a href=\"/packages\">All 7 packages</a>"),
        "{home}"
    );
    let names = |html: &str| -> Vec<String> {
        html.split("<span class=\"repository\">")
            .skip(1)
            .map(|s| s[..s.find('<').unwrap()].to_owned())
            .collect()
    };
    let first = env.text("/packages").await;
    assert!(first.contains("<span id=\"total\">7</span>"), "{first}");
    assert_eq!(
        names(&first),
        ["acme/a", "acme/b", "acme/c", "acme/d", "acme/e"]
    );
    assert!(
        first.contains("rel=\"next\" href=\"/packages?page=2\""),
        "{first}"
    );
    assert!(!first.contains("rel=\"prev\""));
    let second = env.text("/packages?page=2").await;
    assert_eq!(names(&second), ["acme/f", "acme/g"]);
    assert!(second.contains("rel=\"prev\" href=\"/packages?page=1\""));
    assert!(!second.contains("rel=\"next\""));
    let past = env.text("/packages?page=9").await;
    assert!(past.contains("past the last"), "{past}");
    for bad in ["0", "-1", "x"] {
        let r = env.get(&format!("/packages?page={bad}")).await;
        assert_eq!(r.status(), 400, "page={bad}");
    }
    // The API pages by 100 and says how many there are.
    let api = env.json("/api/v1/packages").await;
    assert_eq!(api["total"], 7);
    assert_eq!(api["page_size"], 100);
    assert_eq!(api["packages"].as_array().unwrap().len(), 7);
    let past = env.json("/api/v1/packages?page=2").await;
    assert_eq!(past["packages"].as_array().unwrap().len(), 0);
    assert_eq!(past["total"], 7);
    assert_eq!(env.get("/api/v1/packages?page=0").await.status(), 400);
    // page_size chooses the page's size; the pages together list every package once.
    let recent = env.json("/api/v1/packages?page_size=3").await;
    let listed = |v: &serde_json::Value| -> Vec<String> {
        v["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["repository"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(recent["page_size"], 3);
    assert_eq!(listed(&recent).len(), 3);
    let third = env.json("/api/v1/packages?page=3&page_size=3").await;
    assert_eq!(listed(&third).len(), 1, "{third}");
    let mut every = listed(&recent);
    every.extend(listed(
        &env.json("/api/v1/packages?page=2&page_size=3").await,
    ));
    every.extend(listed(&third));
    every.sort();
    let mut want = repos.to_vec();
    want.sort();
    assert_eq!(every, want);
    for bad in ["0", "101", "x"] {
        let r = env.get(&format!("/api/v1/packages?page_size={bad}")).await;
        assert_eq!(r.status(), 400, "page_size={bad}");
    }
}

#[tokio::test]
async fn an_xrd_docs_page_names_its_claim() {
    let env = Env::start().await;
    env.push_source(
        "platform-ref-aws-v1.0.0",
        "upbound/platform-ref-aws",
        "v1.0.0",
    )
    .await;
    env.index_all().await;
    let apis = env.json("/api/v1/apis?kind=XCluster").await;
    let docs = apis["apis"][0]["definitions"][0]["docs_url"]
        .as_str()
        .unwrap_or_else(|| panic!("{apis}"))
        .to_owned();
    let html = env.text(&docs).await;
    assert!(
        html.contains("<dt>Claim</dt><dd>Cluster (namespaced)</dd>"),
        "{html}"
    );
}
