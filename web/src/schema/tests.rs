use serde_json::json;

use super::*;

#[test]
fn the_tree_shows_every_facet_of_a_field_and_escapes_it() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "required": ["region"], "properties": {
            "region": {"type": "string", "description": "The **region**. <script>x()</script>",
                       "enum": ["us-east-1", "eu-west-1"], "pattern": "^[a-z]+$"},
            "size": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 10,
                     "default": 3},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "rules": {"type": "array", "items": {"type": "object", "properties": {
                "port": {"x-kubernetes-int-or-string": true}}},
                "x-kubernetes-list-type": "atomic"},
            "<b>evil</b>": {"type": "string"}
        }, "x-kubernetes-validations": [{"rule": "self.size < 5", "message": "too big"}]}}
    });
    let html = render_tree("v1", &schema);
    assert!(html.contains("id=\"v1.spec\" open"), "{html}");
    assert!(html.contains("id=\"v1.spec.region\""), "{html}");
    assert!(html.contains("href=\"#v1.spec.rules[].port\""), "{html}");
    assert!(html.contains("<strong>region</strong>"), "{html}");
    assert!(html.contains("us-east-1, eu-west-1"), "{html}");
    assert!(html.contains("^[a-z]+$"), "{html}");
    assert!(
        html.contains("int32") && html.contains("<dd><code>3</code></dd>"),
        "{html}"
    );
    assert!(html.contains("map[string]string"), "{html}");
    assert!(
        html.contains("[]object") && html.contains("int-or-string"),
        "{html}"
    );
    assert!(html.contains("x-kubernetes-list-type: atomic"), "{html}");
    assert!(html.contains("self.size &lt; 5  (too big)"), "{html}");
    assert!(html.contains("required"), "{html}");
    assert!(
        !html.contains("<script>") && !html.contains("<b>evil"),
        "{html}"
    );
    assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;"), "{html}");
}

#[test]
fn versions_come_from_v1_and_v1beta1_crds() {
    let v1 = json!({"spec": {"versions": [
        {"name": "v1beta1", "served": true, "storage": false, "deprecated": true,
         "schema": {"openAPIV3Schema": {"type": "object"}}},
        {"name": "v1", "served": true, "storage": true,
         "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
    let vs = versions(&v1);
    assert_eq!(vs.len(), 2);
    assert!(vs[0].deprecated && !vs[0].storage && vs[1].storage);
    let beta = json!({"spec": {"version": "v1alpha1",
        "validation": {"openAPIV3Schema": {"type": "object"}}}});
    let vs = versions(&beta);
    assert_eq!(vs[0].name, "v1alpha1");
    assert!(vs[0].schema.is_some());
}

#[test]
fn one_page_renders_at_most_its_field_budget_over_all_versions() {
    // The attack: a v1beta1 CRD whose shared schema has 30,000 top-level fields, served as
    // 1,000 versions. Before, each version copied and rendered the whole schema.
    let props: serde_json::Map<String, Value> = (0..30_000)
        .map(|i| (format!("f{i}"), json!({"type": "string"})))
        .collect();
    let versions: Vec<Value> = (0..1_000)
        .map(|i| json!({"name": format!("v{i}"), "served": true, "storage": i == 0}))
        .collect();
    let body = json!({"spec": {"versions": versions,
        "validation": {"openAPIV3Schema": {"type": "object", "properties": props}}}});
    let html = render_versions(&body, "/docs/x.yaml");
    assert_eq!(html.matches("class=\"name\"").count(), MAX_PAGE_FIELDS);
    assert_eq!(
        html.matches("<section class=\"schema-version\"").count(),
        1_000
    );
    assert!(html.contains("This schema is longer than the page shows"));
    assert_eq!(
        html.matches("This version's schema is not shown").count(),
        999
    );
    assert!(
        html.len() < MAX_PAGE_TREE_BYTES + 1024 * 1024,
        "{}",
        html.len()
    );
}

#[test]
fn a_deep_schema_is_cut_off() {
    let mut s = json!({"type": "string"});
    for _ in 0..100 {
        s = json!({"type": "object", "properties": {"a": s}});
    }
    let html = render_tree("v1", &s);
    assert!(html.contains("nested deeper than shown"));
}

#[test]
fn versions_are_tabs_storage_first_deprecated_last() {
    let crd = json!({"spec": {"versions": [
        {"name": "v1alpha1", "served": true, "storage": false, "deprecated": true,
         "schema": {"openAPIV3Schema": {"type": "object"}}},
        {"name": "v1beta1", "served": true, "storage": false,
         "schema": {"openAPIV3Schema": {"type": "object"}}},
        {"name": "v1", "served": true, "storage": true,
         "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
             "type": "object", "properties": {"parameters": {"type": "object", "properties": {
                 "region": {"type": "string"}}}}}}}}}
    ]}});
    let html = render_versions(&crd, "/docs/x.yaml");
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} in {html}"));
    assert!(at("id=\"tab-v1\"") < at("id=\"tab-v1beta1\""));
    assert!(at("id=\"tab-v1beta1\"") < at("id=\"tab-v1alpha1\""));
    assert!(
        html.contains("id=\"tab-v1\" href=\"#v1\" aria-controls=\"v1\" aria-selected=\"true\"")
    );
    assert!(
        html.contains("aria-controls=\"v1alpha1\" aria-selected=\"false\" class=\"deprecated\"")
    );
    assert!(at("<section class=\"schema-version\" id=\"v1\"") < at("id=\"v1alpha1\" role"));
    // An XRD's parameters start open, as the spec around them.
    assert!(html.contains("id=\"v1.spec.parameters\" open"), "{html}");
}
