//! Changes between two versions as pages show them: grouped by API and served version with
//! breaking ones first (description-only changes apart), and as a changelog of what was added,
//! deprecated, removed and changed. Pure: no I/O.

use shimmer_diff::{Change, Code, Severity};

/// One change as a row.
#[derive(Debug, Clone)]
pub struct ChangeView {
    /// `breaking`, `warn` or `info`: a CSS class and the badge's text.
    pub severity: &'static str,
    pub code: &'static str,
    pub path: String,
    pub detail: String,
}

/// The changes of one API (and served version, when they are inside one).
#[derive(Debug, Clone)]
pub struct ChangeGroup {
    pub title: String,
    pub breaking: usize,
    pub changes: Vec<ChangeView>,
}

fn view(c: &Change) -> ChangeView {
    ChangeView {
        severity: match c.severity {
            Severity::Error => "breaking",
            Severity::Warn => "warn",
            Severity::Info => "info",
        },
        code: c.change.as_str(),
        path: c.path.clone().unwrap_or_default(),
        detail: c.detail.clone(),
    }
}

/// `changes` by API and version, groups with breaking changes first, breaking changes first in
/// each; and the description-only changes apart.
pub fn groups(changes: &[Change]) -> (Vec<ChangeGroup>, Vec<ChangeView>) {
    let mut groups: Vec<ChangeGroup> = Vec::new();
    let mut descriptions = Vec::new();
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by(|a, b| (&a.api, &a.version, a.severity).cmp(&(&b.api, &b.version, b.severity)));
    for c in sorted {
        if c.change == Code::DescriptionChanged {
            descriptions.push(view(c));
            continue;
        }
        let title = match &c.version {
            Some(v) => format!("{} {v}", c.api),
            None => c.api.clone(),
        };
        if groups.last().is_none_or(|g| g.title != title) {
            groups.push(ChangeGroup {
                title,
                breaking: 0,
                changes: Vec::new(),
            });
        }
        let group = groups.last_mut().expect("pushed above");
        group.breaking += usize::from(c.breaking);
        group.changes.push(view(c));
    }
    groups.sort_by_key(|g| g.breaking == 0);
    (groups, descriptions)
}

/// A version's changelog, from the changes since its predecessor.
#[derive(Debug, Clone, Default)]
pub struct Changelog {
    pub added: Vec<String>,
    pub deprecated: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Changelog {
    /// The lists with their titles, in the order a changelog reads.
    pub fn sections(&self) -> [(&'static str, &[String]); 4] {
        [
            ("Added", &self.added),
            ("Deprecated", &self.deprecated),
            ("Removed", &self.removed),
            ("Changed", &self.changed),
        ]
    }
}

/// Most entries a changelog list shows; the diff page has them all.
const CHANGELOG_ENTRIES: usize = 50;

/// What was added, deprecated, removed and changed, each entry `<api> <version> <path>` or the
/// change's sentence; descriptions left out.
pub fn changelog(changes: &[Change]) -> Changelog {
    let mut log = Changelog::default();
    for c in changes {
        let list = match c.change {
            Code::ApiAdded | Code::VersionAdded | Code::FieldAdded => &mut log.added,
            Code::VersionDeprecated => &mut log.deprecated,
            Code::ApiRemoved | Code::VersionRemoved | Code::FieldRemoved => &mut log.removed,
            Code::DescriptionChanged => continue,
            _ => &mut log.changed,
        };
        if list.len() < CHANGELOG_ENTRIES {
            let at = [
                Some(c.api.as_str()),
                c.version.as_deref(),
                c.path.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
            list.push(match c.change {
                Code::ApiAdded | Code::ApiRemoved => c.api.clone(),
                Code::FieldAdded | Code::FieldRemoved => at,
                _ => format!("{at}: {}", c.detail),
            });
        }
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(api: &str, version: Option<&str>, path: &str, code: Code) -> Change {
        Change::new(api, version, Some(path), code, format!("{path} {code}"))
    }

    #[test]
    fn breaking_groups_come_first_and_descriptions_apart() {
        let changes = [
            change("a.io/A", Some("v1"), "spec.x", Code::FieldAdded),
            change("b.io/B", Some("v1"), "spec.y", Code::FieldRemoved),
            change("b.io/B", Some("v1"), "spec.z", Code::DescriptionChanged),
            change("b.io/B", Some("v1"), "spec.a", Code::FieldAdded),
        ];
        let (groups, descriptions) = groups(&changes);
        let titles: Vec<&str> = groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(titles, ["b.io/B v1", "a.io/A v1"]);
        assert_eq!(groups[0].changes[0].code, "field-removed");
        assert_eq!(groups[0].breaking, 1);
        assert_eq!(descriptions.len(), 1);
        let log = changelog(&changes);
        assert_eq!(log.added, ["a.io/A v1 spec.x", "b.io/B v1 spec.a"]);
        assert_eq!(log.removed, ["b.io/B v1 spec.y"]);
        assert!(log.changed.is_empty() && log.deprecated.is_empty());
    }
}
