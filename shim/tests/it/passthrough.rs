//! Endpoints passed through unchanged: manifest and blob `DELETE`, `ETag`s, tag-list pagination
//! by `Link`, `_catalog` through a backend with a repository prefix, and blobs a backend cache
//! cannot answer.

use std::sync::Arc;

use reqwest::{StatusCode, header};
use testkit::{
    oci::OciLayout,
    recorder::Recorder,
    registry::{Registry, RegistryOptions},
    skopeo,
};

use crate::harness::{
    Shim, backend_toml, error_code, first_layer, http, prefixed_backend_toml, start_upload,
};
use testkit::http::Sent;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Tags the manifest `repo:tag` also as each of `tags`, through the shim.
async fn tag_again(shim: &Shim, repo: &str, tag: &str, tags: &[&str]) {
    let raw = skopeo::inspect_raw(&shim.docker(&format!("{repo}:{tag}")), &[])
        .await
        .unwrap();
    for t in tags {
        let r = http()
            .put(shim.v2(&format!("{repo}/manifests/{t}")))
            .header(header::CONTENT_TYPE, OCI_MANIFEST)
            .body(raw.clone())
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

/// A one-layer OCI image tagged `v1`; returns the layout, the manifest digest and the layer's.
fn small_image(dir: &std::path::Path, content: &[u8]) -> (OciLayout, String, String) {
    let layout = OciLayout::create(dir.join("layout"));
    let image = layout.file_image("v1", content);
    let layer = first_layer(&layout, &image);
    (layout, image.digest, layer)
}

#[tokio::test]
async fn manifest_and_blob_delete_reach_the_backend_and_etags_pass_through() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let tmp = tempfile::tempdir().unwrap();
    let (layout, digest, layer) = small_image(tmp.path(), b"to be deleted");
    shim.push(&layout, "v1", "acme/del:v1", &[]).await;
    let c = http();
    let manifest_url = shim.v2(&format!("acme/del/manifests/{digest}"));

    // ETag: the backend's, unchanged, on manifests and blobs; a conditional GET gets its 304.
    for path in [
        format!("/v2/acme/del/manifests/{digest}"),
        format!("/v2/acme/del/blobs/{layer}"),
    ] {
        let direct = c
            .get(format!("{}{path}", reg.url()))
            .header(header::ACCEPT, OCI_MANIFEST)
            .sent()
            .await;
        let via = c
            .get(format!("{}{path}", shim.url()))
            .header(header::ACCEPT, OCI_MANIFEST)
            .sent()
            .await;
        assert_eq!(via.status(), StatusCode::OK, "{path}");
        let etag = via.headers()[header::ETAG].clone();
        assert_eq!(etag, direct.headers()[header::ETAG], "{path}");
        let r = c
            .get(format!("{}{path}", shim.url()))
            .header(header::ACCEPT, OCI_MANIFEST)
            .header(header::IF_NONE_MATCH, etag)
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{path}");
    }

    // Manifest DELETE by digest: 202, then the backend no longer has it.
    let r = c.delete(&manifest_url).sent().await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let r = c
        .get(&manifest_url)
        .header(header::ACCEPT, OCI_MANIFEST)
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "MANIFEST_UNKNOWN");
    let direct = c
        .get(format!("{}/v2/acme/del/manifests/{digest}", reg.url()))
        .header(header::ACCEPT, OCI_MANIFEST)
        .sent()
        .await;
    assert_eq!(
        direct.status(),
        StatusCode::NOT_FOUND,
        "deleted on the backend"
    );

    // Blob DELETE likewise.
    let blob_url = shim.v2(&format!("acme/del/blobs/{layer}"));
    let r = c.delete(&blob_url).sent().await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = c.get(&blob_url).sent().await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await, "BLOB_UNKNOWN");
}

/// docker-registry 2.8 ignores `n` and `last` on tag lists and never sends a `Link` for them.
/// A relay in front of it adds the `Link` a newer registry sends (a stand-in for that
/// behaviour; the tags themselves come from the real registry), once relative and once
/// absolute, with opaque query state, pointing at the backend's own repository name.
#[tokio::test]
async fn tag_list_link_points_at_the_shim_and_maps_back_to_the_exact_backend_url() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let relay = Recorder::start_with_hook(
        &reg.url(),
        Arc::new(|req, resp| {
            let host = req.header("host").unwrap_or_default().to_owned();
            let link = match req.path_and_query.as_str() {
                "/v2/mirror/acme/pag/tags/list?n=2" => {
                    r#"</v2/mirror/acme/pag/tags/list?n=2&last=b>; rel="next""#.to_owned()
                }
                "/v2/mirror/acme/pag/tags/list?n=1" => format!(
                    r#"<http://{host}/v2/mirror/acme/pag/tags/list?n=1&last=a%2Bz&_state=opaque%3D%3D>; rel="next""#
                ),
                _ => return,
            };
            resp.headers.insert(header::LINK, link.parse().unwrap());
        }),
    )
    .await;
    let shim = Shim::start(&prefixed_backend_toml(
        "primary",
        &relay.url(),
        "",
        "mirror/",
    ))
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _, _) = small_image(tmp.path(), b"paginated");
    shim.push(&layout, "v1", "acme/pag:a", &[]).await;
    let c = http();
    tag_again(&shim, "acme/pag", "a", &["b", "c"]).await;

    for (first, expected_link, backend_next) in [
        (
            "/v2/acme/pag/tags/list?n=2",
            r#"</v2/acme/pag/tags/list?n=2&last=b>; rel="next""#,
            "/v2/mirror/acme/pag/tags/list?n=2&last=b",
        ),
        (
            "/v2/acme/pag/tags/list?n=1",
            r#"</v2/acme/pag/tags/list?n=1&last=a%2Bz&_state=opaque%3D%3D>; rel="next""#,
            "/v2/mirror/acme/pag/tags/list?n=1&last=a%2Bz&_state=opaque%3D%3D",
        ),
    ] {
        let r = c.get(format!("{}{first}", shim.url())).sent().await;
        assert_eq!(r.status(), StatusCode::OK);
        let link = r.headers()[header::LINK].to_str().unwrap().to_owned();
        assert_eq!(link, expected_link);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["name"], "acme/pag", "the shim's name, not the backend's");

        let next = link.split('<').nth(1).unwrap().split('>').next().unwrap();
        let r = c.get(format!("{}{next}", shim.url())).sent().await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get(header::LINK).is_none(), "the last page");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["name"], "acme/pag");
        let mut tags: Vec<_> = v["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        tags.sort();
        assert_eq!(tags, ["a", "b", "c"]);
        let reached = relay.requests();
        assert!(
            reached.iter().any(|r| r.path_and_query == backend_next),
            "the backend did not get {backend_next} verbatim: {:?}",
            reached.last()
        );
    }
}

#[tokio::test]
async fn catalog_through_a_prefixed_backend_lists_shim_names_of_its_own_repositories_only() {
    let (main, other) = (
        Registry::start(RegistryOptions::default()).await,
        Registry::start(RegistryOptions::default()).await,
    );
    let toml = format!(
        "{}{}",
        prefixed_backend_toml("main", &main.url(), "", "mirror/"),
        backend_toml("other", &other.url(), "acme/private/")
    );
    let shim = Shim::start(&toml).await;
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _, _) = small_image(tmp.path(), b"catalog");
    // Straight to the backend: two under the prefix, one under it that the shim routes to
    // another backend, one outside the prefix.
    for repo in [
        "mirror/acme/a",
        "mirror/acme/b",
        "mirror/acme/private/shadow",
        "plain/c",
        "aaa/first",
    ] {
        skopeo::push(&layout, "v1", &main.host_port(), &format!("{repo}:v1"), &[]).await;
    }
    let c = http();
    let r = c.get(shim.v2("_catalog")).sent().await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["repositories"],
        serde_json::json!(["acme/a", "acme/b"]),
        "{v}"
    );

    // Page by page, following the Link: paged in shim names over the prefix only, so no page
    // and no Link names a backend repository outside it (`aaa/first` sorts before the prefix,
    // `plain/c` after it).
    let mut next = Some(shim.v2("_catalog?n=1"));
    let mut seen = Vec::new();
    let mut pages = 0;
    while let Some(url) = next.take() {
        pages += 1;
        assert!(pages <= 10, "pagination does not end");
        let r = c.get(&url).sent().await;
        assert_eq!(r.status(), StatusCode::OK);
        if let Some(link) = r.headers().get(header::LINK) {
            let link = link.to_str().unwrap();
            let target = link.split('<').nth(1).unwrap().split('>').next().unwrap();
            assert!(target.starts_with("/v2/_catalog?"), "{link}");
            for hidden in ["mirror", "plain", "aaa"] {
                assert!(!target.contains(hidden), "{link}");
            }
            next = Some(format!("{}{target}", shim.url()));
        }
        let v: serde_json::Value = r.json().await.unwrap();
        seen.extend(
            v["repositories"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(seen, ["acme/a", "acme/b"]);
    // acme/a, acme/b, the shadow (routed elsewhere: an empty page), plain/c (past the prefix:
    // an empty page, and no Link after it).
    assert_eq!(pages, 4, "one backend repository per page");
    // A client's own `last` is a shim name.
    let v: serde_json::Value = c
        .get(shim.v2("_catalog?n=1&last=acme%2Fa"))
        .sent()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["acme/b"]), "{v}");
}

#[tokio::test]
async fn head_is_answered_wherever_get_is_as_going_direct() {
    // HEAD of a tag list (through a prefixed backend, whose lists the shim rewrites), of an
    // upload session's status, and of referrers (which docker-registry 2.8 lacks: 404, on which
    // clients fall back to the tag schema; a 405 they do not handle) answers as direct: the
    // backend decides (docker-registry itself refuses HEAD of a tag list with 405).
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&prefixed_backend_toml("primary", &reg.url(), "", "mirror/")).await;
    let tmp = tempfile::tempdir().unwrap();
    let (layout, digest, _) = small_image(tmp.path(), b"heads");
    shim.push(&layout, "v1", "acme/h:v1", &[]).await;
    let c = http();
    let direct_session = start_upload(&reg.url(), "mirror/acme/h").await;
    let shim_session = start_upload(&shim.url(), "acme/h").await;
    for (direct, through, expected) in [
        (
            format!("{}/v2/mirror/acme/h/tags/list", reg.url()),
            shim.v2("acme/h/tags/list"),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (direct_session, shim_session, StatusCode::NO_CONTENT),
        (
            format!("{}/v2/mirror/acme/h/referrers/{digest}", reg.url()),
            shim.v2(&format!("acme/h/referrers/{digest}")),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let d = c.head(&direct).sent().await;
        let s = c.head(&through).sent().await;
        assert_eq!(d.status(), expected, "HEAD {direct}");
        assert_eq!(s.status(), expected, "HEAD {through}");
    }
}

#[tokio::test]
async fn a_backend_blob_the_cache_cannot_answer_passes_through() {
    // `cache = true` on a backend: when the cache cannot answer (`offline`, which is about
    // upstreams; a cache directory it cannot write), the backend, which serves the blob, does.
    for broken in ["offline", "unwritable"] {
        let reg = Registry::start(RegistryOptions::default()).await;
        let tmp = tempfile::tempdir().unwrap();
        let cache_dir = tmp.path().join("cache");
        let offline = broken == "offline";
        let shim = Shim::start(&format!(
            "[cache]\npath = \"{}\"\noffline = {offline}\n[[backend]]\nname = \"primary\"\n\
             url = \"{}\"\ncache = true\n[[route]]\nprefix = \"\"\nbackend = \"primary\"\n",
            cache_dir.display(),
            reg.url()
        ))
        .await;
        let (layout, _, layer) = small_image(tmp.path(), broken.as_bytes());
        shim.push(&layout, "v1", "acme/c:v1", &[]).await;
        if !offline {
            // Nothing can be created in the cache any more (root ignores permissions: a file
            // where the temp directory was is refused to anyone).
            let tmp_dir = cache_dir.join("tmp");
            std::fs::remove_dir_all(&tmp_dir).unwrap();
            std::fs::write(&tmp_dir, b"not a directory").unwrap();
        }
        let r = http()
            .get(shim.v2(&format!("acme/c/blobs/{layer}")))
            .sent()
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{broken}");
        let body = r.bytes().await.unwrap();
        assert_eq!(skopeo::digest_of(&body), layer, "{broken}");
    }
}

/// Every answer carries an `x-request-id`: a new one for each request, sent on to the backend
/// with it, or the client's own, kept; the shim's own errors and the operational endpoints
/// carry one too.
#[tokio::test]
async fn every_answer_carries_a_request_id_the_backend_saw_too() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let rec = Recorder::start(&reg.url()).await;
    let shim = Shim::start(&backend_toml("primary", &rec.url(), "")).await;
    let c = http();
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on {}", r.url()))
            .to_str()
            .unwrap()
            .to_owned()
    };

    let mut ids = Vec::new();
    for path in ["/v2/", "/v2/", "/v2/acme/none/manifests/v1"] {
        let r = c.get(format!("{}{path}", shim.url())).sent().await;
        ids.push(id_of(&r));
    }
    // The shim's own probe of `/v2/` at its first request is no client's and has no id.
    let seen: Vec<String> = rec
        .requests()
        .iter()
        .filter_map(|r| r.header("x-request-id").map(str::to_owned))
        .collect();
    assert_eq!(seen, ids, "the backend got each request's id");
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2],
        "ids are distinct: {ids:?}"
    );

    let r = c
        .get(shim.v2("acme/none/manifests/v1"))
        .header("x-request-id", "client-chosen-7")
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(id_of(&r), "client-chosen-7");
    assert_eq!(
        rec.requests().last().unwrap().header("x-request-id"),
        Some("client-chosen-7")
    );

    // Answered by the shim alone: an invalid name never reaches the backend.
    let before = rec.requests().len();
    let r = c.get(shim.v2("Acme/manifests/v1")).sent().await;
    let own = id_of(&r);
    assert_eq!(error_code(r).await, "NAME_INVALID");
    assert!(!ids.contains(&own));
    assert_eq!(rec.requests().len(), before);
    let r = c.get(format!("{}/healthz", shim.url())).sent().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!id_of(&r).is_empty());
}

/// A backend's hop-by-hop headers (the listed ones and those its `Connection` names) and its
/// cookies stay behind; each of several `Link` values is pointed at the shim, in order; the
/// rest of the head, and the body, arrive as the backend sent them.
#[tokio::test]
async fn backend_hop_headers_and_cookies_stay_behind_and_every_link_is_rewritten() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let relay = Recorder::start_with_hook(
        &reg.url(),
        Arc::new(|req, resp| {
            if !req.path_and_query.starts_with("/v2/acme/hop/tags/list") {
                return;
            }
            let host = req.header("host").unwrap_or_default().to_owned();
            let h = &mut resp.headers;
            h.insert(header::CONNECTION, "x-backend-hop".parse().unwrap());
            h.insert("x-backend-hop", "connection-only".parse().unwrap());
            h.insert("keep-alive", "timeout=5".parse().unwrap());
            h.insert(header::SET_COOKIE, "session=backend".parse().unwrap());
            h.insert("x-backend-kept", "end-to-end".parse().unwrap());
            h.append(
                header::LINK,
                format!(r#"<http://{host}/v2/acme/hop/tags/list?n=1&last=a>; rel="next""#)
                    .parse()
                    .unwrap(),
            );
            h.append(
                header::LINK,
                r#"</v2/acme/hop/tags/list?n=1>; rel="first""#.parse().unwrap(),
            );
        }),
    )
    .await;
    let shim = Shim::start(&backend_toml("primary", &relay.url(), "")).await;
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _, _) = small_image(tmp.path(), b"hop");
    shim.push(&layout, "v1", "acme/hop:a", &[]).await;

    let r = http().get(shim.v2("acme/hop/tags/list")).sent().await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    for gone in ["x-backend-hop", "keep-alive", "set-cookie"] {
        assert!(h.get(gone).is_none(), "{gone} reached the client: {h:?}");
    }
    assert!(
        h.get_all(header::CONNECTION)
            .iter()
            .all(|v| !v.to_str().unwrap().contains("x-backend-hop")),
        "{h:?}"
    );
    assert_eq!(h["x-backend-kept"], "end-to-end");
    let links: Vec<&str> = h
        .get_all(header::LINK)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    // Without `public_url`, pointed at the shim by a path alone, the absolute one included.
    assert_eq!(
        links,
        [
            r#"</v2/acme/hop/tags/list?n=1&last=a>; rel="next""#,
            r#"</v2/acme/hop/tags/list?n=1>; rel="first""#,
        ],
    );
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["tags"], serde_json::json!(["a"]));
}

/// docker-registry 2.8 ignores `n` and `last` and lists tags in no order: the shim pages its
/// tag list itself, sorted as the spec pages, with a `Link` to the next page, and refuses an `n`
/// that is not a count. Without `n` or `last` the list is the backend's, untouched.
#[tokio::test]
async fn tag_lists_are_paged_where_the_backend_does_not() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let tmp = tempfile::tempdir().unwrap();
    let (layout, _, _) = small_image(tmp.path(), b"paged");
    shim.push(&layout, "v1", "acme/paged:d", &[]).await;
    let c = http();
    tag_again(&shim, "acme/paged", "d", &["b", "e", "a", "c"]).await;
    // The backend alone ignores n.
    let direct: serde_json::Value = c
        .get(format!("{}/v2/acme/paged/tags/list?n=2", reg.url()))
        .sent()
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(direct["tags"].as_array().unwrap().len(), 5, "{direct}");

    let page = |url: String| {
        let c = c.clone();
        async move {
            let r = c.get(url).sent().await;
            assert_eq!(r.status(), StatusCode::OK);
            let link = r
                .headers()
                .get(header::LINK)
                .map(|l| l.to_str().unwrap().to_owned());
            let v: serde_json::Value = r.json().await.unwrap();
            let tags: Vec<String> = v["tags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect();
            (tags, link)
        }
    };
    let mut url = shim.v2("acme/paged/tags/list?n=2");
    let mut pages = Vec::new();
    loop {
        let (tags, link) = page(url.clone()).await;
        pages.push(tags);
        let Some(link) = link else { break };
        let next = link.split('<').nth(1).unwrap().split('>').next().unwrap();
        assert!(link.ends_with("rel=\"next\""), "{link}");
        url = format!("{}{next}", shim.url());
    }
    assert_eq!(pages, [vec!["a", "b"], vec!["c", "d"], vec!["e"]]);
    let (after, link) = page(shim.v2("acme/paged/tags/list?last=c")).await;
    assert_eq!((after, link), (vec!["d".to_owned(), "e".to_owned()], None));
    let (all, _) = page(shim.v2("acme/paged/tags/list")).await;
    assert_eq!(
        all.len(),
        5,
        "without n or last: the backend's list as it is"
    );

    let r = c.get(shim.v2("acme/paged/tags/list?n=many")).sent().await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await, "PAGINATION_NUMBER_INVALID");
}
