//! "N breaking changes since vX": a version's stored changes from its predecessor, shaped for
//! its page and its JSON. Pure: no I/O.

use shimmer_diff::Change;

use super::{
    body::Since,
    diff::changelog,
    versions::{diff_url, preferred_tag, short_digest},
};
use crate::{db::StoredDiff, text::version_url};

/// What `label` of `repository` changed since its predecessor, from its stored changes.
pub fn since(repository: &str, label: &str, d: &StoredDiff) -> Since {
    let from = preferred_tag("", &d.from_tags)
        .map(str::to_owned)
        .unwrap_or_else(|| short_digest(&d.from_digest));
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
