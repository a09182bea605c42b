//! Kept whole (about 500 lines): every rule over a schema node is one method of one walk, and
//! the rules share its rule of reporting; split, a rule would have to be looked for.
//!
//! Two versions of one served version's `openAPIV3Schema`, compared field by field from the
//! root. Rules: a field removed or added is reported once, at its top, and not walked; a node
//! present on both sides is compared key by key, and a key no rule covers that differs (or a
//! node that is no object, or a difference no rule reported) is `unclassified`, with both
//! values, never dropped.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::change::{Change, Code};

/// Keys a rule below covers; any other key that differs is `unclassified`.
const COVERED: [&str; 26] = [
    "type",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "nullable",
    "description",
    "enum",
    "maxLength",
    "maximum",
    "maxItems",
    "maxProperties",
    "minLength",
    "minimum",
    "minItems",
    "minProperties",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "default",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "properties",
    "required",
    "items",
    "additionalProperties",
];

/// Upper bounds: lowering or adding one tightens.
const UPPER: [&str; 4] = ["maxLength", "maximum", "maxItems", "maxProperties"];
/// Lower bounds: raising or adding one tightens.
const LOWER: [&str; 4] = ["minLength", "minimum", "minItems", "minProperties"];

/// Where changes of one served version go.
pub(crate) struct Walk<'a> {
    pub api: &'a str,
    pub version: &'a str,
    pub out: &'a mut Vec<Change>,
}

impl Walk<'_> {
    fn push(&mut self, path: &str, code: Code, detail: String) {
        self.out.push(Change::new(
            self.api,
            Some(self.version),
            Some(path),
            code,
            detail,
        ));
    }

    /// Compares the node at `path`, present in both schemas.
    pub(crate) fn node(&mut self, path: &str, old: &Value, new: &Value) {
        if old == new {
            return;
        }
        // A schema that is no object (`true`, a string) has no keys to compare.
        if !old.is_object() || !new.is_object() {
            self.unclassified(path, "the schema", Some(old), Some(new));
            return;
        }
        let before = self.out.len();
        self.keys(path, old, new);
        // Whatever differs and no rule reported (a covered key of an unexpected type: a
        // `maximum` written as a string, an `enum` that is no list) is reported all the same.
        if self.out.len() == before {
            self.unclassified(path, "the schema", Some(old), Some(new));
        }
    }

    /// Every rule over the keys of a node present in both schemas.
    fn keys(&mut self, path: &str, old: &Value, new: &Value) {
        let at = |p: &str| {
            if p.is_empty() {
                "the schema root".to_owned()
            } else {
                p.to_owned()
            }
        };
        if self.types(path, old, new) {
            return;
        }
        if old.get("description") != new.get("description") {
            self.push(
                path,
                Code::DescriptionChanged,
                format!("{}: the description changed.", at(path)),
            );
        }
        self.enums(path, old, new);
        self.bounds(path, old, new);
        self.pattern(path, old, new);
        self.default(path, old, new);
        self.validations(path, old, new);
        for key in [
            "x-kubernetes-list-type",
            "x-kubernetes-list-map-keys",
            "x-kubernetes-map-type",
        ] {
            if old.get(key) != new.get(key) {
                self.push(
                    path,
                    Code::ListTypeChanged,
                    format!(
                        "{}: {key} changed from {} to {}.",
                        at(path),
                        shown(old.get(key)),
                        shown(new.get(key))
                    ),
                );
            }
        }
        self.properties(path, old, new);
        for (key, step) in [("items", "[*]"), ("additionalProperties", ".*")] {
            match (old.get(key), new.get(key)) {
                (Some(o), Some(n)) if o.is_object() && n.is_object() => {
                    self.node(&format!("{path}{step}"), o, n);
                }
                (o, n) if o != n => self.unclassified(path, key, o, n),
                _ => {}
            }
        }
        let keys: BTreeSet<&String> = object_keys(old).chain(object_keys(new)).collect();
        for key in keys {
            if !COVERED.contains(&key.as_str()) && old.get(key) != new.get(key) {
                self.unclassified(path, key, old.get(key), new.get(key));
            }
        }
    }

    fn unclassified(&mut self, path: &str, key: &str, old: Option<&Value>, new: Option<&Value>) {
        let at = if path.is_empty() {
            "the schema root"
        } else {
            path
        };
        self.push(
            path,
            Code::Unclassified,
            format!(
                "{at}: {key} changed from {} to {}; no rule covers it.",
                shown(old),
                shown(new)
            ),
        );
    }

    /// The node's type, int-or-string, preserve-unknown-fields and nullable. Returns whether the
    /// type itself changed (the subtree is then reported once, here).
    fn types(&mut self, path: &str, old: &Value, new: &Value) -> bool {
        let at = if path.is_empty() {
            "the schema root"
        } else {
            path
        };
        let (ot, nt) = (old.get("type"), new.get("type"));
        if ot != nt {
            self.push(
                path,
                Code::TypeChanged,
                format!(
                    "{at}: the type changed from {} to {}.",
                    shown(ot),
                    shown(nt)
                ),
            );
            return true;
        }
        for (key, lost, gained) in [
            (
                "x-kubernetes-int-or-string",
                "no longer accepts both integers and strings",
                "now accepts both integers and strings",
            ),
            (
                "x-kubernetes-preserve-unknown-fields",
                "no longer keeps fields its schema does not list",
                "now keeps fields its schema does not list",
            ),
            ("nullable", "no longer accepts null", "now accepts null"),
        ] {
            match (flag(old, key), flag(new, key)) {
                (true, false) => self.push(
                    path,
                    Code::TypeChanged,
                    format!("{at} {lost} ({key} dropped)."),
                ),
                (false, true) => self.push(
                    path,
                    Code::ConstraintLoosened,
                    format!("{at} {gained} ({key})."),
                ),
                _ => {}
            }
        }
        false
    }

    fn enums(&mut self, path: &str, old: &Value, new: &Value) {
        let at = if path.is_empty() {
            "the schema root"
        } else {
            path
        };
        match (
            old.get("enum").and_then(Value::as_array),
            new.get("enum").and_then(Value::as_array),
        ) {
            (Some(o), Some(n)) => {
                for v in o.iter().filter(|v| !n.contains(v)) {
                    self.push(
                        path,
                        Code::EnumValueRemoved,
                        format!("{at}: the value {v} is no longer allowed."),
                    );
                }
                for v in n.iter().filter(|v| !o.contains(v)) {
                    self.push(
                        path,
                        Code::EnumValueAdded,
                        format!("{at}: the value {v} is now allowed."),
                    );
                }
            }
            (None, Some(n)) => self.push(
                path,
                Code::EnumAdded,
                format!("{at}: now limited to {}.", list(n)),
            ),
            (Some(o), None) => self.push(
                path,
                Code::EnumRemoved,
                format!("{at}: no longer limited to {}.", list(o)),
            ),
            (None, None) => {}
        }
    }

    fn bounds(&mut self, path: &str, old: &Value, new: &Value) {
        let at = if path.is_empty() {
            "the schema root"
        } else {
            path
        };
        for (keys, tighter) in [(UPPER, -1.0), (LOWER, 1.0)] {
            for key in keys {
                let (o, n) = (
                    old.get(key).and_then(Value::as_f64),
                    new.get(key).and_then(Value::as_f64),
                );
                let code = match (o, n) {
                    (None, Some(_)) => Code::ConstraintTightened,
                    (Some(_), None) => Code::ConstraintLoosened,
                    (Some(o), Some(n)) if (n - o) * tighter > 0.0 => Code::ConstraintTightened,
                    (Some(o), Some(n)) if o != n => Code::ConstraintLoosened,
                    _ => continue,
                };
                self.push(
                    path,
                    code,
                    format!(
                        "{at}: {key} changed from {} to {}.",
                        shown(old.get(key)),
                        shown(new.get(key))
                    ),
                );
            }
        }
        for key in ["exclusiveMinimum", "exclusiveMaximum"] {
            match (flag(old, key), flag(new, key)) {
                (false, true) => self.push(
                    path,
                    Code::ConstraintTightened,
                    format!("{at}: {key} added."),
                ),
                (true, false) => self.push(
                    path,
                    Code::ConstraintLoosened,
                    format!("{at}: {key} removed."),
                ),
                _ => {}
            }
        }
    }

    fn pattern(&mut self, path: &str, old: &Value, new: &Value) {
        let at = if path.is_empty() {
            "the schema root"
        } else {
            path
        };
        match (old.get("pattern"), new.get("pattern")) {
            (o, Some(n)) if o != Some(n) => self.push(
                path,
                Code::PatternChanged,
                format!("{at}: the pattern changed from {} to {n}.", shown(o)),
            ),
            (Some(o), None) => self.push(
                path,
                Code::ConstraintLoosened,
                format!("{at}: the pattern {o} was removed."),
            ),
            _ => {}
        }
    }

    fn default(&mut self, path: &str, old: &Value, new: &Value) {
        let at = if path.is_empty() {
            "the schema root"
        } else {
            path
        };
        match (old.get("default"), new.get("default")) {
            (Some(o), Some(n)) if o != n => self.push(
                path,
                Code::DefaultChanged,
                format!(
                    "{at}: the default changed from {} to {}.",
                    shown(Some(o)),
                    shown(Some(n))
                ),
            ),
            (Some(o), None) => self.push(
                path,
                Code::DefaultRemoved,
                format!("{at}: the default {} was removed.", shown(Some(o))),
            ),
            (None, Some(n)) => self.push(
                path,
                Code::DefaultAdded,
                format!("{at}: defaults to {}.", shown(Some(n))),
            ),
            _ => {}
        }
    }

    /// CEL rules, each known by its `rule` text: added, removed, or the same rule with another
    /// message.
    fn validations(&mut self, path: &str, old: &Value, new: &Value) {
        let at = if path.is_empty() {
            "the schema root"
        } else {
            path
        };
        let (o, n) = (rules(old), rules(new));
        for (rule, message) in &n {
            match o.get(rule) {
                None => self.push(
                    path,
                    Code::ValidationRuleAdded,
                    format!("{at}: the rule `{rule}` was added{}.", message_of(message)),
                ),
                Some(m) if m != message => self.push(
                    path,
                    Code::ValidationMessageChanged,
                    format!("{at}: the rule `{rule}` now says{}.", message_of(message)),
                ),
                Some(_) => {}
            }
        }
        for (rule, message) in &o {
            if !n.contains_key(rule) {
                self.push(
                    path,
                    Code::ValidationRuleRemoved,
                    format!(
                        "{at}: the rule `{rule}` was removed{}.",
                        message_of(message)
                    ),
                );
            }
        }
    }

    /// Fields removed, added (required or not), made required or optional; fields on both
    /// sides compared in turn.
    fn properties(&mut self, path: &str, old: &Value, new: &Value) {
        let empty = serde_json::Map::new();
        let op = old
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let np = new
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let (or, nr) = (required(old), required(new));
        let child = |name: &str| {
            if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            }
        };
        let names: BTreeSet<&String> = op.keys().chain(np.keys()).collect();
        for name in names {
            let p = child(name);
            match (op.get(name), np.get(name)) {
                (Some(_), None) => self.push(&p, Code::FieldRemoved, format!("{p} was removed.")),
                (None, Some(_)) if nr.contains(name.as_str()) => self.push(
                    &p,
                    Code::FieldBecameRequired,
                    format!("{p} is new and required."),
                ),
                (None, Some(_)) => {
                    self.push(&p, Code::FieldAdded, format!("{p} was added (optional)."))
                }
                (Some(o), Some(n)) => {
                    match (or.contains(name.as_str()), nr.contains(name.as_str())) {
                        (false, true) => self.push(
                            &p,
                            Code::FieldBecameRequired,
                            format!("{p} is now required."),
                        ),
                        (true, false) => self.push(
                            &p,
                            Code::FieldBecameOptional,
                            format!("{p} is no longer required."),
                        ),
                        _ => {}
                    }
                    self.node(&p, o, n);
                }
                (None, None) => {}
            }
        }
    }
}

fn object_keys(v: &Value) -> impl Iterator<Item = &String> {
    v.as_object().into_iter().flat_map(|m| m.keys())
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn required(v: &Value) -> BTreeSet<&str> {
    v.get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `x-kubernetes-validations` as rule text to its message (`message`, else `messageExpression`).
fn rules(v: &Value) -> BTreeMap<String, String> {
    v.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    let rule = r.get("rule")?.as_str()?.to_owned();
                    let message = r
                        .get("message")
                        .or_else(|| r.get("messageExpression"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    Some((rule, message))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn message_of(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" (\"{message}\")")
    }
}

/// A value as a sentence shows it: JSON, cut to 120 characters; `nothing` when absent.
fn shown(v: Option<&Value>) -> String {
    let Some(v) = v else {
        return "nothing".to_owned();
    };
    let text = v.to_string();
    match text.char_indices().nth(120) {
        None => text,
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
