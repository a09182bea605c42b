//! One change between two versions of a package's APIs: where it is (API, served version, field
//! path), what it is (a [`Code`] from a closed set), whether it breaks, how severe it is and
//! one readable sentence. The default severity of each code is the table in `docs/diff.md`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of change: a closed set, each with its default severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    ApiRemoved,
    ApiAdded,
    ScopeChanged,
    VersionRemoved,
    VersionAdded,
    VersionDeprecated,
    StorageVersionChanged,
    FieldRemoved,
    FieldAdded,
    FieldBecameRequired,
    FieldBecameOptional,
    TypeChanged,
    EnumValueRemoved,
    EnumValueAdded,
    EnumAdded,
    EnumRemoved,
    ConstraintTightened,
    ConstraintLoosened,
    PatternChanged,
    ValidationRuleAdded,
    ValidationRuleRemoved,
    ValidationMessageChanged,
    DefaultChanged,
    DefaultRemoved,
    DefaultAdded,
    ListTypeChanged,
    DescriptionChanged,
    Unclassified,
}

impl Code {
    /// Every code, in the order the documentation lists them.
    pub const ALL: [Code; 28] = [
        Code::ApiRemoved,
        Code::ApiAdded,
        Code::ScopeChanged,
        Code::VersionRemoved,
        Code::VersionAdded,
        Code::VersionDeprecated,
        Code::StorageVersionChanged,
        Code::FieldRemoved,
        Code::FieldAdded,
        Code::FieldBecameRequired,
        Code::FieldBecameOptional,
        Code::TypeChanged,
        Code::EnumValueRemoved,
        Code::EnumValueAdded,
        Code::EnumAdded,
        Code::EnumRemoved,
        Code::ConstraintTightened,
        Code::ConstraintLoosened,
        Code::PatternChanged,
        Code::ValidationRuleAdded,
        Code::ValidationRuleRemoved,
        Code::ValidationMessageChanged,
        Code::DefaultChanged,
        Code::DefaultRemoved,
        Code::DefaultAdded,
        Code::ListTypeChanged,
        Code::DescriptionChanged,
        Code::Unclassified,
    ];

    /// The code as written in output and rules files (`field-removed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ApiRemoved => "api-removed",
            Code::ApiAdded => "api-added",
            Code::ScopeChanged => "scope-changed",
            Code::VersionRemoved => "version-removed",
            Code::VersionAdded => "version-added",
            Code::VersionDeprecated => "version-deprecated",
            Code::StorageVersionChanged => "storage-version-changed",
            Code::FieldRemoved => "field-removed",
            Code::FieldAdded => "field-added",
            Code::FieldBecameRequired => "field-became-required",
            Code::FieldBecameOptional => "field-became-optional",
            Code::TypeChanged => "type-changed",
            Code::EnumValueRemoved => "enum-value-removed",
            Code::EnumValueAdded => "enum-value-added",
            Code::EnumAdded => "enum-added",
            Code::EnumRemoved => "enum-removed",
            Code::ConstraintTightened => "constraint-tightened",
            Code::ConstraintLoosened => "constraint-loosened",
            Code::PatternChanged => "pattern-changed",
            Code::ValidationRuleAdded => "validation-rule-added",
            Code::ValidationRuleRemoved => "validation-rule-removed",
            Code::ValidationMessageChanged => "validation-message-changed",
            Code::DefaultChanged => "default-changed",
            Code::DefaultRemoved => "default-removed",
            Code::DefaultAdded => "default-added",
            Code::ListTypeChanged => "list-type-changed",
            Code::DescriptionChanged => "description-changed",
            Code::Unclassified => "unclassified",
        }
    }

    /// The code named `s`, if there is one.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The severity a change of this code has unless a rules file says otherwise: what a
    /// client of the old version may no longer do is an error; the rest is information.
    pub fn default_severity(self) -> Severity {
        match self {
            Code::ApiRemoved
            | Code::ScopeChanged
            | Code::VersionRemoved
            | Code::FieldRemoved
            | Code::FieldBecameRequired
            | Code::TypeChanged
            | Code::EnumValueRemoved
            | Code::EnumAdded
            | Code::ConstraintTightened
            | Code::PatternChanged
            | Code::ValidationRuleAdded
            | Code::DefaultChanged
            | Code::DefaultRemoved
            | Code::ListTypeChanged
            | Code::Unclassified => Severity::Error,
            // Storage moving to a version that existed before is no break; to a new one is
            // (see `api::storage`), which reports it as `Error` itself.
            Code::StorageVersionChanged => Severity::Info,
            Code::ApiAdded
            | Code::VersionAdded
            | Code::VersionDeprecated
            | Code::FieldAdded
            | Code::FieldBecameOptional
            | Code::EnumValueAdded
            | Code::EnumRemoved
            | Code::ConstraintLoosened
            | Code::ValidationRuleRemoved
            | Code::ValidationMessageChanged
            | Code::DefaultAdded
            | Code::DescriptionChanged => Severity::Info,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a change counts: `Error` fails the gate (it breaks), `Warn` is reported and passes,
/// `Info` is reported as what changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warn,
    Info,
}

/// One change. Ordered (derived: by API, version, path, code, detail), so a report is the same
/// bytes for the same input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Change {
    /// `<group>/<Kind>`.
    pub api: String,
    /// The served version, for a change inside one.
    pub version: Option<String>,
    /// The field path from the schema root (`spec.forProvider.tags`, `spec.items[*].name`).
    pub path: Option<String>,
    pub change: Code,
    pub breaking: bool,
    pub severity: Severity,
    /// One readable sentence.
    pub detail: String,
}

impl Change {
    /// A change of `code` with its default severity.
    pub fn new(
        api: &str,
        version: Option<&str>,
        path: Option<&str>,
        change: Code,
        detail: String,
    ) -> Change {
        Change::with_severity(
            api,
            version,
            path,
            change,
            change.default_severity(),
            detail,
        )
    }

    /// A change of `code` whose severity depends on more than its code.
    pub fn with_severity(
        api: &str,
        version: Option<&str>,
        path: Option<&str>,
        change: Code,
        severity: Severity,
        detail: String,
    ) -> Change {
        Change {
            api: api.to_owned(),
            version: version.map(str::to_owned),
            path: path.filter(|p| !p.is_empty()).map(str::to_owned),
            change,
            breaking: severity == Severity::Error,
            severity,
            detail,
        }
    }
}
