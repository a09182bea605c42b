use super::test_backend as backend;

#[test]
fn urls_keep_base_path() {
    let b = backend("https://r.example.com:8443/registry/", "");
    assert_eq!(
        b.endpoint().url("/v2/a/manifests/v1", Some("x=1")),
        "https://r.example.com:8443/registry/v2/a/manifests/v1?x=1"
    );
    assert!(
        b.endpoint()
            .owns(&"https://r.example.com:8443/other".parse().unwrap())
    );
    assert!(
        !b.endpoint()
            .owns(&"https://r.example.com/other".parse().unwrap())
    );
}

#[test]
fn api_urls_equal_parsed_urls() {
    for base in [
        "http://127.0.0.1:5001",
        "https://r.example.com:8443/registry/",
        "https://user@r.example.com/x?y=1#z",
    ] {
        let b = backend(base, "");
        for (path, query) in [
            ("/v2/", None),
            ("/v2/a/b/manifests/v1.2_3-x", None),
            ("/v2/a/blobs/sha256:0123", Some("digest=sha256%3A01&x=a+b")),
            ("/v2/a/tags/list", Some("n=2&last=b%2Fc")),
            ("/v2/_catalog", Some("")),
        ] {
            let parsed: url::Url = b.endpoint().url(path, query).parse().unwrap();
            assert_eq!(
                b.endpoint().api_url(path, query),
                parsed,
                "{base} {path} {query:?}"
            );
        }
    }
}

#[test]
fn prefix_mapping_round_trips() {
    let b = backend("http://127.0.0.1:5001", "mirror/");
    assert_eq!(
        b.endpoint().backend_repo("acme/provider-x"),
        "mirror/acme/provider-x"
    );
    assert_eq!(
        b.endpoint().shim_repo("mirror/acme/provider-x"),
        Some("acme/provider-x")
    );
    assert_eq!(b.endpoint().shim_repo("other/x"), None);
}
