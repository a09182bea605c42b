//! `parse_package` against every real package tree in `testdata/xpkg-sources`.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value};
use testkit::xpkg_source::{examples_yaml, package_dirs, package_yaml, testdata_root};

use super::*;
use crate::xpkg::apis::Definition;
use crate::xpkg::examples::ExampleLink;
use crate::xpkg::layers;
use crate::xpkg::meta::DependencyKind;

fn tree(name: &str) -> PathBuf {
    testdata_root().join(name)
}

fn parse_tree(dir: &Path) -> ParsedPackage {
    let examples = examples_yaml(dir);
    parse_package(&package_yaml(dir), examples.as_deref(), &Limits::default())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

fn parse_named(name: &str) -> ParsedPackage {
    parse_tree(&tree(name))
}

fn api<'a>(pkg: &'a ParsedPackage, group: &str, kind: &str) -> &'a ApiType {
    pkg.apis
        .iter()
        .find(|a| a.group == group && a.kind == kind)
        .unwrap_or_else(|| panic!("no {kind}.{group}"))
}

/// Type, name and number of API types of every tree, written down from the sources by hand.
const EXPECTED: &[(&str, PackageType, &str, usize)] = &[
    (
        "configuration-aws-network-main",
        PackageType::Configuration,
        "configuration-aws-network",
        1,
    ),
    (
        "configuration-aws-network-v0.15.0",
        PackageType::Configuration,
        "configuration-aws-network",
        1,
    ),
    (
        "configuration-aws-network-v0.9.0",
        PackageType::Configuration,
        "configuration-aws-network",
        1,
    ),
    (
        "function-patch-and-transform-main",
        PackageType::Function,
        "function-patch-and-transform",
        1,
    ),
    (
        "function-patch-and-transform-v0.10.8",
        PackageType::Function,
        "function-patch-and-transform",
        1,
    ),
    (
        "function-patch-and-transform-v0.2.0",
        PackageType::Function,
        "function-patch-and-transform",
        1,
    ),
    (
        "platform-ref-aws-v0.4.0",
        PackageType::Configuration,
        "platform-ref-aws",
        5,
    ),
    (
        "platform-ref-aws-v1.0.0",
        PackageType::Configuration,
        "platform-ref-aws",
        1,
    ),
    (
        "provider-aws-ec2-v1.23.0",
        PackageType::Provider,
        "provider-aws-ec2",
        101,
    ),
    (
        "provider-aws-ec2-v2.6.0",
        PackageType::Provider,
        "provider-aws-ec2",
        208,
    ),
    (
        "provider-helm-v0.21.0",
        PackageType::Provider,
        "provider-helm",
        3,
    ),
    (
        "provider-helm-v0.9.0",
        PackageType::Provider,
        "provider-helm",
        3,
    ),
    (
        "provider-helm-v1.4.0",
        PackageType::Provider,
        "provider-helm",
        7,
    ),
    (
        "provider-kubernetes-main",
        PackageType::Provider,
        "provider-kubernetes",
        9,
    ),
    (
        "provider-kubernetes-v0.18.0",
        PackageType::Provider,
        "provider-kubernetes",
        4,
    ),
    (
        "provider-kubernetes-v0.9.0",
        PackageType::Provider,
        "provider-kubernetes",
        3,
    ),
    (
        "provider-kubernetes-v1.2.1",
        PackageType::Provider,
        "provider-kubernetes",
        9,
    ),
    (
        "provider-nop-main",
        PackageType::Provider,
        "provider-nop",
        1,
    ),
    (
        "provider-nop-v0.2.0",
        PackageType::Provider,
        "provider-nop",
        1,
    ),
];

#[test]
fn package_every_real_tree_has_its_type_name_and_apis() {
    let dirs = package_dirs();
    let names: Vec<String> = dirs
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        EXPECTED.iter().map(|e| e.0.to_owned()).collect::<Vec<_>>()
    );
    for (dir, (name, package_type, meta_name, api_count)) in dirs.iter().zip(EXPECTED) {
        let pkg = parse_tree(dir);
        assert_eq!(pkg.meta.package_type, *package_type, "{name}");
        assert_eq!(pkg.meta.name.as_deref(), Some(*meta_name), "{name}");
        assert_eq!(pkg.apis.len(), *api_count, "{name}");
        assert_eq!(pkg.objects[0].class, ObjectClass::Meta, "{name}");
        assert!(pkg.lint.is_empty(), "{name}: {:#?}", pkg.lint);
        assert!(pkg.examples_rejection.is_none(), "{name}");
        let digests: Vec<&str> = pkg
            .contents
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        assert_eq!(
            digests,
            pkg.objects
                .iter()
                .map(|o| o.digest.as_str())
                .collect::<Vec<_>>(),
            "{name}"
        );
        assert_eq!(
            pkg.contents_digest,
            canonical::digest(&pkg.contents),
            "{name}"
        );
        for api in &pkg.apis {
            let expected = if *package_type == PackageType::Configuration {
                Definition::Xrd
            } else {
                Definition::Crd
            };
            assert_eq!(api.definition, expected, "{name}: {}", api.kind);
            assert_eq!(
                api.function_input,
                *package_type == PackageType::Function,
                "{name}: {}",
                api.kind
            );
            assert_eq!(
                pkg.objects[api.object_index].digest, api.digest,
                "{name}: {}",
                api.kind
            );
            assert!(
                !api.versions.is_empty() && api.scope.is_some(),
                "{name}: {}",
                api.kind
            );
        }
    }
}

/// Counts definitions by scanning the source files as text: a different method from parsing.
fn count_definitions_in_text(dir: &Path) -> usize {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && path.file_name().unwrap() != "examples" {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
        .iter()
        .map(|f| {
            fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| {
                    *l == "kind: CustomResourceDefinition"
                        || *l == "kind: CompositeResourceDefinition"
                })
                .count()
        })
        .sum()
}

#[test]
fn package_api_counts_match_a_text_count_of_definition_files() {
    for dir in package_dirs() {
        let pkg = parse_tree(&dir);
        assert_eq!(
            pkg.apis.len(),
            count_definitions_in_text(&dir),
            "{}",
            dir.display()
        );
    }
}

#[test]
fn package_finds_the_deprecated_object_version_in_provider_kubernetes() {
    for name in [
        "provider-kubernetes-v0.18.0",
        "provider-kubernetes-v1.2.1",
        "provider-kubernetes-main",
    ] {
        let pkg = parse_named(name);
        let object = api(&pkg, "kubernetes.crossplane.io", "Object");
        let v1alpha1 = object.version("v1alpha1").unwrap();
        assert!(
            v1alpha1.deprecated && v1alpha1.served && !v1alpha1.storage,
            "{name}: {v1alpha1:?}"
        );
        assert_eq!(v1alpha1.deprecation_warning, None, "{name}");
        assert!(object.version("v1alpha2").unwrap().storage, "{name}");
        let deprecated: usize = pkg
            .apis
            .iter()
            .map(|a| a.versions.iter().filter(|v| v.deprecated).count())
            .sum();
        assert_eq!(deprecated, 1, "{name}");
    }
    // v0.9.0 predates v1alpha2: nothing is deprecated.
    let old = parse_named("provider-kubernetes-v0.9.0");
    assert!(
        old.apis
            .iter()
            .all(|a| a.versions.iter().all(|v| !v.deprecated))
    );
    assert_eq!(
        api(&old, "kubernetes.crossplane.io", "Object")
            .versions
            .len(),
        1
    );

    // provider-aws v2.6.0 deprecates v1beta1 where v1beta2 exists, with a warning.
    let ec2 = parse_named("provider-aws-ec2-v2.6.0");
    let instance = api(&ec2, "ec2.aws.upbound.io", "Instance");
    let warning = instance
        .version("v1beta1")
        .unwrap()
        .deprecation_warning
        .as_deref();
    assert_eq!(
        warning,
        Some("This API version is deprecated. Deprecated since v2.6.0.")
    );
    assert!(instance.version("v1beta2").unwrap().storage);
}

#[test]
fn package_reads_meta_fields_from_real_metas() {
    let helm = parse_named("provider-helm-v0.9.0").meta;
    assert_eq!(
        helm.controller_image.as_deref(),
        Some("crossplane/provider-helm-controller:VERSION")
    );
    assert!(
        helm.readme
            .unwrap()
            .starts_with("`provider-helm` is a Crossplane Provider")
    );
    assert!(helm.icon_data.unwrap().starts_with("CjxzdmcgeG1sbnM9"));
    assert_eq!(helm.friendly_name.as_deref(), Some("Provider Helm"));
    assert_eq!(
        helm.friendly_group_names
            .get("helm.crossplane.io")
            .map(String::as_str),
        Some("Helm")
    );
    assert_eq!(helm.friendly_kind_names[0].kind, "release");
    assert_eq!(helm.friendly_kind_names[0].name, "Helm Release");

    let nop = parse_named("provider-nop-main").meta;
    assert_eq!(
        (
            nop.maintainer.as_deref(),
            nop.source.as_deref(),
            nop.license.as_deref()
        ),
        (
            Some("Crossplane Maintainers <info@crossplane.io>"),
            Some("github.com/crossplane-contrib/provider-nop"),
            Some("Apache-2.0")
        )
    );

    let ec2 = parse_named("provider-aws-ec2-v2.6.0").meta;
    assert_eq!(ec2.provider_family.as_deref(), Some("provider-family-aws"));
    assert_eq!(ec2.crossplane_version.as_deref(), Some(">=v1.12.1-0"));
    assert_eq!(ec2.capabilities, vec!["SafeStart"]);
    assert_eq!(
        ec2.annotations
            .get("auth.upbound.io/group")
            .map(String::as_str),
        Some("aws.upbound.io")
    );
    assert_eq!(ec2.depends_on.len(), 1);
    assert_eq!(
        ec2.depends_on[0].package,
        "xpkg.upbound.io/upbound/provider-family-aws"
    );
    assert_eq!(
        ec2.depends_on[0].version_constraint.as_deref(),
        Some(">= 0.0.0")
    );

    let function = parse_named("function-patch-and-transform-main").meta;
    assert_eq!(function.capabilities, vec!["composition"]);
    let bare = parse_named("function-patch-and-transform-v0.2.0").meta;
    assert!(bare.maintainer.is_none() && bare.depends_on.is_empty() && bare.annotations.is_empty());
}

fn deps(pkg: &ParsedPackage) -> Vec<(DependencyKind, &str, &str, bool, bool)> {
    pkg.meta
        .depends_on
        .iter()
        .map(|d| {
            (
                d.kind,
                d.package.as_str(),
                d.version_constraint.as_deref().unwrap_or(""),
                d.is_digest,
                d.api_version.is_some(),
            )
        })
        .collect()
}

#[test]
fn package_normalises_depends_on_in_configurations() {
    let old_form = parse_named("platform-ref-aws-v1.0.0");
    let found = deps(&old_form);
    assert_eq!(found.len(), 7);
    assert_eq!(
        found[0],
        (
            DependencyKind::Configuration,
            "xpkg.upbound.io/upbound/configuration-aws-network",
            "v0.11.0",
            false,
            false
        )
    );
    assert_eq!(found[6].0, DependencyKind::Function);

    let new_form = parse_named("configuration-aws-network-main");
    assert_eq!(
        deps(&new_form),
        vec![
            (
                DependencyKind::Provider,
                "xpkg.upbound.io/upbound/provider-aws-ec2",
                "v2",
                false,
                true
            ),
            (
                DependencyKind::Function,
                "xpkg.upbound.io/crossplane-contrib/function-auto-ready",
                ">=v0.0.0",
                false,
                true
            ),
        ]
    );
    assert_eq!(
        new_form.meta.crossplane_version.as_deref(),
        Some(">=v2.0.0-rc.0")
    );
}

#[test]
fn package_normalises_depends_on_in_e2e_metas() {
    let root = tree("crossplane-e2e-package-metas");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path)
            } else {
                files.push(path)
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 29);
    let parse = |rel: &str| {
        let bytes = fs::read(root.join(rel)).unwrap();
        parse_package(&bytes, None, &Limits::default()).unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    for file in &files {
        let pkg = parse_package(&fs::read(file).unwrap(), None, &Limits::default()).unwrap();
        assert_eq!(
            pkg.meta.package_type,
            PackageType::Configuration,
            "{}",
            file.display()
        );
        assert_eq!(pkg.objects.len(), 1);
        assert!(pkg.lint.is_empty(), "{}: {:?}", file.display(), pkg.lint);
    }

    let nop = "xpkg.upbound.io/crossplane-contrib/provider-nop";
    let digest = parse("configuration/digest/package/crossplane.yaml");
    assert_eq!(
        deps(&digest),
        vec![(
            DependencyKind::Provider,
            nop,
            "sha256:ecc25c121431dfc7058754427f97c034ecde26d4aafa0da16d258090e0443904",
            true,
            false
        )]
    );
    let current = parse("configuration/dependency/package/crossplane.yaml");
    assert_eq!(
        deps(&current),
        vec![(DependencyKind::Provider, nop, "=v0.3.1", false, true)]
    );
    let transitive = parse("dependency-upgrade/transitive/packages/config1/v0.0.2/crossplane.yaml");
    assert_eq!(
        deps(&transitive),
        vec![(
            DependencyKind::Configuration,
            "xpkg.crossplane.io/crossplane/e2e-transitive-dep1",
            "v0.0.2",
            false,
            true
        )]
    );
    let nested = parse("dependency-upgrade/already-exists/package/nested/crossplane.yaml");
    assert_eq!(
        deps(&nested),
        vec![
            (DependencyKind::Provider, nop, ">=v0.1.0", false, false),
            (
                DependencyKind::Configuration,
                "xpkg.crossplane.io/crossplane/e2e-depends-on-provider-nop",
                "v0.2.0-gt",
                false,
                false
            ),
        ]
    );
    let unquoted = parse("dependency-upgrade/version/package/initial/crossplane-initial.yaml");
    assert_eq!(
        deps(&unquoted),
        vec![(DependencyKind::Provider, nop, "=v0.3.0", false, false)]
    );
    assert!(
        parse("configuration/private/package/crossplane.yaml")
            .meta
            .depends_on
            .is_empty()
    );
    let signed = parse("image-config/signature-verification/with-key/package/crossplane.yaml");
    assert_eq!(signed.meta.description.as_deref(), Some("unsigned"));
    assert_eq!(signed.meta.api_version, "meta.pkg.crossplane.io/v1alpha1");
}

#[test]
fn package_links_provider_aws_ec2_examples_by_example_id() {
    for (name, with_id, unresolvable) in [
        ("provider-aws-ec2-v2.6.0", 406, 2),
        ("provider-aws-ec2-v1.23.0", 200, 2),
    ] {
        let pkg = parse_named(name);
        let tagged: Vec<&ExampleObject> = pkg
            .examples
            .iter()
            .filter(|e| e.example_id.is_some())
            .collect();
        assert_eq!(tagged.len(), with_id, "{name}");
        let unresolved: Vec<&ExampleObject> = tagged
            .iter()
            .copied()
            .filter(|e| e.link != ExampleLink::ExampleId)
            .collect();
        // An ec2 example file tagged with an IAM example-id: IAM's APIs are not in this package.
        assert_eq!(unresolved.len(), unresolvable, "{name}");
        assert!(
            unresolved
                .iter()
                .all(|e| e.example_id.as_deref() == Some("iam/v1beta1/instanceprofile"))
        );
        for example in tagged.iter().filter(|e| e.link == ExampleLink::ExampleId) {
            let of = example.example_of.as_ref().unwrap();
            let id = example.example_id.as_deref().unwrap();
            assert!(
                id.starts_with(&format!("ec2/{}/", of.version)),
                "{name}: {id} -> {of:?}"
            );
            assert!(of.group.starts_with("ec2."), "{name}: {id} -> {of:?}");
            // The namespaced twin's objects link to the namespaced group.
            if example
                .api_version
                .as_deref()
                .is_some_and(|v| v.contains(".m.upbound.io/"))
            {
                assert_eq!(of.group, "ec2.aws.m.upbound.io", "{name}: {id}");
            }
        }
    }

    let pkg = parse_named("provider-aws-ec2-v2.6.0");
    let ipam_vpcs: Vec<&ExampleObject> = pkg
        .examples
        .iter()
        .filter(|e| {
            e.example_id.as_deref() == Some("ec2/v1beta1/vpc-ipampool")
                && e.kind.as_deref() == Some("VPC")
        })
        .collect();
    assert_eq!(ipam_vpcs.len(), 2, "cluster and namespaced");
    for vpc in ipam_vpcs {
        let (of, own) = (
            vpc.example_of.as_ref().unwrap(),
            vpc.instantiates.as_ref().unwrap(),
        );
        assert_eq!(
            (of.kind.as_str(), own.kind.as_str()),
            ("VPCIpamPool", "VPC")
        );
        assert_eq!(of.group, own.group);
    }
    let encrypted_key = pkg
        .examples
        .iter()
        .find(|e| {
            e.example_id.as_deref() == Some("ec2/v1beta2/launchtemplate")
                && e.kind.as_deref() == Some("Key")
        })
        .unwrap();
    assert!(encrypted_key.is_supporting());
    assert_eq!(
        encrypted_key
            .example_of
            .as_ref()
            .map(|r| (r.kind.as_str(), r.version.as_str())),
        Some(("LaunchTemplate", "v1beta2"))
    );
}

#[test]
fn package_links_claims_and_keeps_supporting_examples() {
    let pkg = parse_named("platform-ref-aws-v0.4.0");
    let claims: Vec<&str> = pkg
        .examples
        .iter()
        .filter(|e| e.example_of.as_ref().is_some_and(|r| r.claim))
        .map(|e| e.kind.as_deref().unwrap())
        .collect();
    assert!(
        claims.contains(&"Cluster") && claims.contains(&"PostgreSQLInstance"),
        "{claims:?}"
    );
    let supporting: Vec<&str> = pkg
        .examples
        .iter()
        .filter(|e| e.is_supporting())
        .map(|e| e.kind.as_deref().unwrap())
        .collect();
    assert!(
        supporting.contains(&"Configuration") && supporting.contains(&"ProviderConfig"),
        "{supporting:?}"
    );

    let function = parse_named("function-patch-and-transform-main");
    assert!(
        !function.examples.is_empty() && function.examples.iter().all(ExampleObject::is_supporting)
    );
}

#[test]
fn package_gives_byte_identical_files_one_digest_across_versions() {
    let pairs = [
        ("provider-kubernetes-v1.2.1", "provider-kubernetes-main"),
        ("provider-nop-v0.2.0", "provider-nop-main"),
        ("provider-aws-ec2-v1.23.0", "provider-aws-ec2-v2.6.0"),
        ("provider-helm-v0.21.0", "provider-helm-v1.4.0"),
    ];
    let mut identical_files = 0;
    for (old, new) in pairs {
        let (a, b) = (parse_named(old), parse_named(new));
        let digests = |p: &ParsedPackage| -> BTreeSet<String> {
            p.objects
                .iter()
                .map(|o| o.digest.clone())
                .chain(p.examples.iter().map(|e| e.digest.clone()))
                .collect()
        };
        let (da, db) = (digests(&a), digests(&b));
        for file in relative_yaml_files(&tree(old)) {
            let (fa, fb) = (tree(old).join(&file), tree(new).join(&file));
            if !fb.is_file() || fs::read(&fa).unwrap() != fs::read(&fb).unwrap() {
                continue;
            }
            identical_files += 1;
            let docs = yaml::parse_stream(
                &fs::read(&fa).unwrap(),
                &Limits::default().package_yaml,
                Stream::PackageYaml,
            )
            .unwrap();
            for doc in docs {
                let d = canonical::digest(&doc);
                assert!(
                    da.contains(&d) && db.contains(&d),
                    "{old} / {new}: {}",
                    file.display()
                );
            }
        }
    }
    // Metas and example files; no CRD file in the test data is byte-identical across versions.
    assert!(identical_files >= 50, "{identical_files}");
    assert_eq!(
        parse_named("provider-nop-v0.2.0").objects[0].digest,
        parse_named("provider-nop-main").objects[0].digest
    );
}

fn relative_yaml_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out
}

#[test]
fn package_digest_differs_by_generator_stamp_only_where_the_crd_differs() {
    // These CRDs changed between provider-kubernetes v1.2.1 and main only in the
    // controller-gen version annotation.
    let (a, b) = (
        parse_named("provider-kubernetes-v1.2.1"),
        parse_named("provider-kubernetes-main"),
    );
    for name in [
        "providerconfigusages.kubernetes.crossplane.io",
        "providerconfigusages.kubernetes.m.crossplane.io",
    ] {
        let find = |p: &ParsedPackage| {
            p.objects
                .iter()
                .find(|o| o.name.as_deref() == Some(name))
                .unwrap()
                .clone()
        };
        let (oa, ob) = (find(&a), find(&b));
        assert_ne!(oa.digest, ob.digest, "{name}");
        let unstamped = |mut v: Value| {
            v["metadata"]["annotations"]
                .as_object_mut()
                .unwrap()
                .remove("controller-gen.kubebuilder.io/version");
            canonical::digest(&v)
        };
        assert_eq!(unstamped(oa.value()), unstamped(ob.value()), "{name}");
    }
}

/// Re-orders every mapping's keys, recursively (reversed).
fn reversed(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.reverse();
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), reversed(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        other => other.clone(),
    }
}

#[test]
fn package_digest_survives_reformatting() {
    let dir = tree("provider-kubernetes-main");
    let pkg = parse_tree(&dir);
    let object = pkg
        .objects
        .iter()
        .find(|o| o.name.as_deref() == Some("objects.kubernetes.crossplane.io"))
        .unwrap();

    // The same object as JSON text (valid YAML) with every mapping's keys in another order.
    let mut json = String::new();
    write_json_reversed(&reversed(&object.value()), &mut json);
    let docs = yaml::parse_stream(
        json.as_bytes(),
        &Limits::default().package_yaml,
        Stream::PackageYaml,
    )
    .unwrap();
    assert_eq!(canonical::digest(&docs[0]), object.digest);

    // The source file with its top-level blocks in reverse order, a comment and CRLF line ends.
    let text = fs::read_to_string(dir.join("crds/kubernetes.crossplane.io_objects.yaml")).unwrap();
    let mut blocks: Vec<String> = Vec::new();
    for line in text.lines() {
        let top_level_key = !line.is_empty() && !line.starts_with(' ') && !line.starts_with('-');
        if top_level_key || blocks.is_empty() {
            blocks.push(String::new());
        }
        let block = blocks.last_mut().unwrap();
        block.push_str(line);
        block.push_str("\r\n");
    }
    assert!(blocks.len() >= 4, "{}", blocks.len());
    blocks.reverse();
    let reformatted = format!("# reformatted\r\n{}", blocks.concat());
    let docs = yaml::parse_stream(
        reformatted.as_bytes(),
        &Limits::default().package_yaml,
        Stream::PackageYaml,
    )
    .unwrap();
    assert_eq!(docs.len(), 1);
    assert_eq!(canonical::digest(&docs[0]), object.digest);
}

/// `serde_json` would sort or keep keys depending on its features; write them in map order.
fn write_json_reversed(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().rev().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push_str(": ");
                write_json_reversed(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json_reversed(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[test]
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test reports what it measured or wrote"
)]
fn package_parses_the_firehose_crd() {
    let crd = tree(
        "provider-aws-large-crd-sample-v2.6.0/crds/firehose.aws.upbound.io_deliverystreams.yaml",
    );
    let crd = fs::read(crd).unwrap();
    assert_eq!(crd.len(), 1_691_237);
    let mut stream = b"---\n".to_vec();
    stream.extend(fs::read(tree("provider-aws-ec2-v2.6.0/crossplane.yaml")).unwrap());
    stream.extend_from_slice(b"---\n");
    stream.extend(crd);
    let started = Instant::now();
    let pkg = parse_package(&stream, None, &Limits::default()).unwrap();
    eprintln!("firehose CRD (1.7 MB) parsed in {:?}", started.elapsed());
    assert_eq!(pkg.apis.len(), 1);
    let api = &pkg.apis[0];
    assert_eq!(
        (api.group.as_str(), api.kind.as_str(), api.scope.as_deref()),
        ("firehose.aws.upbound.io", "DeliveryStream", Some("Cluster"))
    );
    let versions: Vec<(&str, bool, bool)> = api
        .versions
        .iter()
        .map(|v| (v.name.as_str(), v.deprecated, v.storage))
        .collect();
    assert_eq!(
        versions,
        vec![("v1beta1", true, false), ("v1beta2", false, true)]
    );
}

#[test]
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test reports what it measured or wrote"
)]
fn package_times_provider_aws_ec2() {
    let dir = tree("provider-aws-ec2-v2.6.0");
    let (package, examples) = (package_yaml(&dir), examples_yaml(&dir).unwrap());
    let started = Instant::now();
    let pkg = parse_package(&package, Some(&examples), &Limits::default()).unwrap();
    let elapsed = started.elapsed();
    eprintln!(
        "provider-aws-ec2 v2.6.0: {} + {} bytes, {} objects, {} APIs, {} examples parsed in {elapsed:?}",
        package.len(),
        examples.len(),
        pkg.objects.len(),
        pkg.apis.len(),
        pkg.examples.len()
    );
    assert_eq!((pkg.objects.len(), pkg.examples.len()), (209, 580));
}

#[test]
fn package_reads_through_layers_like_the_worker() {
    let dir = tree("provider-aws-ec2-v2.6.0");
    let (package, examples) = (package_yaml(&dir), examples_yaml(&dir).unwrap());
    let layer = |path: &str, bytes: &[u8]| {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes).unwrap();
        builder.into_inner().unwrap().finish().unwrap()
    };
    let media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    let base = layers::read_layer(
        &layer("package.yaml", &package)[..],
        media_type,
        &Limits::default(),
    )
    .unwrap();
    let upbound = layers::read_layer(
        &layer(".up/examples.yaml", &examples)[..],
        media_type,
        &Limits::default(),
    )
    .unwrap();
    let pkg = parse_package(
        &base.package_yaml.unwrap().bytes,
        Some(&upbound.examples_yaml.unwrap().bytes),
        &Limits::default(),
    )
    .unwrap();
    let direct = parse_package(&package, Some(&examples), &Limits::default()).unwrap();
    assert_eq!(pkg.contents_digest, direct.contents_digest);
    assert_eq!(pkg.examples.len(), direct.examples.len());
}

#[test]
fn package_rejects_a_stream_without_meta() {
    let crd = fs::read(tree(
        "provider-nop-main/crds/nop.crossplane.io_nopresources.yaml",
    ))
    .unwrap();
    let err = parse_package(&crd, None, &Limits::default()).unwrap_err();
    assert_eq!(err, Rejection::NoMeta);
    assert_eq!(
        parse_package(b"---\n---\n", None, &Limits::default()).unwrap_err(),
        Rejection::NoMeta
    );
}

#[test]
fn package_rejects_more_than_one_meta() {
    let meta = fs::read_to_string(tree("provider-nop-main/crossplane.yaml")).unwrap();
    let crd = fs::read_to_string(tree(
        "provider-nop-main/crds/nop.crossplane.io_nopresources.yaml",
    ))
    .unwrap();
    let stream = format!("{meta}\n---\n{crd}\n---\n{meta}");
    let err = parse_package(stream.as_bytes(), None, &Limits::default()).unwrap_err();
    assert_eq!(
        err,
        Rejection::MultipleMeta {
            documents: vec![0, 2]
        }
    );
    assert_eq!(err.kind(), "multiple_meta");
}

#[test]
fn package_moves_a_late_meta_first_and_lints_it() {
    let meta = fs::read_to_string(tree("provider-nop-main/crossplane.yaml")).unwrap();
    let crd = fs::read_to_string(tree(
        "provider-nop-main/crds/nop.crossplane.io_nopresources.yaml",
    ))
    .unwrap();
    let comp =
        "apiVersion: apiextensions.crossplane.io/v1\nkind: Composition\nmetadata:\n  name: c\n";
    let pkg = parse_package(
        format!("{crd}\n---\n{meta}\n---\n{comp}").as_bytes(),
        None,
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(pkg.objects[0].class, ObjectClass::Meta);
    assert_eq!(
        pkg.objects[1].kind.as_deref(),
        Some("CustomResourceDefinition")
    );
    assert_eq!(pkg.apis[0].object_index, 1);
    let lint: Vec<(classify::Severity, Option<usize>)> = pkg
        .lint
        .iter()
        .map(|l| (l.severity, l.object_index))
        .collect();
    assert_eq!(
        lint,
        vec![
            (classify::Severity::Warning, Some(0)),
            (classify::Severity::Error, Some(2))
        ]
    );
}

#[test]
fn package_rejects_invalid_yaml_with_document_and_line() {
    let meta = fs::read_to_string(tree("provider-nop-main/crossplane.yaml")).unwrap();
    let stream = format!("---\n{meta}---\napiVersion: v1\nkind: ConfigMap\ndata: {{a: 1\n");
    let err = parse_package(stream.as_bytes(), None, &Limits::default()).unwrap_err();
    let Rejection::InvalidYaml {
        stream,
        document,
        line,
        ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(
        (stream, document, line),
        (Stream::PackageYaml, 1, meta.lines().count() as u64 + 5)
    );
}

#[test]
fn package_keeps_the_package_when_examples_are_broken() {
    let dir = tree("provider-nop-main");
    let pkg = parse_package(&package_yaml(&dir), Some(b"a: [\n"), &Limits::default()).unwrap();
    assert!(pkg.examples.is_empty());
    assert!(matches!(
        pkg.examples_rejection,
        Some(Rejection::InvalidYaml {
            stream: Stream::ExamplesYaml,
            ..
        })
    ));
    assert!(pkg.lint.iter().any(|l| {
        l.message
            .starts_with("examples ignored: .up/examples.yaml: invalid YAML")
    }));
}

#[test]
fn package_rejects_an_alias_bomb_in_package_yaml() {
    let meta = fs::read_to_string(tree("provider-nop-main/crossplane.yaml")).unwrap();
    let mut bomb = format!(
        "{meta}---\napiVersion: v1\nkind: ConfigMap\ndata:\n  a: &a [x,x,x,x,x,x,x,x,x,x]\n"
    );
    for (name, prev) in ["b", "c", "d", "e", "f", "g", "h", "i", "j"]
        .iter()
        .zip(["a", "b", "c", "d", "e", "f", "g", "h", "i"])
    {
        bomb.push_str(&format!("  {name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    let err = parse_package(bomb.as_bytes(), None, &Limits::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Rejection::LimitExceeded {
                limit: crate::xpkg::Limit::YamlAliasExpansion,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("package.yaml document 1"), "{err}");
}

#[test]
fn package_serialises_for_the_store() {
    let pkg = parse_named("provider-nop-main");
    let json = serde_json::to_value(&pkg).unwrap();
    assert_eq!(json["meta"]["package_type"], "Provider");
    assert_eq!(json["objects"][1]["class"], "crd");
    assert_eq!(
        json["objects"][2]["class"],
        "validating_webhook_configuration"
    );
    assert_eq!(json["contents_digest"], pkg.contents_digest.as_str());
    let rejection = serde_json::to_value(Rejection::MultipleMeta {
        documents: vec![0, 3],
    })
    .unwrap();
    assert_eq!(
        rejection,
        serde_json::json!({"kind": "multiple_meta", "documents": [0, 3]})
    );
}

#[test]
fn package_objects_keep_the_canonical_encoding_of_each_document_in_order() {
    // A meta that is not first is moved to position 0; every object keeps exactly the
    // canonical encoding of its document, which its digest names and which decodes to it.
    let stream = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: 'é'}\n---\n\
                  apiVersion: meta.pkg.crossplane.io/v1\nkind: Configuration\nmetadata: {name: c}\n---\n\
                  - 1.0\n- 2\n";
    let docs = yaml::parse_stream(
        stream.as_bytes(),
        &Limits::default().package_yaml,
        Stream::PackageYaml,
    )
    .unwrap();
    let pkg = parse_package(stream.as_bytes(), None, &Limits::default()).unwrap();
    let expected = [&docs[1], &docs[0], &docs[2]];
    assert_eq!(pkg.objects.len(), expected.len());
    for (object, doc) in pkg.objects.iter().zip(expected) {
        assert_eq!(object.json.as_bytes(), canonical::to_vec(doc).as_slice());
        assert_eq!(object.digest, canonical::digest(doc));
        assert_eq!(&object.value(), doc);
    }
    assert_eq!(pkg.objects[2].json, "[1.0,2]");
    // Serialized, an object shows its document as a JSON value, not as text.
    let serialized = serde_json::to_value(&pkg.objects[1]).unwrap();
    assert_eq!(serialized["value"], *expected[1]);
    assert_eq!(
        pkg.lint
            .iter()
            .map(|l| l.message.as_str())
            .collect::<Vec<_>>(),
        [
            "the meta object is document 1, not the first; Crossplane's build writes it first",
            "ConfigMap (v1) is not allowed in a Configuration package; Crossplane's linter rejects it",
            "document is not a Kubernetes object (no apiVersion and kind strings): a sequence",
        ]
    );
}

#[test]
fn package_rejects_one_object_over_the_object_size_limit() {
    let yaml = format!(
        "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: p\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: huge\ndata:\n  x: \"{}\"\n",
        "a".repeat(5000)
    );
    let limits = Limits {
        max_object_bytes: 4096,
        ..Limits::default()
    };
    let err = parse_package(yaml.as_bytes(), None, &limits).unwrap_err();
    assert!(
        matches!(
            &err,
            Rejection::LimitExceeded { limit: Limit::ObjectBytes, max: 4096, message }
                if message.contains("object 1 (ConfigMap huge)")
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("object size exceeded (limit 4096)"),
        "{err}"
    );
    assert!(parse_package(yaml.as_bytes(), None, &Limits::default()).is_ok());
}
