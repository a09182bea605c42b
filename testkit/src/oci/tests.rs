use super::*;

#[test]
fn descriptor_serializes_to_oci_json_and_back() {
    let d = Descriptor {
        media_type: OCI_MANIFEST.to_owned(),
        digest: "sha256:ab".to_owned(),
        size: 3,
        ..Descriptor::default()
    }
    .with_platform("linux", "arm64")
    .with_annotation("k", "v");
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(
        json,
        r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:ab","size":3,"annotations":{"k":"v"},"platform":{"architecture":"arm64","os":"linux"}}"#
    );
    assert_eq!(serde_json::from_str::<Descriptor>(&json).unwrap(), d);
}

#[test]
fn tag_replaces_an_entry_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path());
    let a = layout.add_image(ImageSpec::default());
    let b = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"x")]))],
        ..ImageSpec::default()
    });
    layout.tag("v1", &a);
    layout.tag("v1", &b);
    layout.tag("v2", &a);
    let names: Vec<_> = layout
        .read_index()
        .manifests
        .into_iter()
        .map(|d| (d.annotations[REF_NAME].clone(), d.digest))
        .collect();
    assert_eq!(
        names,
        [("v1".to_owned(), b.digest), ("v2".to_owned(), a.digest)]
    );
    assert_eq!(
        layout.skopeo_ref("v1"),
        format!("oci:{}:v1", dir.path().display())
    );
}
