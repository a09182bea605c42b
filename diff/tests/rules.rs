//! Every rule of the diff engine, in both directions: each row is a field schema before and
//! after, the change it makes and the change its reverse makes.

use serde_json::{Value, json};
use shimmer_diff::{Change, Code, Definition, Format, Report, Rules, diff};

/// A CRD of `g.io/Thing` whose one served version `v1` has `spec.forProvider.field: field`.
fn crd(field: Value) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "spec": {"group": "g.io", "scope": "Cluster", "names": {"kind": "Thing"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema":
                {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "forProvider": {"type": "object", "properties": {"field": field}}}}}}}}]}})
}

fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let (o, n) = (old.to_string(), new.to_string());
    fn def<'a>(json: &'a str, digest: &'a str) -> Definition<'a> {
        Definition {
            group: "g.io",
            kind: "Thing",
            digest,
            json,
        }
    }
    diff(&[def(&o, "sha256:old")], &[def(&n, "sha256:new")]).unwrap()
}

fn codes(old: Value, new: Value) -> Vec<(Code, bool)> {
    changes(&crd(old), &crd(new))
        .into_iter()
        .map(|c| (c.change, c.breaking))
        .collect()
}

/// A rule's row: its name, the field before and after, the changes forward and reversed.
type Row = (
    &'static str,
    Value,
    Value,
    Vec<(Code, bool)>,
    Vec<(Code, bool)>,
);

#[test]
fn each_field_rule_in_both_directions() {
    use Code::*;
    let s = |extra: Value| {
        let mut f = json!({"type": "string"});
        f.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        f
    };
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        ("type", json!({"type": "string"}), json!({"type": "integer"}),
            vec![(TypeChanged, true)], vec![(TypeChanged, true)]),
        ("int-or-string", json!({"x-kubernetes-int-or-string": true}), json!({}),
            vec![(TypeChanged, true)], vec![(ConstraintLoosened, false)]),
        ("preserve-unknown", json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}), json!({"type": "object"}),
            vec![(TypeChanged, true)], vec![(ConstraintLoosened, false)]),
        ("nullable", s(json!({"nullable": true})), s(json!({})),
            vec![(TypeChanged, true)], vec![(ConstraintLoosened, false)]),
        ("enum value", s(json!({"enum": ["a", "b"]})), s(json!({"enum": ["a"]})),
            vec![(EnumValueRemoved, true)], vec![(EnumValueAdded, false)]),
        ("enum on a free field", s(json!({})), s(json!({"enum": ["a"]})),
            vec![(EnumAdded, true)], vec![(EnumRemoved, false)]),
        ("maxLength lowered", s(json!({"maxLength": 10})), s(json!({"maxLength": 5})),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("maxLength added", s(json!({})), s(json!({"maxLength": 5})),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("maximum", json!({"type": "integer", "maximum": 10}), json!({"type": "integer", "maximum": 9}),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("maxItems", json!({"type": "array", "maxItems": 3}), json!({"type": "array", "maxItems": 2}),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("maxProperties", json!({"type": "object", "maxProperties": 3}), json!({"type": "object", "maxProperties": 2}),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("minimum raised", json!({"type": "integer", "minimum": 1}), json!({"type": "integer", "minimum": 2}),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("minLength added", s(json!({})), s(json!({"minLength": 1})),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("minItems", json!({"type": "array", "minItems": 0}), json!({"type": "array", "minItems": 1}),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("minProperties", json!({"type": "object"}), json!({"type": "object", "minProperties": 1}),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("exclusiveMinimum", json!({"type": "integer", "minimum": 0}), json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true}),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("exclusiveMaximum", json!({"type": "integer", "maximum": 9}), json!({"type": "integer", "maximum": 9, "exclusiveMaximum": true}),
            vec![(ConstraintTightened, true)], vec![(ConstraintLoosened, false)]),
        ("pattern added", s(json!({})), s(json!({"pattern": "^a$"})),
            vec![(PatternChanged, true)], vec![(ConstraintLoosened, false)]),
        ("pattern changed", s(json!({"pattern": "^a$"})), s(json!({"pattern": "^b$"})),
            vec![(PatternChanged, true)], vec![(PatternChanged, true)]),
        ("CEL rule", s(json!({})), s(json!({"x-kubernetes-validations": [{"rule": "self != ''", "message": "empty"}]})),
            vec![(ValidationRuleAdded, true)], vec![(ValidationRuleRemoved, false)]),
        ("CEL rule changed", s(json!({"x-kubernetes-validations": [{"rule": "size(self) < 3"}]})),
            s(json!({"x-kubernetes-validations": [{"rule": "size(self) < 2"}]})),
            vec![(ValidationRuleAdded, true), (ValidationRuleRemoved, false)],
            vec![(ValidationRuleAdded, true), (ValidationRuleRemoved, false)]),
        ("CEL message", s(json!({"x-kubernetes-validations": [{"rule": "r", "message": "a"}]})),
            s(json!({"x-kubernetes-validations": [{"rule": "r", "message": "b"}]})),
            vec![(ValidationMessageChanged, false)], vec![(ValidationMessageChanged, false)]),
        ("default changed", s(json!({"default": "a"})), s(json!({"default": "b"})),
            vec![(DefaultChanged, true)], vec![(DefaultChanged, true)]),
        ("default removed", s(json!({"default": "a"})), s(json!({})),
            vec![(DefaultRemoved, true)], vec![(DefaultAdded, false)]),
        ("list type", json!({"type": "array", "x-kubernetes-list-type": "atomic"}), json!({"type": "array", "x-kubernetes-list-type": "set"}),
            vec![(ListTypeChanged, true)], vec![(ListTypeChanged, true)]),
        ("map keys", json!({"type": "array", "x-kubernetes-list-map-keys": ["a"]}), json!({"type": "array", "x-kubernetes-list-map-keys": ["a", "b"]}),
            vec![(ListTypeChanged, true)], vec![(ListTypeChanged, true)]),
        ("description", s(json!({"description": "a"})), s(json!({"description": "b"})),
            vec![(DescriptionChanged, false)], vec![(DescriptionChanged, false)]),
        ("no rule covers format", s(json!({"format": "date"})), s(json!({"format": "uri"})),
            vec![(Unclassified, true)], vec![(Unclassified, true)]),
    ];
    for (name, old, new, forward, backward) in table {
        assert_eq!(codes(old.clone(), new.clone()), forward, "{name}");
        assert_eq!(codes(new, old), backward, "{name}, reversed");
    }
}

#[test]
fn fields_removed_added_and_required_are_reported_once_at_their_top() {
    let obj = |props: Value, required: Value| json!({"type": "object", "properties": props, "required": required});
    let before = obj(
        json!({"a": {"type": "string"}, "gone": obj(json!({"deep": {"type": "string"}}), json!([]))}),
        json!([]),
    );
    let after = obj(
        json!({"a": {"type": "string"}, "new": obj(json!({"req": {"type": "string"}}), json!(["req"])), "must": {"type": "string"}}),
        json!(["a", "must"]),
    );
    let found: Vec<(Code, String, bool)> = changes(&crd(before.clone()), &crd(after.clone()))
        .into_iter()
        .map(|c| (c.change, c.path.unwrap(), c.breaking))
        .collect();
    let p = |s: &str| format!("spec.forProvider.field.{s}");
    assert_eq!(
        found,
        [
            (Code::FieldBecameRequired, p("a"), true),
            (Code::FieldRemoved, p("gone"), true),
            // New and required under an existing parent: breaking.
            (Code::FieldBecameRequired, p("must"), true),
            // A required field under a new parent is not walked: the parent is one addition.
            (Code::FieldAdded, p("new"), false),
        ]
    );
    let back: Vec<(Code, String)> = changes(&crd(after), &crd(before))
        .into_iter()
        .map(|c| (c.change, c.path.unwrap()))
        .collect();
    assert_eq!(
        back,
        [
            (Code::FieldBecameOptional, p("a")),
            (Code::FieldAdded, p("gone")),
            (Code::FieldRemoved, p("must")),
            (Code::FieldRemoved, p("new")),
        ]
    );
}

#[test]
fn array_items_are_written_with_a_star() {
    let list = |t: &str| json!({"type": "array", "items": {"type": "object", "properties": {"name": {"type": t}}}});
    let c = changes(&crd(list("string")), &crd(list("integer")));
    assert_eq!(c[0].path.as_deref(), Some("spec.forProvider.field[*].name"));
    assert_eq!(c[0].change, Code::TypeChanged);
}

fn api(versions: Value, scope: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "spec": {"group": "g.io", "scope": scope, "names": {"kind": "Thing"}, "versions": versions}})
}

fn v(name: &str, storage: bool) -> Value {
    json!({"name": name, "served": true, "storage": storage, "schema": {"openAPIV3Schema": {"type": "object"}}})
}

#[test]
fn api_level_rules_in_both_directions() {
    let list = |c: Vec<Change>| {
        c.into_iter()
            .map(|c| (c.change, c.breaking))
            .collect::<Vec<_>>()
    };
    // A served version removed, and its reverse.
    let one = api(json!([v("v1", true)]), "Cluster");
    let two = api(json!([v("v1", true), v("v2", false)]), "Cluster");
    assert_eq!(list(changes(&two, &one)), [(Code::VersionRemoved, true)]);
    assert_eq!(list(changes(&one, &two)), [(Code::VersionAdded, false)]);
    // Scope.
    let ns = api(json!([v("v1", true)]), "Namespaced");
    assert_eq!(list(changes(&one, &ns)), [(Code::ScopeChanged, true)]);
    assert_eq!(list(changes(&ns, &one)), [(Code::ScopeChanged, true)]);
    // Storage moved to a version that existed: fine; to a new one: breaking.
    let moved = api(json!([v("v1", false), v("v2", true)]), "Cluster");
    assert_eq!(
        list(changes(&two, &moved)),
        [(Code::StorageVersionChanged, false)]
    );
    let fresh = api(json!([v("v2", true)]), "Cluster");
    assert_eq!(
        list(changes(&one, &fresh)),
        [
            (Code::StorageVersionChanged, true),
            (Code::VersionRemoved, true),
            (Code::VersionAdded, false)
        ]
    );
    // Deprecated, with its warning.
    let mut dep = v("v1", true);
    dep["deprecated"] = json!(true);
    dep["deprecationWarning"] = json!("use v2");
    let c = changes(&one, &api(json!([dep]), "Cluster"));
    assert_eq!(
        (c[0].change, c[0].breaking),
        (Code::VersionDeprecated, false)
    );
    assert!(c[0].detail.contains("use v2"), "{}", c[0].detail);
}

#[test]
fn apis_removed_added_and_shared_digests_skipped() {
    let broken = "{not json";
    let d = |kind: &'static str, digest: &'static str, json: &'static str| Definition {
        group: "g.io",
        kind,
        digest,
        json,
    };
    // The same digest on both sides is not parsed (its JSON here would not parse).
    let c = diff(
        &[d("Same", "sha256:a", broken), d("Gone", "sha256:b", broken)],
        &[d("Same", "sha256:a", broken), d("New", "sha256:c", broken)],
    )
    .unwrap();
    let found: Vec<(&str, Code, bool)> = c
        .iter()
        .map(|c| (c.api.as_str(), c.change, c.breaking))
        .collect();
    assert_eq!(
        found,
        [
            ("g.io/Gone", Code::ApiRemoved, true),
            ("g.io/New", Code::ApiAdded, false)
        ]
    );
    // Differing digests are parsed, and bad JSON is an error naming the API.
    let e = diff(
        &[d("Same", "sha256:a", broken)],
        &[d("Same", "sha256:z", "{}")],
    )
    .unwrap_err();
    assert!(e.to_string().contains("g.io/Same"), "{e}");
}

#[test]
fn xrds_compare_from_each_versions_root_and_their_referenceable_version() {
    let xrd = |param: Value, referenceable: &str| {
        json!({"apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "CompositeResourceDefinition", "spec": {"group": "g.io", "names": {"kind": "XNet"},
        "versions": [{"name": "v1alpha1", "served": true, "referenceable": referenceable == "v1alpha1",
                      "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
                          "properties": {"parameters": {"type": "object", "properties": {"region": param}}}}}}}},
                     {"name": "v1", "served": true, "referenceable": referenceable == "v1"}]}})
    };
    let c = changes(
        &xrd(json!({"type": "string"}), "v1alpha1"),
        &xrd(json!({"type": "string", "enum": ["eu"]}), "v1"),
    );
    let found: Vec<(Option<&str>, Code)> =
        c.iter().map(|c| (c.path.as_deref(), c.change)).collect();
    assert_eq!(
        found,
        [
            (None, Code::StorageVersionChanged),
            (Some("spec.parameters.region"), Code::EnumAdded)
        ]
    );
    assert!(!c[0].breaking, "v1 existed before");
}

#[test]
fn rules_files_set_error_warn_or_ignore_and_refuse_what_they_do_not_know() {
    let all = changes(
        &crd(json!({"type": "string", "format": "a", "description": "x"})),
        &crd(json!({"type": "string", "format": "b", "description": "y"})),
    );
    assert_eq!(all.len(), 2);
    let toml = Rules::parse(
        "[rules]\nunclassified = \"warn\"\ndescription-changed = \"ignore\"\n",
        Format::Toml,
    )
    .unwrap();
    let yaml = Rules::parse(
        "rules:\n  unclassified: warn\n  description-changed: ignore\n",
        Format::Yaml,
    )
    .unwrap();
    assert_eq!(toml, yaml);
    let applied = toml.apply(all.clone());
    assert_eq!(applied.len(), 1);
    assert_eq!(
        (applied[0].change, applied[0].breaking),
        (Code::Unclassified, false)
    );
    let error = Rules::parse("[rules]\nfield-added = \"error\"\n", Format::Toml).unwrap();
    let added = changes(
        &crd(json!({"type": "object"})),
        &crd(json!({"type": "object", "properties": {"x": {"type": "string"}}})),
    );
    assert!(error.apply(added)[0].breaking);
    for (text, format, said) in [
        (
            "[rules]\nno-such-code = \"warn\"\n",
            Format::Toml,
            "unknown change code `no-such-code`",
        ),
        (
            "[rules]\nfield-added = \"fatal\"\n",
            Format::Toml,
            "`field-added` is set to `fatal`",
        ),
        ("[rulez]\n", Format::Toml, "not valid TOML"),
        ("rules: [\n", Format::Yaml, "not valid YAML"),
    ] {
        let e = Rules::parse(text, format).unwrap_err().to_string();
        assert!(e.contains(said), "{e}");
        assert!(!e.contains('\n'), "one line: {e}");
    }
}

#[test]
fn reports_are_the_same_bytes_for_the_same_input_breaking_first() {
    let old = crd(
        json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string", "description": "x"}}}),
    );
    let new = crd(
        json!({"type": "object", "properties": {"b": {"type": "string", "description": "y"}, "c": {"type": "string"}}}),
    );
    let report = Report::new("v1", "v2", changes(&old, &new));
    assert_eq!(
        (report.breaking, report.warnings, report.changes.len()),
        (1, 0, 3)
    );
    let text = report.text();
    assert_eq!(text, Report::new("v1", "v2", changes(&old, &new)).text());
    let removed = text.find("field-removed").unwrap();
    let added = text.find("field-added").unwrap();
    assert!(removed < added, "breaking first:\n{text}");
    assert!(text.contains("1 description changed:"), "{text}");
    let json: Value = serde_json::from_str(&report.json()).unwrap();
    assert_eq!(json["breaking"], 1);
    assert_eq!(json["changes"][0]["change"], "field-removed");
    assert_eq!(json["changes"][0]["severity"], "error");
    assert!(
        report
            .markdown()
            .contains("| BREAKING | `field-removed` | `spec.forProvider.field.a` |")
    );
}

#[test]
fn what_no_rule_covers_is_never_dropped() {
    // A schema that is no object, and covered keys of unexpected types.
    for (old, new) in [
        (json!(true), json!(false)),
        (
            json!({"type": "integer", "maximum": "10"}),
            json!({"type": "integer", "maximum": "5"}),
        ),
        (
            json!({"type": "string", "enum": "a"}),
            json!({"type": "string", "enum": "b"}),
        ),
        (
            json!({"type": "string", "x-kubernetes-validations": [{"rule": "r", "reason": "FieldValueInvalid"}]}),
            json!({"type": "string", "x-kubernetes-validations": [{"rule": "r", "reason": "FieldValueForbidden"}]}),
        ),
    ] {
        let found = codes(old.clone(), new.clone());
        assert_eq!(found, [(Code::Unclassified, true)], "{old} -> {new}");
    }
}

#[test]
fn stored_definitions_read_only_what_is_compared() {
    use std::collections::HashMap;
    let s = |d: &str| ("g.io".to_owned(), "K".to_owned(), d.to_owned());
    // The old side defines the kind twice; the first definition is the one compared.
    let old = [s("sha256:d1"), s("sha256:d2")];
    let new = [s("sha256:d2")];
    let read = shimmer_diff::digests_to_read(&old, &new);
    assert_eq!(read, ["sha256:d1", "sha256:d2"]);
    let v = |x: &str| {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "spec": {"group": "g.io", "scope": x,
            "names": {"kind": "K"}, "versions": []}})
        .to_string()
    };
    let json: HashMap<String, String> = [
        ("sha256:d1".to_owned(), v("Cluster")),
        ("sha256:d2".to_owned(), v("Namespaced")),
    ]
    .into();
    let changes = shimmer_diff::diff_stored(&old, &new, &json).unwrap();
    assert_eq!(changes[0].change, Code::ScopeChanged);
    // Shared as compared: nothing to read, nothing changed.
    assert!(shimmer_diff::digests_to_read(&new, &new).is_empty());
}
