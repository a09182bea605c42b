use super::*;

fn scratch_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("testkit-xpkg-source-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn xpkg_source_lists_real_package_trees_only() {
    let names: Vec<String> = package_dirs()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"provider-aws-ec2-v2.6.0".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"configuration-aws-network-main".to_owned()),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("crossplane-") || n.contains("large-crd")),
        "{names:?}"
    );
    assert_eq!(names.len(), 19, "{names:?}");
}

#[test]
fn xpkg_source_puts_meta_first_and_skips_examples_templates_and_auth() {
    let dir = testdata_root().join("provider-aws-ec2-v2.6.0");
    let text = String::from_utf8(package_yaml(&dir)).unwrap();
    assert!(text.starts_with("---\napiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\n"));
    assert_eq!(
        text.matches("\nkind: CustomResourceDefinition\n").count(),
        208
    );
    assert!(!text.contains("{{"), "template leaked into the stream");
    assert!(
        !text.contains("discriminant: spec.credentials.source"),
        "auth.yaml is not an object"
    );
    assert!(
        !text.contains("auth.upbound.io/config"),
        "no aws.upbound.io ProviderConfig CRD in the ec2 subset"
    );
}

#[test]
fn xpkg_source_synthesises_configuration_from_up_project() {
    let dir = testdata_root().join("configuration-aws-network-main");
    let text = String::from_utf8(package_yaml(&dir)).unwrap();
    let meta = text.split("\n---\n").next().unwrap();
    assert!(meta.contains("kind: Configuration\n"), "{meta}");
    assert!(
        meta.contains("  name: \"configuration-aws-network\"\n"),
        "{meta}"
    );
    assert!(
        meta.contains("meta.crossplane.io/license: \"Apache-2.0\""),
        "{meta}"
    );
    assert!(
        meta.contains("meta.crossplane.io/readme: \"This configuration is used"),
        "{meta}"
    );
    assert!(
        meta.contains("\\n For more details"),
        "block scalar keeps its extra indentation: {meta}"
    );
    assert!(meta.contains("version: \">=v2.0.0-rc.0\""), "{meta}");
    assert!(
        meta.contains("    package: xpkg.upbound.io/upbound/provider-aws-ec2\n"),
        "{meta}"
    );
    assert!(!meta.contains("apiDependencies"), "{meta}");
    assert_eq!(
        text.matches("\n---\n").count() + 1,
        4,
        "meta + composition + XRD + MRAP"
    );
    assert!(text.contains("kind: ManagedResourceActivationPolicy"));
}

#[test]
fn xpkg_source_examples_use_fs_reader_breaks() {
    let dir = testdata_root().join("provider-nop-main");
    let text = String::from_utf8(examples_yaml(&dir).unwrap()).unwrap();
    assert!(text.ends_with("\n...\n\n---\n"), "{text}");
    assert!(text.contains("kind: NopResource"));
    assert!(examples_yaml(&testdata_root().join("provider-kubernetes-v0.18.0")).is_none());
}

#[test]
fn xpkg_source_embeds_auth_on_the_provider_config_crd() {
    let dir = scratch_dir("auth");
    fs::create_dir_all(dir.join("crds")).unwrap();
    fs::write(
        dir.join("crossplane.yaml"),
        "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: p\n  annotations:\n    auth.upbound.io/group: aws.upbound.io\n",
    )
    .unwrap();
    fs::write(
        dir.join("crds/aws.upbound.io_providerconfigs.yaml"),
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: providerconfigs.aws.upbound.io\nspec:\n  group: aws.upbound.io\n  names:\n    kind: ProviderConfig\n    plural: providerconfigs\n",
    )
    .unwrap();
    fs::write(
        dir.join("auth.yaml"),
        "# comment\nversion: '2023-01-30'\ndiscriminant: spec.credentials.source\n",
    )
    .unwrap();
    let text = String::from_utf8(package_yaml(&dir)).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    assert!(
        text.contains("  annotations:\n    auth.upbound.io/config: \"# comment\\nversion: '2023-01-30'\\ndiscriminant: spec.credentials.source\\n\"\n"),
        "{text}"
    );
    assert_eq!(
        text.matches("---\n").count(),
        2,
        "auth.yaml is not a document of its own: {text}"
    );
}
