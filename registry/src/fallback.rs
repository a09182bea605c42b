//! The referrers API's fallback tag schema (distribution spec 1.1): a subject's referrers
//! listed in an image index tagged `sha256-<hex>` of its digest.

/// The tag under which the referrers of `digest` are kept by registries without the referrers
/// API: `<alg>-<ref>`, the encoded part cut to 64 characters, as the spec says (so a sha512
/// digest's tag stays within the 128 characters a tag may have).
pub fn fallback_tag(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) => format!("{alg}-{}", hex.get(..64).unwrap_or(hex)),
        None => digest.to_owned(),
    }
}

/// Whether `tag` is a referrers fallback tag (`sha256-` or `sha512-` and 64 hex digits): an index
/// of a subject's referrers, not a version of anything.
pub fn is_fallback_tag(tag: &str) -> bool {
    ["sha256-", "sha512-"].iter().any(|alg| {
        tag.strip_prefix(alg)
            .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
    })
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
        // A sha512 digest's tag keeps 64 of its 128 hex digits.
        let long = format!("sha512:{}", "cd".repeat(64));
        assert_eq!(fallback_tag(&long), format!("sha512-{}", "cd".repeat(32)));
        assert!(is_fallback_tag(&fallback_tag(&long)));
    }
}
