//! A diff as people and programs read it: `{from, to, breaking, warnings, changes}` as JSON, a
//! text report grouped by API and served version with breaking changes first, and the same as
//! Markdown for a pull-request comment. Description-only changes are counted and listed apart.
//! The same changes always give the same bytes.

use std::fmt::Write;

use serde::Serialize;

use crate::change::{Change, Code, Severity};

/// What changed from `from` to `to`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    /// Changes that fail the gate.
    pub breaking: usize,
    pub warnings: usize,
    pub changes: Vec<Change>,
}

impl Report {
    pub fn new(from: &str, to: &str, mut changes: Vec<Change>) -> Report {
        changes.sort();
        changes.dedup();
        Report {
            from: from.to_owned(),
            to: to.to_owned(),
            breaking: changes.iter().filter(|c| c.breaking).count(),
            warnings: changes
                .iter()
                .filter(|c| c.severity == Severity::Warn)
                .count(),
            changes,
        }
    }

    /// The JSON object, with a trailing newline.
    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Groups of (API, version) with their changes, breaking first, then warnings, then the rest;
    /// description changes apart.
    fn groups(&self) -> (Vec<(String, Vec<&Change>)>, Vec<&Change>) {
        let mut groups: Vec<(String, Vec<&Change>)> = Vec::new();
        let mut descriptions = Vec::new();
        for c in &self.changes {
            if c.change == Code::DescriptionChanged {
                descriptions.push(c);
                continue;
            }
            let title = match &c.version {
                Some(v) => format!("{} {v}", c.api),
                None => c.api.clone(),
            };
            match groups.iter_mut().find(|(t, _)| *t == title) {
                Some((_, list)) => list.push(c),
                None => groups.push((title, vec![c])),
            }
        }
        for (_, list) in &mut groups {
            list.sort_by_key(|c| c.severity);
        }
        // Groups with breaking changes first, each kept in name order otherwise.
        groups.sort_by_key(|(_, list)| list.first().map(|c| c.severity));
        (groups, descriptions)
    }

    fn summary(&self) -> String {
        format!(
            "{} breaking change{}, {} warning{}, {} change{} in all from {} to {}",
            self.breaking,
            plural(self.breaking),
            self.warnings,
            plural(self.warnings),
            self.changes.len(),
            plural(self.changes.len()),
            self.from,
            self.to
        )
    }

    /// A readable report.
    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.summary());
        let (groups, descriptions) = self.groups();
        for (title, list) in groups {
            let _ = write!(out, "\n{title}\n");
            for c in list {
                let _ = writeln!(
                    out,
                    "  {:<8} {:<27} {}",
                    label(c.severity),
                    c.change.as_str(),
                    c.detail
                );
            }
        }
        if !descriptions.is_empty() {
            let _ = write!(
                out,
                "\n{} description{} changed:\n",
                descriptions.len(),
                plural(descriptions.len())
            );
            for c in descriptions {
                let _ = writeln!(
                    out,
                    "  {} {} {}",
                    c.api,
                    c.version.as_deref().unwrap_or(""),
                    c.path.as_deref().unwrap_or("(root)")
                );
            }
        }
        out
    }

    /// The same as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("### {}\n", self.summary());
        let (groups, descriptions) = self.groups();
        for (title, list) in groups {
            let _ = write!(
                out,
                "\n#### `{title}`\n\n| | change | path | detail |\n|---|---|---|---|\n"
            );
            for c in list {
                let _ = writeln!(
                    out,
                    "| {} | `{}` | {} | {} |",
                    label(c.severity),
                    c.change.as_str(),
                    c.path
                        .as_deref()
                        .map(|p| format!("`{}`", cell(p)))
                        .unwrap_or_default(),
                    cell(&c.detail)
                );
            }
        }
        if !descriptions.is_empty() {
            let _ = write!(
                out,
                "\n<details><summary>{} description{} changed</summary>\n\n",
                descriptions.len(),
                plural(descriptions.len())
            );
            for c in descriptions {
                let _ = writeln!(
                    out,
                    "- `{}` {} `{}`",
                    c.api,
                    c.version.as_deref().unwrap_or(""),
                    cell(c.path.as_deref().unwrap_or("(root)"))
                );
            }
            out.push_str("\n</details>\n");
        }
        out
    }
}

fn label(s: Severity) -> &'static str {
    match s {
        Severity::Error => "BREAKING",
        Severity::Warn => "warn",
        Severity::Info => "info",
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Text safe in a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
