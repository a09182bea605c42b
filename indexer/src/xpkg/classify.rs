//! What each object of a package is, and whether the package type allows it.
//!
//! Crossplane's package linter refuses objects a package type does not allow (the table in
//! `shared/specs/xpkg.md`). The marketplace still wants to show such packages, so here a
//! disallowed object is a [`LintFinding`], not a rejection; the package keeps every object.

use serde::Serialize;
use serde_json::Value;

/// The kind of package, from its meta object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PackageType {
    /// Managed resource CRDs (and webhooks, MRDs) plus a controller.
    Provider,
    /// XRDs, Compositions, activation policies and operations.
    Configuration,
    /// A function runtime and the CRDs of its input.
    Function,
}

impl PackageType {
    /// The meta kind, e.g. `Provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "Provider",
            Self::Configuration => "Configuration",
            Self::Function => "Function",
        }
    }

    /// Whether Crossplane lets this package type carry an object of `class`.
    pub fn allows(self, class: ObjectClass) -> bool {
        use ObjectClass as C;
        match self {
            Self::Provider => matches!(
                class,
                C::Crd
                    | C::ManagedResourceDefinition
                    | C::ValidatingWebhookConfiguration
                    | C::MutatingWebhookConfiguration
            ),
            Self::Configuration => matches!(
                class,
                C::Xrd
                    | C::Composition
                    | C::ManagedResourceActivationPolicy
                    | C::Operation
                    | C::CronOperation
                    | C::WatchOperation
            ),
            Self::Function => matches!(class, C::Crd),
        }
    }
}

/// The class of one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectClass {
    /// `meta.pkg.crossplane.io` Provider, Configuration or Function, any version.
    Meta,
    /// `apiextensions.k8s.io/v1` or `/v1beta1` CustomResourceDefinition.
    Crd,
    /// `apiextensions.crossplane.io/v1` or `/v2` CompositeResourceDefinition.
    Xrd,
    /// `apiextensions.crossplane.io` Composition.
    Composition,
    /// `apiextensions.crossplane.io` ManagedResourceDefinition.
    ManagedResourceDefinition,
    /// `apiextensions.crossplane.io` ManagedResourceActivationPolicy.
    ManagedResourceActivationPolicy,
    /// `admissionregistration.k8s.io` ValidatingWebhookConfiguration.
    ValidatingWebhookConfiguration,
    /// `admissionregistration.k8s.io` MutatingWebhookConfiguration.
    MutatingWebhookConfiguration,
    /// `ops.crossplane.io` Operation.
    Operation,
    /// `ops.crossplane.io` CronOperation.
    CronOperation,
    /// `ops.crossplane.io` WatchOperation.
    WatchOperation,
    /// Anything else, including documents that are not Kubernetes objects.
    Other,
}

/// `(group, version)` of an `apiVersion`; the core group is `""`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// `apiVersion` and `kind` of a document, when it is a mapping with both as strings.
pub fn type_meta(value: &Value) -> Option<(&str, &str)> {
    Some((
        value.get("apiVersion")?.as_str()?,
        value.get("kind")?.as_str()?,
    ))
}

/// The package type a document declares, when it is a meta object.
pub fn meta_type(value: &Value) -> Option<PackageType> {
    let (api_version, kind) = type_meta(value)?;
    if split_api_version(api_version).0 != "meta.pkg.crossplane.io" {
        return None;
    }
    match kind {
        "Provider" => Some(PackageType::Provider),
        "Configuration" => Some(PackageType::Configuration),
        "Function" => Some(PackageType::Function),
        _ => None,
    }
}

/// Classifies one document.
pub fn classify(value: &Value) -> ObjectClass {
    use ObjectClass as C;
    if meta_type(value).is_some() {
        return C::Meta;
    }
    let Some((api_version, kind)) = type_meta(value) else {
        return C::Other;
    };
    match (split_api_version(api_version), kind) {
        (("apiextensions.k8s.io", "v1" | "v1beta1"), "CustomResourceDefinition") => C::Crd,
        (("apiextensions.crossplane.io", "v1" | "v2"), "CompositeResourceDefinition") => C::Xrd,
        (("apiextensions.crossplane.io", _), "Composition") => C::Composition,
        (("apiextensions.crossplane.io", _), "ManagedResourceDefinition") => {
            C::ManagedResourceDefinition
        }
        (("apiextensions.crossplane.io", _), "ManagedResourceActivationPolicy") => {
            C::ManagedResourceActivationPolicy
        }
        (("admissionregistration.k8s.io", _), "ValidatingWebhookConfiguration") => {
            C::ValidatingWebhookConfiguration
        }
        (("admissionregistration.k8s.io", _), "MutatingWebhookConfiguration") => {
            C::MutatingWebhookConfiguration
        }
        (("ops.crossplane.io", _), "Operation") => C::Operation,
        (("ops.crossplane.io", _), "CronOperation") => C::CronOperation,
        (("ops.crossplane.io", _), "WatchOperation") => C::WatchOperation,
        _ => C::Other,
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Crossplane would refuse to install the package as it is.
    Error,
    /// Suspicious, but Crossplane accepts it.
    Warning,
}

/// One lint finding about a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintFinding {
    /// How serious.
    pub severity: Severity,
    /// What is wrong, for people.
    pub message: String,
    /// Index into the package's ordered objects (0 = meta), when the finding is about one.
    pub object_index: Option<usize>,
}

impl LintFinding {
    pub(crate) fn error(object_index: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            object_index,
        }
    }

    pub(crate) fn warning(object_index: Option<usize>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            message: message.into(),
            object_index,
        }
    }
}

/// Lints a package's objects, ordered with the meta object first.
///
/// `meta_positions` are the positions of every meta object among the non-empty documents of
/// `package.yaml`, as found (more than one, or a first one not at 0, is reported).
pub fn lint(
    package_type: PackageType,
    objects: &[Outline<'_>],
    meta_positions: &[usize],
) -> Vec<LintFinding> {
    let mut findings = Vec::new();
    if meta_positions.len() > 1 {
        findings.push(LintFinding::error(
            None,
            format!(
                "{} meta objects at documents {meta_positions:?}; Crossplane requires exactly one",
                meta_positions.len()
            ),
        ));
    }
    if let Some(&first) = meta_positions.first().filter(|&&p| p != 0) {
        findings.push(LintFinding::warning(
            Some(0),
            format!("the meta object is document {first}, not the first; Crossplane's build writes it first"),
        ));
    }
    for (index, object) in objects.iter().enumerate().skip(1) {
        if object.class == ObjectClass::Meta {
            continue;
        }
        let Some((api_version, kind)) = object.type_meta else {
            findings.push(LintFinding::error(
                Some(index),
                format!(
                    "document is not a Kubernetes object (no apiVersion and kind strings): {}",
                    object.shape
                ),
            ));
            continue;
        };
        if !package_type.allows(object.class) {
            findings.push(LintFinding::error(
                Some(index),
                format!(
                    "{kind} ({api_version}) is not allowed in a {} package; Crossplane's linter rejects it",
                    package_type.as_str()
                ),
            ));
        }
    }
    findings
}

/// What [`lint`] reads of one document, so the document's tree need not be kept for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outline<'a> {
    pub class: ObjectClass,
    /// [`type_meta`] of the document.
    pub type_meta: Option<(&'a str, &'a str)>,
    /// What the document is when it is not a Kubernetes object: `a mapping`, `a string`, ...
    pub shape: &'static str,
}

impl<'a> Outline<'a> {
    pub fn of(class: ObjectClass, value: &'a Value) -> Self {
        Self {
            class,
            type_meta: type_meta(value),
            shape: shape(value),
        }
    }
}

/// What a document is, for messages.
pub fn shape(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "a mapping",
        Value::Array(_) => "a sequence",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn classify_recognises_every_class_by_group_kind_and_version() {
        let cases = [
            (
                "meta.pkg.crossplane.io/v1alpha1",
                "Configuration",
                ObjectClass::Meta,
            ),
            (
                "meta.pkg.crossplane.io/v1beta1",
                "Function",
                ObjectClass::Meta,
            ),
            (
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                ObjectClass::Crd,
            ),
            (
                "apiextensions.k8s.io/v1beta1",
                "CustomResourceDefinition",
                ObjectClass::Crd,
            ),
            (
                "apiextensions.k8s.io/v2",
                "CustomResourceDefinition",
                ObjectClass::Other,
            ),
            (
                "apiextensions.crossplane.io/v2",
                "CompositeResourceDefinition",
                ObjectClass::Xrd,
            ),
            (
                "apiextensions.crossplane.io/v1beta1",
                "CompositeResourceDefinition",
                ObjectClass::Other,
            ),
            (
                "apiextensions.crossplane.io/v1",
                "Composition",
                ObjectClass::Composition,
            ),
            (
                "apiextensions.crossplane.io/v1alpha1",
                "ManagedResourceDefinition",
                ObjectClass::ManagedResourceDefinition,
            ),
            (
                "apiextensions.crossplane.io/v1alpha1",
                "ManagedResourceActivationPolicy",
                ObjectClass::ManagedResourceActivationPolicy,
            ),
            (
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                ObjectClass::ValidatingWebhookConfiguration,
            ),
            (
                "admissionregistration.k8s.io/v1",
                "MutatingWebhookConfiguration",
                ObjectClass::MutatingWebhookConfiguration,
            ),
            (
                "ops.crossplane.io/v1alpha1",
                "CronOperation",
                ObjectClass::CronOperation,
            ),
            ("v1", "ConfigMap", ObjectClass::Other),
        ];
        for (api_version, kind, class) in cases {
            assert_eq!(
                classify(&json!({"apiVersion": api_version, "kind": kind})),
                class,
                "{api_version} {kind}"
            );
        }
        assert_eq!(classify(&json!("just a string")), ObjectClass::Other);
        assert_eq!(
            meta_type(&json!({"apiVersion": "meta.pkg.crossplane.io/v1", "kind": "Provider"})),
            Some(PackageType::Provider)
        );
    }

    #[test]
    fn lint_reports_disallowed_objects_and_meta_placement() {
        let meta = json!({"apiVersion": "meta.pkg.crossplane.io/v1", "kind": "Function"});
        let crd =
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"});
        let comp = json!({"apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition"});
        let scalar = json!(42);
        let objects: Vec<Outline<'_>> = [&meta, &crd, &comp, &scalar]
            .into_iter()
            .map(|v| Outline::of(classify(v), v))
            .collect();
        let findings = lint(PackageType::Function, &objects, &[2, 5]);
        let messages: Vec<(Severity, Option<usize>, &str)> = findings
            .iter()
            .map(|f| (f.severity, f.object_index, f.message.as_str()))
            .collect();
        assert_eq!(messages.len(), 4, "{messages:#?}");
        assert!(messages[0].2.starts_with("2 meta objects"));
        assert_eq!((messages[1].0, messages[1].1), (Severity::Warning, Some(0)));
        assert_eq!(messages[2].1, Some(2));
        assert!(messages[2].2.contains(
            "Composition (apiextensions.crossplane.io/v1) is not allowed in a Function package"
        ));
        assert!(
            messages[3].2.contains("not a Kubernetes object"),
            "{}",
            messages[3].2
        );
    }
}
