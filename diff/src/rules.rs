//! Enforcement per change code, as crdify does it: a rules file sets each code to `error`
//! (breaking: fails the gate), `warn` (reported, passes) or `ignore` (dropped); codes it does
//! not name keep their default ([`crate::Code::default_severity`]). The file is TOML or YAML:
//!
//! ```toml
//! [rules]
//! unclassified = "warn"
//! description-changed = "ignore"
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::change::{Change, Code, Severity};

/// What a rules file may set a code to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    Error,
    Warn,
    Ignore,
}

/// The rules file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

/// A rules file that cannot be used, said in one line.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("the rules file is not valid {format}: {message}")]
    Syntax {
        format: &'static str,
        message: String,
    },
    #[error("unknown change code `{0}` in the rules file (known: {known})", known = known())]
    UnknownCode(String),
    #[error("`{code}` is set to `{value}`; a rule is `error`, `warn` or `ignore`")]
    UnknownEnforcement { code: String, value: String },
}

fn known() -> String {
    Code::ALL.map(Code::as_str).join(", ")
}

/// Enforcement by code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules(BTreeMap<Code, Enforcement>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: BTreeMap<String, String>,
}

impl Rules {
    /// Reads a rules file's text.
    pub fn parse(text: &str, format: Format) -> Result<Rules, RulesError> {
        let file: RulesFile = match format {
            Format::Toml => toml::from_str(text).map_err(|e| RulesError::Syntax {
                format: "TOML",
                message: e.message().to_owned(),
            })?,
            Format::Yaml => serde_saphyr::from_str(text).map_err(|e| RulesError::Syntax {
                format: "YAML",
                message: e.to_string().lines().next().unwrap_or_default().to_owned(),
            })?,
        };
        let mut rules = BTreeMap::new();
        for (code, value) in file.rules {
            let c = Code::parse(&code).ok_or_else(|| RulesError::UnknownCode(code.clone()))?;
            let e = match value.as_str() {
                "error" => Enforcement::Error,
                "warn" => Enforcement::Warn,
                "ignore" => Enforcement::Ignore,
                _ => return Err(RulesError::UnknownEnforcement { code, value }),
            };
            rules.insert(c, e);
        }
        Ok(Rules(rules))
    }

    /// `changes` with the rules applied: severities set, ignored ones gone.
    pub fn apply(&self, changes: Vec<Change>) -> Vec<Change> {
        changes
            .into_iter()
            .filter_map(|mut c| {
                let severity = match self.0.get(&c.change) {
                    None => return Some(c),
                    Some(Enforcement::Ignore) => return None,
                    Some(Enforcement::Error) => Severity::Error,
                    Some(Enforcement::Warn) => Severity::Warn,
                };
                c.severity = severity;
                c.breaking = severity == Severity::Error;
                Some(c)
            })
            .collect()
    }
}
