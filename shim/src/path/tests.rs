//! The grammar of `/v2` paths, names, tags and digests, case by case.

use super::*;

const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn endpoints() {
    assert_eq!(parse("").unwrap(), Endpoint::Base);
    assert_eq!(parse("_catalog").unwrap(), Endpoint::Catalog);
    assert_eq!(
        parse("acme/provider-x/tags/list").unwrap(),
        Endpoint::Tags {
            name: "acme/provider-x".into()
        }
    );
    assert_eq!(
        parse("a/manifests/v1.0").unwrap(),
        Endpoint::Manifest {
            name: "a".into(),
            reference: Reference::Tag("v1.0".into())
        }
    );
    assert_eq!(
        parse(&format!("a/b/manifests/{D}")).unwrap(),
        Endpoint::Manifest {
            name: "a/b".into(),
            reference: Reference::Digest(D.into())
        }
    );
    assert_eq!(
        parse(&format!("a/blobs/{D}")).unwrap(),
        Endpoint::Blob {
            name: "a".into(),
            digest: D.into()
        }
    );
    assert_eq!(
        parse("a/b/blobs/uploads/").unwrap(),
        Endpoint::UploadStart { name: "a/b".into() }
    );
    assert_eq!(
        parse("a/b/blobs/uploads").unwrap(),
        Endpoint::UploadStart { name: "a/b".into() }
    );
    assert_eq!(
        parse("a/b/blobs/uploads/5e0a-uuid").unwrap(),
        Endpoint::UploadSession {
            name: "a/b".into(),
            session: "5e0a-uuid".into()
        }
    );
    assert_eq!(
        parse(&format!("a/referrers/{D}")).unwrap(),
        Endpoint::Referrers {
            name: "a".into(),
            digest: D.into()
        }
    );
}

#[test]
fn names_that_look_like_endpoints() {
    // A repository may be called `manifests` or `blobs`: the parser reads from the end.
    assert_eq!(
        parse("x/manifests/y/manifests/latest").unwrap(),
        Endpoint::Manifest {
            name: "x/manifests/y".into(),
            reference: Reference::Tag("latest".into())
        }
    );
    assert_eq!(
        parse("blobs/tags/list").unwrap(),
        Endpoint::Tags {
            name: "blobs".into()
        }
    );
}

#[test]
fn rejects_bad_input_with_spec_codes() {
    assert_eq!(
        parse("UPPER/manifests/v1").unwrap_err().code,
        "NAME_INVALID"
    );
    assert_eq!(parse("a//b/manifests/v1").unwrap_err().code, "NAME_INVALID");
    assert_eq!(
        parse("../etc/manifests/v1").unwrap_err().code,
        "NAME_INVALID"
    );
    assert_eq!(
        parse("a/blobs/sha256:xyz").unwrap_err().code,
        "DIGEST_INVALID"
    );
    assert_eq!(parse("a/blobs/nocolon").unwrap_err().code, "DIGEST_INVALID");
    assert_eq!(
        parse("a/manifests/sha256:ABC").unwrap_err().code,
        "DIGEST_INVALID"
    );
    assert_eq!(
        parse("a/manifests/-bad").unwrap_err().code,
        "MANIFEST_INVALID"
    );
    assert_eq!(parse("a/whatever").unwrap_err().code, "NOT_FOUND");
    assert_eq!(parse("a").unwrap_err().code, "NOT_FOUND");
    assert_eq!(
        parse("a/blobs/uploads/../x").unwrap_err().code,
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[test]
fn name_grammar() {
    for ok in [
        "a",
        "a0",
        "a.b",
        "a_b",
        "a__b",
        "a---b",
        "a/b/c",
        "library/ubuntu",
    ] {
        assert!(is_valid_name(ok), "{ok}");
    }
    for bad in [
        "", "A", "-a", "a-", "a..b", "a___b", "a/", "/a", "a//b", "a.-b",
    ] {
        assert!(!is_valid_name(bad), "{bad}");
    }
    assert!(!is_valid_name(&"a".repeat(256)));
}

#[test]
fn digests() {
    assert!(check_digest(D).is_ok());
    assert!(check_digest(&format!("sha512:{}", "a".repeat(128))).is_ok());
    assert!(check_digest("sha256:abc").is_err());
    // Grammatical, but no registry implements it: refused.
    assert!(check_digest("md5:d41d8cd98f00b204e9800998ecf8427e").is_err());
    assert!(check_digest(":abc").is_err());
}

#[test]
fn a_spans_endpoint_is_told_from_the_path_without_it() {
    for (path, kind) in [
        ("/v2/", "base"),
        ("/v2", "base"),
        ("/v2/_catalog", "catalog"),
        ("/v2/a/b/tags/list", "tags"),
        ("/v2/a/manifests/v1", "manifest"),
        ("/v2/blobs/manifests/v1", "manifest"),
        ("/v2/a/blobs/sha256:ab", "blob"),
        ("/v2/manifests/blobs/sha256:ab", "blob"),
        ("/v2/a/blobs/uploads/", "upload"),
        ("/v2/a/blobs/uploads/c2Vzc2lvbg", "upload"),
        ("/v2/a/referrers/sha256:ab", "referrers"),
        ("/v2/a/whatever", "other"),
    ] {
        assert_eq!(endpoint_kind(path), kind, "{path}");
    }
}
