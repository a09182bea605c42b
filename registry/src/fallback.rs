//! The referrers API's fallback tag schema (distribution spec 1.1): a subject's referrers
//! listed in an image index tagged `sha256-<hex>` of its digest.

/// The tag under which the referrers of `digest` are kept by registries without the referrers
/// API (`sha256:abc…` → `sha256-abc…`).
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// Whether `tag` is a referrers fallback tag (`sha256-<64 hex>`): an index of a subject's
/// referrers, not a version of anything.
pub fn is_fallback_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::{fallback_tag, is_fallback_tag};

    #[test]
    fn fallback_tags_are_sha256_dash_and_64_hex_digits() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert!(is_fallback_tag(&fallback_tag(&digest)));
        for other in [
            "sha256-ab",
            "v1.0.0",
            "latest",
            &format!("sha256-{}", "zz".repeat(32)),
        ] {
            assert!(!is_fallback_tag(other), "{other}");
        }
        assert!(!is_fallback_tag(&format!("sha256-{}.sig", "ab".repeat(32))));
    }
}
