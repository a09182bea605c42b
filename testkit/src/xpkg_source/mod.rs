//! Builds the `package.yaml` and `.up/examples.yaml` streams of a Crossplane package from a
//! source tree in `testdata/xpkg-sources`, the way the build tools would. Pure std.
//!
//! What a real build does, and what this module does instead:
//! - `crossplane xpkg build` walks the package root in lexical order (afero.Walk), keeps every
//!   `.yaml`/`.yml` file outside the examples root, parses them, and re-encodes the meta object
//!   first, then every other object, each preceded by `---\n`. We cannot re-encode without a YAML
//!   library, so the files are copied verbatim (comments, key order and all) in the same order:
//!   meta first, then the object files sorted by path component, each as `---\n` + text, with a
//!   newline added where a file lacks one. A file that itself starts with `---` therefore yields
//!   an empty document; readers skip those, as Crossplane's does.
//! - Files that hold no Kubernetes object (no top-level `apiVersion:` line, e.g. `auth.yaml`) and
//!   templates (`*.tmpl`, not a YAML extension) are left out.
//! - `auth.yaml` (provider-upjet-aws): `up xpkg build --auth-ext` embeds it as the annotation
//!   `auth.upbound.io/config` on the CRD whose `spec.group` equals the meta's
//!   `auth.upbound.io/group` annotation and whose kind is `ProviderConfig`. We do the same, with
//!   the file text (up re-encodes it, dropping comments). When no such CRD exists, up fails the
//!   build; here we leave the stream unannotated. That is the case for the ec2 subset of
//!   provider-aws v2.6.0: its `aws.upbound.io` ProviderConfig CRD lives in the family package.
//! - `upbound.yaml` (an `up` Project, configuration-aws-network@main): `up project build`
//!   synthesises a `meta.pkg.crossplane.io/v1` Configuration named after the project, with the
//!   `meta.crossplane.io/{maintainer,source,license,description,readme}` annotations taken from
//!   the project spec, its `spec.dependsOn` copied, and `spec.crossplane.version` defaulting to
//!   `>=v2.0.0-rc.0`; it packages only XRDs, Compositions and ManagedResourceActivationPolicies.
//!   We do the same.
//! - Examples: both CLIs read every `.yaml`/`.yml` file under `examples/` with crossplane-runtime's
//!   `FsReadCloser`, which writes each file followed by `\n...\n` and `\n---\n`. We reproduce that
//!   byte for byte, so the stream has document-end markers and a trailing empty document.
//!
//! `crossplane-meta-schemas` (CRDs of the meta kinds) and `crossplane-e2e-package-metas` (lone
//! meta files) are not package trees; `provider-aws-large-crd-sample-v2.6.0` is a single CRD with
//! no meta. [`package_dirs`] leaves all three out; reach them through [`testdata_root`].

use std::fs;
use std::path::{Path, PathBuf};

/// Default location of the source trees, relative to this crate.
const RELATIVE_ROOT: &str = "../testdata/xpkg-sources";

/// Root of the package source trees: `$SHIMMER_TESTDATA` if set, else the workspace's
/// `testdata/xpkg-sources`.
pub fn testdata_root() -> PathBuf {
    match std::env::var_os("SHIMMER_TESTDATA") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(RELATIVE_ROOT),
    }
}

/// Every real package source tree (a folder holding `crossplane.yaml` or `upbound.yaml`), sorted.
pub fn package_dirs() -> Vec<PathBuf> {
    let root = testdata_root();
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading test data root {}: {e}", root.display()))
        .map(|entry| entry.expect("reading test data root entry").path())
        .filter(|p| p.join("crossplane.yaml").is_file() || p.join("upbound.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The `package.yaml` stream of the package tree at `dir` (see the module doc for the rules).
pub fn package_yaml(dir: &Path) -> Vec<u8> {
    let (meta, project) = if dir.join("crossplane.yaml").is_file() {
        (read_text(&dir.join("crossplane.yaml")), false)
    } else if dir.join("upbound.yaml").is_file() {
        (
            configuration_from_project(&read_text(&dir.join("upbound.yaml"))),
            true,
        )
    } else {
        panic!(
            "{}: neither crossplane.yaml nor upbound.yaml",
            dir.display()
        );
    };

    let mut objects: Vec<String> = Vec::new();
    for path in yaml_files(dir) {
        let rel = path.strip_prefix(dir).expect("walked path under dir");
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if first.as_deref() == Some("examples") {
            continue;
        }
        if rel == Path::new("crossplane.yaml") || rel == Path::new("upbound.yaml") {
            continue;
        }
        let text = read_text(&path);
        if !has_top_level_key(&text, "apiVersion") {
            continue;
        }
        if project && !is_project_api(&text) {
            continue;
        }
        objects.push(text);
    }

    if dir.join("auth.yaml").is_file() {
        embed_auth(&meta, &read_text(&dir.join("auth.yaml")), &mut objects);
    }

    let mut out = Vec::new();
    for text in std::iter::once(&meta).chain(objects.iter()) {
        out.extend_from_slice(b"---\n");
        out.extend_from_slice(text.as_bytes());
        if !text.ends_with('\n') {
            out.push(b'\n');
        }
    }
    out
}

/// The `.up/examples.yaml` stream of the tree at `dir`, or `None` when it has no example files.
pub fn examples_yaml(dir: &Path) -> Option<Vec<u8>> {
    let examples = dir.join("examples");
    if !examples.is_dir() {
        return None;
    }
    let files = yaml_files(&examples);
    if files.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for path in files {
        out.extend_from_slice(
            &fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        );
        out.extend_from_slice(b"\n...\n\n---\n");
    }
    Some(out)
}

/// `.yaml`/`.yml` files under `dir`, in the order afero.Walk visits them (lexical per folder).
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    for path in entries {
        if path.is_dir() {
            out.extend(yaml_files(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    out
}

fn read_text(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn has_top_level_key(text: &str, key: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(':'))
    })
}

/// Value of the first top-level `key:` line (plain, single line), e.g. `kind`.
fn top_level_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        Some(unquote(rest.trim()))
    })
}

/// `up project build` packages only these kinds (see `collectResources` in upbound/up).
fn is_project_api(text: &str) -> bool {
    let api_version = top_level_value(text, "apiVersion").unwrap_or_default();
    let kind = top_level_value(text, "kind").unwrap_or_default();
    matches!(
        (api_version.as_str(), kind.as_str()),
        (
            "apiextensions.crossplane.io/v1" | "apiextensions.crossplane.io/v2",
            "CompositeResourceDefinition"
        ) | ("apiextensions.crossplane.io/v1", "Composition")
            | (
                "apiextensions.crossplane.io/v1alpha1",
                "ManagedResourceActivationPolicy"
            )
    )
}

/// The lines of the block under `parent:` (a top-level key), without the parent line.
fn top_level_block<'a>(text: &'a str, parent: &str) -> Vec<&'a str> {
    let mut lines = text.lines();
    let header = format!("{parent}:");
    if !lines.by_ref().any(|l| l.trim_end() == header) {
        return Vec::new();
    }
    lines
        .take_while(|l| l.trim().is_empty() || l.starts_with(' ') || l.starts_with('#'))
        .collect()
}

/// The lines that belong to `key:` at `indent` within `block` (including the key line), where a
/// sequence may sit at the key's own indentation (`dependsOn:\n- ...`).
fn keyed_lines<'a>(block: &[&'a str], key: &str, indent: usize) -> Option<Vec<&'a str>> {
    let start = block.iter().position(|l| {
        indent_of(l) == indent
            && l.trim_start()
                .strip_prefix(key)
                .is_some_and(|r| r.starts_with(':'))
    })?;
    let mut out = vec![block[start]];
    for line in &block[start + 1..] {
        let i = indent_of(line);
        if line.trim().is_empty()
            || i > indent
            || (i == indent && line.trim_start().starts_with("- "))
        {
            out.push(line);
        } else {
            break;
        }
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    Some(out)
}

/// A scalar value from `key:` lines: single-line plain or quoted, or a literal block (`|`, `|-`,
/// `|+`). Panics on forms this reader does not need.
fn scalar_value(lines: &[&str]) -> String {
    let (_, after) = lines[0].split_once(':').expect("key line");
    let head = after.trim();
    if let Some(chomp) = head.strip_prefix('|') {
        let body = &lines[1..];
        let indent = body
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| indent_of(l))
            .min()
            .unwrap_or(0);
        let mut text: String = body
            .iter()
            .map(|l| if l.len() >= indent { &l[indent..] } else { "" })
            .collect::<Vec<_>>()
            .join("\n");
        match chomp {
            "" => {
                text.truncate(text.trim_end_matches('\n').len());
                text.push('\n');
            }
            "-" => text.truncate(text.trim_end_matches('\n').len()),
            "+" => text.push('\n'),
            other => panic!("testkit: unsupported block scalar header |{other}"),
        }
        return text;
    }
    assert!(
        lines.len() == 1,
        "testkit: multi-line plain scalars are not supported: {lines:?}"
    );
    unquote(head)
}

fn unquote(s: &str) -> String {
    if let Some(inner) = s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return inner.replace("''", "'");
    }
    if let Some(inner) = s.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        assert!(
            !inner.contains('\\'),
            "testkit: escapes in double-quoted scalars are not supported"
        );
        return inner.to_owned();
    }
    s.to_owned()
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The Configuration meta `up project build` writes for an `up` Project file.
fn configuration_from_project(project: &str) -> String {
    let metadata = top_level_block(project, "metadata");
    let name = keyed_lines(&metadata, "name", 2)
        .map(|l| scalar_value(&l))
        .expect("project metadata.name");
    let spec = top_level_block(project, "spec");
    let field = |key: &str| {
        keyed_lines(&spec, key, 2)
            .map(|l| scalar_value(&l))
            .unwrap_or_default()
    };

    let mut out = String::new();
    out.push_str("apiVersion: meta.pkg.crossplane.io/v1\nkind: Configuration\nmetadata:\n");
    out.push_str(&format!("  name: {}\n  annotations:\n", quoted(&name)));
    for key in ["maintainer", "source", "license", "description", "readme"] {
        out.push_str(&format!(
            "    meta.crossplane.io/{key}: {}\n",
            quoted(&field(key))
        ));
    }
    out.push_str("spec:\n");
    match keyed_lines(&spec, "crossplane", 2) {
        Some(lines) => lines.iter().for_each(|l| out.push_str(&format!("{l}\n"))),
        None => out.push_str("  crossplane:\n    version: \">=v2.0.0-rc.0\"\n"),
    }
    if let Some(lines) = keyed_lines(&spec, "dependsOn", 2) {
        lines.iter().for_each(|l| out.push_str(&format!("{l}\n")));
    }
    out
}

/// Adds `auth.upbound.io/config` to the ProviderConfig CRD of the meta's auth group, if present.
fn embed_auth(meta: &str, auth: &str, objects: &mut [String]) {
    if top_level_value(meta, "kind").as_deref() != Some("Provider") {
        return;
    }
    let Some(group) = meta.lines().find_map(|l| {
        let rest = l.trim_start().strip_prefix("auth.upbound.io/group:")?;
        Some(unquote(rest.trim()))
    }) else {
        return;
    };
    let is_target = |text: &str| {
        let spec = top_level_block(text, "spec");
        top_level_value(text, "kind").as_deref() == Some("CustomResourceDefinition")
            && keyed_lines(&spec, "group", 2).is_some_and(|l| scalar_value(&l) == group)
            && spec
                .iter()
                .any(|l| l.trim() == "kind: ProviderConfig" && indent_of(l) == 4)
    };
    let Some(crd) = objects.iter_mut().find(|t| is_target(t)) else {
        return;
    };
    let annotation = format!("    auth.upbound.io/config: {}\n", quoted(auth));
    let mut out = String::with_capacity(crd.len() + annotation.len());
    let mut in_metadata = false;
    let mut done = false;
    for line in crd.split_inclusive('\n') {
        out.push_str(line);
        if done {
            continue;
        }
        if line.trim_end() == "metadata:" {
            in_metadata = true;
            // controller-gen always writes annotations first; add the block when it is missing.
            if !crd.lines().any(|l| l.trim_end() == "  annotations:") {
                out.push_str("  annotations:\n");
                out.push_str(&annotation);
                done = true;
            }
        } else if in_metadata && line.trim_end() == "  annotations:" {
            out.push_str(&annotation);
            done = true;
        }
    }
    *crd = out;
}

#[cfg(test)]
mod tests;
