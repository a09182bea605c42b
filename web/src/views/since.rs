//! "N breaking changes since vX": a version's stored changes from its predecessor, shaped for
//! its page and its JSON. Pure: no I/O.

use shimmer_diff::Change;

use super::{
    body::Since,
    diff::changelog,
    versions::{diff_url, preferred_tag},
};
use crate::{db::StoredDiff, text::version_url};

/// What `label` of `repository` changed since its predecessor, from its stored changes.
pub fn since(repository: &str, label: &str, d: &StoredDiff) -> Since {
    // An untagged predecessor is named by its whole digest: its pages and diffs are addressed so.
    let from = preferred_tag("", &d.from_tags)
        .map(str::to_owned)
        .unwrap_or_else(|| d.from_digest.clone());
    let changes: Vec<Change> = serde_json::from_value(d.changes.clone()).unwrap_or_default();
    Since {
        from_url: version_url(repository, &from),
        diff_url: diff_url(repository, Some(&from), label),
        breaking: d.breaking,
        total: d.total,
        changelog: changelog(&changes),
        from,
    }
}
