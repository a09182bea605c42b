//! A package's version list and the tag that names a version: semver tags newest first, other
//! tags, then manifests no tag names.

use serde::Serialize;
use shimmer_store::packages::tag_semver;

use crate::{
    db::VersionRow,
    text::{human_time, summary, urlencode, version_url},
};

/// One entry of a package's version list.
#[derive(Debug, Clone, Serialize)]
pub struct VersionLink {
    pub label: String,
    pub url: String,
    /// When it was indexed, for people (`2026-11-28 03:17 UTC`).
    pub when: String,
    /// The same in RFC 3339 (`2026-11-28T03:17:05Z`), for programs.
    pub indexed_at: String,
    pub kind: String,
    pub manifest_digest: String,
    /// `sha256:` and the digest's first 12 hex digits, for tables.
    pub short_digest: String,
    /// The label, shortened the same way when it is a digest (an untagged version).
    pub short_label: String,
    /// Why the version was rejected, in short, when it was.
    #[serde(skip)]
    pub rejection: Option<String>,
    /// Breaking changes from its predecessor in semver order, when computed.
    #[serde(skip)]
    pub breaking: Option<i32>,
    /// The page of its changes from its predecessor.
    #[serde(skip)]
    pub diff_url: String,
}

/// A package's versions as its pages show them: the three lists, how many in all, and the
/// choices of the version selector (value, text) in the lists' order.
#[derive(Debug, Clone, Default)]
pub struct VersionTable {
    pub semver: Vec<VersionLink>,
    pub other: Vec<VersionLink>,
    pub untagged: Vec<VersionLink>,
    pub total: usize,
    pub choices: Vec<(String, String)>,
}

/// The version lists of [`version_lists`], with their total and the selector's choices.
pub fn version_table(repository: &str, rows: &[VersionRow]) -> VersionTable {
    let (semver, other, untagged) = version_lists(repository, rows);
    let choices = semver
        .iter()
        .chain(&other)
        .chain(&untagged)
        .map(|v| (v.label.clone(), v.short_label.clone()))
        .collect();
    VersionTable {
        total: semver.len() + other.len() + untagged.len(),
        semver,
        other,
        untagged,
        choices,
    }
}

/// `/packages/<repository>/diff?from=&to=`: the changes from `from` (its predecessor when
/// `None`) to `to`.
pub fn diff_url(repository: &str, from: Option<&str>, to: &str) -> String {
    match from {
        Some(f) => format!(
            "/packages/{repository}/diff?from={}&to={}",
            urlencode(f),
            urlencode(to)
        ),
        None => format!("/packages/{repository}/diff?to={}", urlencode(to)),
    }
}

/// `sha256:` and 12 hex digits of a digest; anything else as it is.
pub fn short_digest(digest: &str) -> String {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}…", &hex[..12]),
        _ => digest.to_owned(),
    }
}

/// A package's versions: semver tags (newest first), other tags (most recent first), and
/// manifests no tag points at (but for the platform images an index of the package lists).
pub fn version_lists(
    repository: &str,
    rows: &[VersionRow],
) -> (Vec<VersionLink>, Vec<VersionLink>, Vec<VersionLink>) {
    let mut semver = Vec::new();
    let mut other = Vec::new();
    let mut untagged = Vec::new();
    for row in rows {
        let link = |label: &str| VersionLink {
            label: label.to_owned(),
            url: version_url(repository, label),
            when: human_time(&row.indexed_at),
            indexed_at: row.indexed_at.clone(),
            kind: row.kind.clone(),
            manifest_digest: row.manifest_digest.clone(),
            short_digest: short_digest(&row.manifest_digest),
            short_label: if label == row.manifest_digest {
                short_digest(label)
            } else {
                label.to_owned()
            },
            rejection: row.rejection.as_deref().map(summary),
            breaking: row.breaking,
            diff_url: diff_url(repository, None, label),
        };
        // A platform image of a listed index is reached through that index's version.
        if row.tags.is_empty() && !row.in_index {
            untagged.push(link(&row.manifest_digest));
        }
        for tag in &row.tags {
            match tag_semver(tag) {
                Some(v) => semver.push((v, link(tag))),
                None => other.push(link(tag)),
            }
        }
    }
    semver.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.label.cmp(&b.1.label)));
    (
        semver.into_iter().map(|(_, l)| l).collect(),
        other,
        untagged,
    )
}

/// The tag that names a version reached as `label` (install lines, API answers): that tag itself
/// when it is one of the version's; else its highest semver tag; else any tag but `latest`, which moves;
/// else `latest`. `None` (install by digest) for an untagged version.
pub fn preferred_tag<'a>(label: &'a str, tags: &'a [String]) -> Option<&'a str> {
    if tags.iter().any(|t| t == label) {
        return Some(label);
    }
    let semver = tags
        .iter()
        .filter_map(|t| tag_semver(t).map(|v| (v, t)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, t)| t.as_str());
    semver
        .or_else(|| tags.iter().find(|t| *t != "latest").map(String::as_str))
        .or_else(|| tags.first().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::*;

    fn row(tags: &[&str], digest: &str) -> VersionRow {
        VersionRow {
            manifest_digest: digest.into(),
            kind: "package".into(),
            package_type: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            indexed_at: String::new(),
            in_index: false,
            rejection: None,
            breaking: None,
        }
    }

    #[test]
    fn versions_are_listed_in_semver_order_with_other_tags_apart() {
        let rows = [
            row(&["v1.10.0"], "sha256:a"),
            row(&["v1.9.0", "latest"], "sha256:b"),
            row(&["v2.0.0-rc.1"], "sha256:c"),
            row(&["v1.2.0"], "sha256:d"),
            row(&["main"], "sha256:e"),
            row(&[], "sha256:f"),
            row(&["v2.0.0"], "sha256:g"),
            // A platform image of an index, untagged: part of the index's version.
            VersionRow {
                in_index: true,
                ..row(&[], "sha256:h")
            },
        ];
        let (semver, other, untagged) = version_lists("acme/p", &rows);
        let labels: Vec<_> = semver.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            ["v2.0.0", "v2.0.0-rc.1", "v1.10.0", "v1.9.0", "v1.2.0"]
        );
        let labels: Vec<_> = other.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["latest", "main"]);
        assert_eq!(untagged.len(), 1);
        assert_eq!(untagged[0].url, "/packages/acme/p/versions/sha256:f");
    }

    #[test]
    fn version_paths_split_at_the_last_versions_segment() {
        assert_eq!(
            split_version_path("acme/p/versions/v1"),
            Some(("acme/p", "v1"))
        );
        assert_eq!(split_version_path("acme/p"), None);
        assert_eq!(summary("  short  "), "short");
        assert_eq!(human_time("2026-11-28T03:17:05Z"), "2026-11-28 03:17 UTC");
        assert_eq!(human_time(""), "");
        assert_eq!(
            plain_text("provider-\u{202E}swa\u{202C} x"),
            "provider-swa x"
        );
        assert_eq!(plain_text("naïve 名前"), "naïve 名前");
        assert_eq!(
            source_link("github.com/crossplane-contrib/provider-kubernetes").as_deref(),
            Some("https://github.com/crossplane-contrib/provider-kubernetes")
        );
        assert_eq!(
            source_link("https://x.example/a").as_deref(),
            Some("https://x.example/a")
        );
        for not_a_link in [
            "javascript:alert(1)",
            "Upbound",
            "a/b",
            "github.com/",
            "x.y/a b",
        ] {
            assert_eq!(source_link(not_a_link), None, "{not_a_link}");
        }
        let long = "word ".repeat(100);
        let s = summary(&long);
        assert!(
            s.ends_with("word…") && s.chars().count() <= SUMMARY_CHARS + 1,
            "{s}"
        );
        let unbroken = "é".repeat(1000);
        assert_eq!(summary(&unbroken).chars().count(), SUMMARY_CHARS + 1);
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let both = tags(&["latest", "v1.0.0"]);
        assert_eq!(
            preferred_tag("v1.0.0", &both),
            Some("v1.0.0"),
            "the page's own tag"
        );
        assert_eq!(
            preferred_tag("latest", &both),
            Some("latest"),
            "the page's own tag"
        );
        let by_digest = "sha256:0000";
        assert_eq!(
            preferred_tag(by_digest, &both),
            Some("v1.0.0"),
            "not the moving latest"
        );
        let three = tags(&["latest", "v1.0.0", "v1.1.0", "stable"]);
        assert_eq!(
            preferred_tag(by_digest, &three),
            Some("v1.1.0"),
            "the highest semver"
        );
        assert_eq!(
            preferred_tag(by_digest, &tags(&["latest", "main"])),
            Some("main")
        );
        assert_eq!(preferred_tag(by_digest, &tags(&["latest"])), Some("latest"));
        assert_eq!(preferred_tag(by_digest, &[]), None);
        assert_eq!(split_version_path("acme/p/versions/"), None);
        assert_eq!(split_version_path("a/versions/b/c"), None);
    }
}
