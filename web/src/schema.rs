//! An OpenAPI v3 schema (a CRD's or XRD's `openAPIV3Schema`) as a collapsible field tree: one
//! `<details>` per field with children, an anchor per field path (`#<version>.spec.forProvider`),
//! type, format, required, default, enum values, validation (bounds, pattern, CEL rules),
//! `x-kubernetes-*` markers and the description as sanitised markdown. Every string from the
//! schema is escaped; the tree is capped in depth and size so a hostile schema cannot make a
//! page without end.

use std::fmt::Write;

use serde_json::Value;

use crate::markdown::{escape, render};

/// Deepest level rendered.
const MAX_DEPTH: usize = 40;
/// Most fields rendered on one page, over all its versions: a v1beta1 CRD shares one schema
/// among all its versions, and 1,000 versions of a 20,000-field schema made a 5.9 GB page.
pub const MAX_PAGE_FIELDS: usize = 20_000;
/// Most bytes of field tree HTML on one page (descriptions make fields of any size).
pub const MAX_PAGE_TREE_BYTES: usize = 8 * 1024 * 1024;

/// One version of a CRD or XRD with its schema, borrowed from it (a schema shared by all
/// versions is not copied per version): the diff engine's reader, one way to read them.
pub use shimmer_diff::{ApiVersion as VersionSchema, api_versions as versions};

/// Every version of a CRD or XRD as a section (badges, warning, description, field tree), within
/// one page's budget ([`MAX_PAGE_FIELDS`], [`MAX_PAGE_TREE_BYTES`]); a version past it says so
/// and points at the raw YAML (`yaml_url`).
pub fn render_versions(body: &Value, yaml_url: &str) -> String {
    let mut r = Renderer {
        out: String::new(),
        fields: 0,
        cut: false,
    };
    let versions = tab_order(versions(body));
    tabs(&mut r.out, &versions);
    for v in versions {
        let name = escape(v.name);
        let _ = write!(
            r.out,
            "<section class=\"schema-version\" id=\"{name}\" role=\"tabpanel\" \
             aria-labelledby=\"tab-{name}\"><h2>{name} <span class=\"badge\">{}</span>",
            if v.served { "served" } else { "not served" }
        );
        if v.storage {
            r.out.push_str(" <span class=\"badge\">storage</span>");
        }
        if v.deprecated {
            r.out
                .push_str(" <span class=\"badge deprecated\">deprecated</span>");
        }
        r.out.push_str("</h2>");
        if let Some(w) = v.deprecation_warning {
            let _ = write!(r.out, "<p class=\"warning\">{}</p>", escape(w));
        }
        match v.schema {
            _ if r.spent() => {
                let _ = write!(
                    r.out,
                    "<p class=\"note\">This version's schema is not shown: the page shows at most \
                     {MAX_PAGE_FIELDS} fields. The whole definition is in the \
                     <a href=\"{}\">YAML</a>.</p>",
                    escape(yaml_url)
                );
            }
            Some(schema) => {
                if let Some(d) = schema["description"]
                    .as_str()
                    .filter(|d| !d.trim().is_empty())
                {
                    let _ = write!(
                        r.out,
                        "<div class=\"schema-description\">{}</div>",
                        render(d)
                    );
                }
                r.tree(v.name, schema);
                if r.cut {
                    let _ = write!(
                        r.out,
                        "<p class=\"note\">This schema is longer than the page shows (at most \
                         {MAX_PAGE_FIELDS} fields a page). The whole definition is in the \
                         <a href=\"{}\">YAML</a>.</p>",
                        escape(yaml_url)
                    );
                }
            }
            None => r.out.push_str("<p>No schema.</p>"),
        }
        r.out.push_str("</section>");
    }
    r.out
}

/// Versions in the order their tabs show them: the storage version first (the one a cluster
/// keeps), then the other served ones, then those not served; deprecated ones last of all.
/// Otherwise in the definition's order.
fn tab_order(mut versions: Vec<VersionSchema<'_>>) -> Vec<VersionSchema<'_>> {
    versions.sort_by_key(|v| (v.deprecated, !v.storage, !v.served));
    versions
}

/// The tab list over the versions (the first selected), and the expand-all and collapse-all
/// buttons. Without the script every version shows, one under another, and the buttons stay
/// hidden.
fn tabs(out: &mut String, versions: &[VersionSchema<'_>]) {
    out.push_str("<div class=\"schema-tools\">");
    if versions.len() > 1 {
        out.push_str("<div class=\"version-tabs\" role=\"tablist\" aria-label=\"API versions\">");
        for (i, v) in versions.iter().enumerate() {
            let name = escape(v.name);
            let mut note = Vec::new();
            if v.storage {
                note.push("storage");
            }
            if v.deprecated {
                note.push("deprecated");
            }
            if !v.served {
                note.push("not served");
            }
            let _ = write!(
                out,
                "<a role=\"tab\" id=\"tab-{name}\" href=\"#{name}\" aria-controls=\"{name}\" \
                 aria-selected=\"{}\"{}>{name}{}</a>",
                i == 0,
                if v.deprecated {
                    " class=\"deprecated\""
                } else {
                    ""
                },
                if note.is_empty() {
                    String::new()
                } else {
                    format!(" <small>{}</small>", note.join(", "))
                }
            );
        }
        out.push_str("</div>");
    }
    out.push_str(
        "<div class=\"expanders\"><button type=\"button\" data-expand=\"all\" hidden>Expand all</button> \
         <button type=\"button\" data-expand=\"none\" hidden>Collapse all</button></div></div>",
    );
}

/// The field tree of `schema` as HTML; anchors are `<version>.<path>` (one version alone, as
/// the tests look at it).
#[cfg(test)]
fn render_tree(version: &str, schema: &Value) -> String {
    let mut r = Renderer {
        out: String::new(),
        fields: 0,
        cut: false,
    };
    r.tree(version, schema);
    if r.cut {
        r.out
            .push_str("<p class=\"note\">This schema is longer than the page shows.</p>");
    }
    r.out
}

/// A page's field trees, with the budget they share.
struct Renderer {
    out: String,
    fields: usize,
    /// A field was left out for the budget.
    cut: bool,
}

impl Renderer {
    fn spent(&self) -> bool {
        self.fields >= MAX_PAGE_FIELDS || self.out.len() >= MAX_PAGE_TREE_BYTES
    }

    fn tree(&mut self, version: &str, schema: &Value) {
        self.out.push_str("<ul class=\"tree\">");
        self.children(version, schema, 0);
        self.out.push_str("</ul>");
    }

    /// The fields under `schema`: its properties, its items (`[]`) and its additional
    /// properties (`{key}`).
    fn children(&mut self, path: &str, schema: &Value, depth: usize) {
        if depth >= MAX_DEPTH {
            self.out
                .push_str("<li class=\"note\">(nested deeper than shown)</li>");
            return;
        }
        let required: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = schema["properties"].as_object() {
            for (name, child) in props {
                let p = format!("{path}.{}", anchor_part(name));
                self.field(&p, name, child, required.contains(&name.as_str()), depth);
            }
        }
        if schema["items"].is_object() {
            self.field(&format!("{path}[]"), "[]", &schema["items"], false, depth);
        }
        if schema["additionalProperties"].is_object() {
            self.field(
                &format!("{path}{{}}"),
                "{key}",
                &schema["additionalProperties"],
                false,
                depth,
            );
        }
    }

    fn field(&mut self, path: &str, name: &str, schema: &Value, required: bool, depth: usize) {
        if self.spent() {
            self.cut = true;
            return;
        }
        self.fields += 1;
        let id = escape(path);
        let has_children = schema["properties"].is_object()
            || schema["items"]["properties"].is_object()
            || schema["additionalProperties"]["properties"].is_object();
        // A `<summary>` toggles its field and may hold no link (a control inside a control):
        // a field with children is named there and linked first thing inside; a leaf's name is
        // its link.
        let mut summary = String::new();
        let title = escape(name);
        let _ = if has_children {
            write!(summary, "<span class=\"name\">{title}</span>")
        } else {
            write!(summary, "<a class=\"name\" href=\"#{id}\">{title}</a>")
        };
        let _ = write!(
            summary,
            " <span class=\"type\">{}</span>",
            escape(&type_of(schema))
        );
        if required {
            summary.push_str(" <span class=\"required\">required</span>");
        }
        for marker in markers(schema) {
            let _ = write!(
                summary,
                " <span class=\"marker\">{}</span>",
                escape(&marker)
            );
        }
        let mut body = String::new();
        if has_children {
            let _ = write!(
                body,
                "<a class=\"field-link\" href=\"#{id}\">Link to <code>{}</code></a>",
                escape(path.split_once('.').map_or(path, |(_, p)| p))
            );
        }
        if let Some(d) = schema["description"].as_str() {
            let _ = write!(body, "<div class=\"desc\">{}</div>", render(d));
        }
        let constraints = constraints(schema);
        if !constraints.is_empty() {
            body.push_str("<dl class=\"constraints\">");
            for (k, v) in constraints {
                let _ = write!(
                    body,
                    "<dt>{}</dt><dd><code>{}</code></dd>",
                    escape(k),
                    escape(&v)
                );
            }
            body.push_str("</dl>");
        }
        if has_children {
            // `spec` open, and under it the fields a user fills in: a managed resource's
            // `forProvider`, a composite's `parameters`.
            let fills = depth == 1 && matches!(name, "forProvider" | "parameters");
            let open = if (depth == 0 && name == "spec") || fills {
                " open"
            } else {
                ""
            };
            let _ = write!(
                self.out,
                "<li><details id=\"{id}\"{open}><summary>{summary}</summary>{body}<ul>"
            );
            // Arrays and maps of objects show their element's fields directly.
            let inner = if schema["properties"].is_object() {
                schema
            } else if schema["items"]["properties"].is_object() {
                &schema["items"]
            } else {
                &schema["additionalProperties"]
            };
            let inner_path = if std::ptr::eq(inner, schema) {
                path.to_owned()
            } else if std::ptr::eq(inner, &schema["items"]) {
                format!("{path}[]")
            } else {
                format!("{path}{{}}")
            };
            self.children(&inner_path, inner, depth + 1);
            self.out.push_str("</ul></details></li>");
        } else {
            let _ = write!(
                self.out,
                "<li><div class=\"leaf\" id=\"{id}\"><div class=\"summary\">{summary}</div>{body}</div></li>"
            );
        }
    }
}

/// A path component usable in an anchor: no whitespace.
fn anchor_part(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

/// `string`, `[]object`, `map[string]integer`, `int-or-string`...
fn type_of(schema: &Value) -> String {
    if schema["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        return "int-or-string".into();
    }
    match schema["type"].as_str() {
        Some("array") => format!("[]{}", type_of(&schema["items"])),
        Some("object") if schema["additionalProperties"].is_object() => {
            format!("map[string]{}", type_of(&schema["additionalProperties"]))
        }
        Some(t) => t.to_owned(),
        None if schema["properties"].is_object() => "object".into(),
        None => "any".into(),
    }
}

fn markers(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(obj) = schema.as_object() {
        for (k, v) in obj {
            if let Some(marker) = k.strip_prefix("x-kubernetes-") {
                match (marker, v) {
                    ("validations" | "int-or-string", _) => {}
                    (_, Value::Bool(true)) => out.push(k.clone()),
                    (_, Value::String(s)) => out.push(format!("{k}: {s}")),
                    (_, Value::Array(a)) => out.push(format!(
                        "{k}: {}",
                        a.iter().map(plain).collect::<Vec<_>>().join(", ")
                    )),
                    _ => {}
                }
            }
        }
    }
    if schema["nullable"].as_bool() == Some(true) {
        out.push("nullable".into());
    }
    out
}

/// Format, default, enum values, bounds, pattern and CEL rules, as label and value.
fn constraints(schema: &Value) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(f) = schema["format"].as_str() {
        out.push(("format", f.to_owned()));
    }
    if !schema["default"].is_null() {
        out.push(("default", schema["default"].to_string()));
    }
    if let Some(e) = schema["enum"].as_array() {
        out.push(("enum", e.iter().map(plain).collect::<Vec<_>>().join(", ")));
    }
    for (key, label) in [
        ("minimum", "minimum"),
        ("maximum", "maximum"),
        ("exclusiveMinimum", "exclusive minimum"),
        ("exclusiveMaximum", "exclusive maximum"),
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("minProperties", "min properties"),
        ("maxProperties", "max properties"),
        ("multipleOf", "multiple of"),
        ("pattern", "pattern"),
    ] {
        match &schema[key] {
            Value::Null => {}
            v => out.push((label, plain(v))),
        }
    }
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        for rule in rules {
            let text = match (rule["rule"].as_str(), rule["message"].as_str()) {
                (Some(r), Some(m)) => format!("{r}  ({m})"),
                (Some(r), None) => r.to_owned(),
                _ => continue,
            };
            out.push(("CEL rule", text));
        }
    }
    out
}

/// A JSON value as people write it: strings without quotes.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
