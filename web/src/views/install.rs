//! How to install a version and what indexing it read, as its page's side panel says it: the
//! `crossplane xpkg install` line, a ready package manifest to apply, the pull by digest, and
//! one sentence on the bytes read. Pure: no I/O.

use super::versions::preferred_tag;
use crate::{db::Version, text::human_bytes};

/// The reference a client installs: `host/repository:tag` (the tag the version was reached by,
/// else its best tag), or by digest for an untagged version.
fn reference(host: &str, repository: &str, label: &str, v: &Version) -> String {
    match preferred_tag(label, &v.tags) {
        Some(tag) => format!("{host}/{repository}:{tag}"),
        None => format!("{host}/{repository}@{}", v.manifest_digest),
    }
}

/// How to install the version (Crossplane's CLI, for a package) and pull it (by digest). A
/// rejected package is shown for what it is, not offered for installation (Crossplane would
/// refuse it too); its digests still identify it.
pub fn install_lines(host: &str, repository: &str, label: &str, v: &Version) -> Vec<String> {
    let mut install = Vec::new();
    if v.rejection.is_some() {
        return install;
    }
    if let Some(t) = &v.package_type {
        install.push(format!(
            "crossplane xpkg install {} {}",
            t.to_lowercase(),
            reference(host, repository, label, v)
        ));
    }
    install.push(format!(
        "docker pull {host}/{repository}@{}",
        v.manifest_digest
    ));
    install
}

/// The `pkg.crossplane.io/v1` object that installs the package (`Provider`, `Configuration` or
/// `Function`), named after the repository's last segment; `None` for anything else.
pub fn install_manifest(host: &str, repository: &str, label: &str, v: &Version) -> Option<String> {
    if v.rejection.is_some() {
        return None;
    }
    let kind = v.package_type.as_deref()?;
    if !matches!(kind, "Provider" | "Configuration" | "Function") {
        return None;
    }
    Some(format!(
        "apiVersion: pkg.crossplane.io/v1\nkind: {kind}\nmetadata:\n  name: {}\nspec:\n  package: {}\n",
        object_name(repository),
        reference(host, repository, label, v)
    ))
}

/// A Kubernetes object name (RFC 1123 label: lower-case letters, digits and `-`, at most 63)
/// from a repository's last segment.
fn object_name(repository: &str) -> String {
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let name: String = last
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .take(63)
        .collect();
    let name = name.trim_matches('-');
    if name.is_empty() {
        "package".to_owned()
    } else {
        name.to_owned()
    }
}

/// What indexing the version read, in a sentence: for a package, its manifest, config and
/// Crossplane layers (never the rest of the image); for anything else, no layers.
pub fn cost(v: &Version) -> String {
    let read = human_bytes(v.bytes_downloaded);
    match v.kind.as_str() {
        "package" | "rejected" if v.image_bytes > 0 => format!(
            "To index this version shimmer read {read}: the manifest, the config and the package's \
             own layers, out of an image of {}.",
            human_bytes(v.image_bytes)
        ),
        _ => format!("To index this version shimmer read {read}, and none of its layers."),
    }
}

#[cfg(test)]
mod tests {
    use super::object_name;

    #[test]
    fn object_names_are_rfc_1123_labels() {
        assert_eq!(
            object_name("crossplane-contrib/provider-nop"),
            "provider-nop"
        );
        assert_eq!(object_name("acme/Provider_AWS.s3"), "provider-aws-s3");
        assert_eq!(object_name("acme/__"), "package");
        assert_eq!(object_name(&format!("a/{}", "x".repeat(80))).len(), 63);
    }
}
