//! Hostile and broken packages are recorded as rejected with a precise reason; the worker goes
//! on, and earlier versions of the same package stay as they were. Non-packages are recorded
//! without downloading a layer.

use std::io::Write;

use testkit::{
    oci::{ImageSpec, LayerSpec, OciLayout, diff_id, tar_gz},
    xpkg_image, xpkg_source,
};

use crate::harness::{Env, scratch_layout, tag_with_extensions};
use testkit::http::Sent;

const META: &str =
    "apiVersion: meta.pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: provider-bad\n";

fn gzip(data: impl FnOnce(&mut dyn Write)) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    data(&mut enc);
    enc.finish().unwrap()
}

/// A gzip tar whose one entry `package.yaml` claims `size` bytes of repeated `line`, written
/// without holding it in memory.
fn big_package_layer(size: u64, prefix: &[u8], line: &[u8]) -> Vec<u8> {
    gzip(|w| {
        let mut header = tar::Header::new_gnu();
        header.set_path("package.yaml").unwrap();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_cksum();
        w.write_all(header.as_bytes()).unwrap();
        w.write_all(prefix).unwrap();
        let mut written = prefix.len() as u64;
        while written + line.len() as u64 <= size {
            w.write_all(line).unwrap();
            written += line.len() as u64;
        }
        w.write_all(&vec![b'\n'; (size - written) as usize])
            .unwrap();
        let pad = (512 - size % 512) % 512;
        w.write_all(&vec![0; pad as usize + 1024]).unwrap();
    })
}

/// One gzip member of `data`; members concatenate into one stream (RFC 1952), which lets a
/// bomb of hundreds of MiB be assembled from a few small compressed pieces.
fn gzip_member(data: &[u8]) -> Vec<u8> {
    gzip(|w| w.write_all(data).unwrap())
}

fn file_header(path: &str, size: u64) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    header.set_path(path).unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    header.as_bytes().to_vec()
}

/// A bomb no tar header gives away: three 100 MiB entries of zeros (none a file the indexer
/// keeps, so no per-file cap applies), then `package.yaml`. Only the streaming cap on
/// decompressed bytes (256 MiB) stops it; compressed it is a few hundred KiB.
fn stream_bomb() -> Vec<u8> {
    const MIB: u64 = 1 << 20;
    let zeros = gzip_member(&vec![0u8; MIB as usize]);
    let mut out = Vec::new();
    for n in 0..3 {
        out.extend(gzip_member(&file_header(&format!("filler-{n}"), 100 * MIB)));
        for _ in 0..100 {
            out.extend_from_slice(&zeros);
        }
    }
    let mut tail = file_header("package.yaml", META.len() as u64);
    tail.extend_from_slice(META.as_bytes());
    tail.resize(tail.len() + 512 - META.len() % 512 + 1024, 0);
    out.extend(gzip_member(&tail));
    assert!(
        out.len() < 1 << 20,
        "the stream bomb is small: {}",
        out.len()
    );
    out
}

/// 101,000 empty files: over the 100,000-entry cap, a few hundred KiB compressed.
fn entries_bomb() -> Vec<u8> {
    let block: Vec<u8> = (0..1000).flat_map(|_| file_header("f", 0)).collect();
    let member = gzip_member(&block);
    let mut out = Vec::new();
    for _ in 0..101 {
        out.extend_from_slice(&member);
    }
    out.extend(gzip_member(&[0u8; 1024]));
    out
}

fn raw_tar_with(path: &str, kind: tar::EntryType) -> Vec<u8> {
    gzip(|w| {
        let mut header = tar::Header::new_gnu();
        // set_path refuses `..`; write the name bytes directly, as an attacker would.
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(kind);
        header.set_size(if kind == tar::EntryType::Regular {
            META.len() as u64
        } else {
            0
        });
        if kind == tar::EntryType::Symlink {
            header.set_link_name("/etc/passwd").unwrap();
        }
        header.set_mode(0o644);
        header.set_cksum();
        w.write_all(header.as_bytes()).unwrap();
        if kind == tar::EntryType::Regular {
            w.write_all(META.as_bytes()).unwrap();
            w.write_all(&vec![0; 512 - META.len() % 512]).unwrap();
        }
        w.write_all(&[0; 1024]).unwrap();
    })
}

/// An image whose base layer is exactly `layer`.
fn with_base_layer(layout: &OciLayout, tag: &str, layer: Vec<u8>) {
    let mut spec = LayerSpec::bytes(layer.clone());
    spec.annotations
        .insert("io.crossplane.xpkg".into(), "base".into());
    let config = testkit::oci::config_json_with_diff_ids(&Default::default(), &[diff_id(&layer)]);
    let desc = layout.add_image(ImageSpec {
        config,
        layers: vec![spec],
        ..Default::default()
    });
    layout.tag(tag, &desc);
}

fn package(yaml: &str) -> Vec<u8> {
    tar_gz(&[("package.yaml", yaml.as_bytes())])
}

#[tokio::test]
async fn hostile_packages_are_rejected_with_reasons_and_nothing_else_changes() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();

    // A good version first.
    let good = xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main"));
    xpkg_image::write(&layout, "v1.0.0", &good);
    env.push(&layout, "v1.0.0", "xpkg/provider-nop", &[]).await;
    env.index_all().await;
    let objects_before = env.count("select count(*) from objects").await;
    let apis_before = env.count("select count(*) from api_types").await;

    let bomb = gzip(|w| {
        let mut header = tar::Header::new_gnu();
        header.set_path("package.yaml").unwrap();
        header.set_size(4 * 1024 * 1024 * 1024);
        header.set_mode(0o644);
        header.set_cksum();
        w.write_all(header.as_bytes()).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(1024 + 64) {
            w.write_all(&zeros).unwrap();
        }
    });
    assert!(
        bomb.len() < 2 * 1024 * 1024,
        "the bomb is small compressed: {}",
        bomb.len()
    );
    let alias_bomb = format!(
        "{META}---\na: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\ni: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "gzip-bomb",
            bomb,
            "=package.yaml size exceeded (limit 209715200): \"package.yaml\" is 4294967296 bytes",
        ),
        (
            "stream-bomb",
            stream_bomb(),
            "=decompressed layer size exceeded (limit 268435456): the layer decompresses to more than 268435456 bytes",
        ),
        (
            "entries-bomb",
            entries_bomb(),
            "=number of tar entries exceeded (limit 100000): the layer has more than 100000 entries",
        ),
        (
            "deep",
            package(&format!(
                "{META}---\nx: {}{}\n",
                "[".repeat(200),
                "]".repeat(200)
            )),
            "YAML nesting depth exceeded (limit 128)",
        ),
        (
            "documents",
            package(&format!("{META}{}", "---\na: 1\n".repeat(50_001))),
            "number of YAML documents exceeded (limit 50000)",
        ),
        (
            "traversal",
            raw_tar_with("../package.yaml", tar::EntryType::Regular),
            "../package.yaml",
        ),
        (
            "symlink",
            raw_tar_with("package.yaml", tar::EntryType::Symlink),
            "package.yaml",
        ),
        ("alias-bomb", package(&alias_bomb), "alias"),
        (
            "huge",
            big_package_layer(
                300 * 1024 * 1024,
                format!("{META}---\n").as_bytes(),
                b"k: vvvvvvvvvvvvvvvvvvvvvvvvvvv\n",
            ),
            "=package.yaml size exceeded (limit 209715200): \"package.yaml\" is 314572800 bytes",
        ),
        (
            "invalid-yaml",
            package(&format!("{META}---\nkey: [unclosed\n")),
            "invalid YAML",
        ),
        (
            "no-meta",
            package("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"),
            "no package meta",
        ),
    ];
    for (tag, layer, _) in &cases {
        with_base_layer(&layout, tag, layer.clone());
        env.push(&layout, tag, "xpkg/provider-nop", &[]).await;
    }
    env.index_all().await;

    for (tag, _, reason) in &cases {
        let (kind, rejection): (String, Option<String>) = sqlx::query_as(
            "select v.kind, v.rejection from versions v join tags t on t.version_id = v.id where t.tag = $1",
        )
        .bind(tag)
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("{tag} recorded: {e}"));
        assert_eq!(kind, "rejected", "{tag}");
        let rejection = rejection.unwrap_or_default();
        // `=`: the exact reason, naming which limit fired; otherwise a part of it.
        match reason.strip_prefix('=') {
            Some(exact) => assert_eq!(rejection, exact, "{tag}"),
            None => assert!(
                rejection.to_lowercase().contains(&reason.to_lowercase()),
                "{tag}: {rejection}"
            ),
        }
    }
    assert_eq!(
        env.count("select count(*) from index_jobs where state <> 'done'")
            .await,
        0
    );
    // The good version is untouched, and the rejects added no objects or APIs.
    assert_eq!(
        env.count("select count(*) from objects").await,
        objects_before
    );
    assert_eq!(
        env.count("select count(*) from api_types").await,
        apis_before
    );
    let good_kind: String = testkit::pg::scalar(
        &env.pool,
        "select v.kind from versions v join tags t on t.version_id = v.id where t.tag = 'v1.0.0'",
    )
    .await;
    assert_eq!(good_kind, "package");
}

#[tokio::test]
async fn images_and_artifacts_are_recorded_without_layer_downloads() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    // Incompressible contents, so the image really is megabytes.
    let app = testkit::oci::incompressible(0x2545_f491, 2 * 1024 * 1024);
    let layer = tar_gz(&[("app", &app)]);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/app"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id(&layer)]},
    }))
    .unwrap();
    let image = layout.add_image(ImageSpec {
        config: config.clone(),
        layers: vec![LayerSpec::bytes(layer.clone())],
        ..Default::default()
    });
    layout.tag("image", &image);
    let artifact = layout.add_image(ImageSpec {
        artifact_type: Some("application/vnd.example.sbom.v1".into()),
        config: b"{}".to_vec(),
        config_media_type: Some("application/vnd.oci.empty.v1+json".into()),
        layers: vec![LayerSpec {
            media_type: Some("application/spdx+json".into()),
            ..LayerSpec::bytes(layer.clone())
        }],
        ..Default::default()
    });
    layout.tag("sbom", &artifact);
    env.push(&layout, "image", "apps/web", &[]).await;
    env.push(&layout, "sbom", "apps/web", &[]).await;
    env.index_all().await;

    let rows: Vec<(String, String, Option<String>, i64, i64)> = testkit::pg::rows(
        &env.pool,
        "select t.tag, v.kind, v.artifact_type, v.bytes_downloaded, v.image_bytes
         from versions v join tags t on t.version_id = v.id order by t.tag",
    )
    .await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (_, kind, _, downloaded, size) = &rows[0];
    assert_eq!(kind, "image");
    assert!(*size > 2_000_000);
    // The manifest and the config, nothing else.
    assert!(
        *downloaded < (image.size as i64 + config.len() as i64) + 1,
        "{downloaded}"
    );
    let (_, kind, artifact_type, downloaded, _) = &rows[1];
    assert_eq!(kind, "artifact");
    assert_eq!(
        artifact_type.as_deref(),
        Some("application/vnd.example.sbom.v1")
    );
    assert_eq!(
        *downloaded, artifact.size as i64,
        "only the manifest was read"
    );
    assert_eq!(env.count("select count(*) from objects").await, 0);
}

#[tokio::test]
async fn a_roleless_image_over_the_flatten_limit_is_not_downloaded_and_says_why() {
    let env = Env::start_with("[indexer]\nflatten_limit_bytes = 1000\n").await;
    let (_tmp, layout) = scratch_layout();
    let image = testkit::xpkg_image::PackageImage {
        roles: testkit::xpkg_image::Roles::None,
        examples_yaml: None,
        ..xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main"))
    };
    xpkg_image::write(&layout, "old", &image);
    env.push(&layout, "old", "xpkg/provider-old", &[]).await;
    env.index_all().await;
    let (kind, note, downloaded, size): (String, Option<String>, i64, i64) = testkit::pg::row(
        &env.pool,
        "select kind, meta->>'note', bytes_downloaded, image_bytes from versions",
    )
    .await;
    assert_eq!(kind, "image");
    let note = note.unwrap_or_default();
    assert!(
        note.contains("not flattening") && note.contains("limit 1000"),
        "{note}"
    );
    assert!(
        downloaded < size,
        "no layer was downloaded ({downloaded} of {size})"
    );
}

/// A registry that serves a manifest whose bytes are not JSON (with a matching digest).
///
/// Hand-written fake, and only for this: docker-registry refuses to store such a manifest, so a
/// real server cannot be made to produce the fault.
async fn registry_serving_garbage_manifest(body: &'static [u8]) -> String {
    use axum::{Router, http::header, routing::get};
    let digest = testkit::skopeo::digest_of(body);
    let app = Router::new()
        .route("/v2/", get(|| async { "{}" }))
        .fallback(move || {
            let digest = digest.clone();
            async move {
                (
                    [
                        (
                            header::CONTENT_TYPE,
                            "application/vnd.oci.image.manifest.v1+json".to_owned(),
                        ),
                        (
                            header::HeaderName::from_static("docker-content-digest"),
                            digest,
                        ),
                    ],
                    body,
                )
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_manifest_that_is_not_json_is_rejected_and_recorded() {
    let env = Env::start().await;
    const BODY: &[u8] = b"this is not { json";
    let url = registry_serving_garbage_manifest(BODY).await;
    let reader = shimmer_registry::Client::from_config(&shimmer_config::BackendConfig::new(
        "fake",
        url.parse().unwrap(),
    ))
    .unwrap();
    let digest = testkit::skopeo::digest_of(BODY);
    let outcome = shimmer_indexer::pipeline::index(
        &env.pool,
        &reader,
        "bad/manifest",
        &digest,
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(outcome.kind, "rejected");
    assert_eq!(
        outcome.rejection.as_deref(),
        Some("manifest is not valid JSON")
    );
    let stored: (String, Option<String>) =
        testkit::pg::row(&env.pool, "select kind, rejection from versions").await;
    assert_eq!(
        stored,
        (
            "rejected".to_owned(),
            Some("manifest is not valid JSON".to_owned())
        )
    );
}

/// The row stored for `tag`: kind, artifact type, note, rejection, bytes downloaded.
async fn stored(
    env: &Env,
    tag: &str,
) -> (String, Option<String>, Option<String>, Option<String>, i64) {
    sqlx::query_as(
        "select v.kind, v.artifact_type, v.meta->>'note', v.rejection, v.bytes_downloaded
         from versions v join tags t on t.version_id = v.id where t.tag = $1",
    )
    .bind(tag)
    .fetch_one(&env.pool)
    .await
    .unwrap_or_else(|e| panic!("{tag} recorded: {e}"))
}

#[tokio::test]
async fn a_cosign_signature_is_a_non_package_and_nothing_is_downloaded() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let signed = xpkg_image::write(
        &layout,
        "v1",
        &xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main")),
    );
    // What `cosign sign` pushes: an image config with nothing to run and a simple-signing
    // payload as the one "layer", the signature in its annotations.
    let payload = serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": "xpkg/provider-nop"},
            "image": {"docker-manifest-digest": signed.digest},
            "type": "cosign container image signature"
        },
        "optional": null
    }))
    .unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "", "os": "", "created": "0001-01-01T00:00:00Z",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [testkit::skopeo::digest_of(&payload)]},
    }))
    .unwrap();
    let mut layer = LayerSpec::bytes(payload);
    layer.media_type = Some("application/vnd.dev.cosign.simplesigning.v1+json".into());
    layer.annotations.insert(
        "dev.cosignproject.cosign/signature".into(),
        "MEUCIQDx7mVxZ3hOK2ncWe3Yy1nkSpIaEQbrJSv0ld0ls/6Z1QIgYOh8Df4vE9J4kL3uItp8sOAjrQEu1Yq1u2C4Jl0Vw0Q="
            .into(),
    );
    let sig = layout.add_image(ImageSpec {
        config,
        layers: vec![layer],
        ..Default::default()
    });
    let sig_tag = format!("{}.sig", signed.digest.replace(':', "-"));
    layout.tag(&sig_tag, &sig);
    env.push(&layout, &sig_tag, "xpkg/provider-nop", &[]).await;
    // `cosign attest`: the same shape, a DSSE envelope as the layer.
    let envelope =
        br#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}"#;
    let mut att_layer = LayerSpec::bytes(envelope.to_vec());
    att_layer.media_type = Some("application/vnd.dsse.envelope.v1+json".into());
    let att = layout.add_image(ImageSpec {
        config: testkit::oci::config_json_with_diff_ids(
            &Default::default(),
            &[testkit::skopeo::digest_of(envelope)],
        ),
        layers: vec![att_layer],
        ..Default::default()
    });
    let att_tag = format!("{}.att", signed.digest.replace(':', "-"));
    layout.tag(&att_tag, &att);
    env.push(&layout, &att_tag, "xpkg/provider-nop", &[]).await;
    // A sigstore bundle the OCI 1.1 way: `artifactType`, an empty config.
    let mut bundle_layer = LayerSpec::bytes(b"{}".to_vec());
    bundle_layer.media_type = Some("application/vnd.dev.sigstore.bundle.v0.3+json".into());
    let bundle = layout.add_image(ImageSpec {
        artifact_type: Some("application/vnd.dev.sigstore.bundle.v0.3+json".into()),
        config: b"{}".to_vec(),
        config_media_type: Some("application/vnd.oci.empty.v1+json".into()),
        layers: vec![bundle_layer],
        ..Default::default()
    });
    layout.tag("bundle", &bundle);
    env.push(&layout, "bundle", "xpkg/provider-nop", &[]).await;
    env.index_all().await;
    for (tag, desc, artifact_type) in [
        (&att_tag, &att, "application/vnd.dsse.envelope.v1+json"),
        (
            &"bundle".to_owned(),
            &bundle,
            "application/vnd.dev.sigstore.bundle.v0.3+json",
        ),
    ] {
        let (kind, stored_type, note, rejection, downloaded) = stored(&env, tag).await;
        assert_eq!(kind, "artifact", "{tag}: {note:?} {rejection:?}");
        assert_eq!(stored_type.as_deref(), Some(artifact_type), "{tag}");
        assert_eq!(
            downloaded, desc.size as i64,
            "{tag}: the manifest alone was read"
        );
    }

    let (kind, artifact_type, note, rejection, downloaded) = stored(&env, &sig_tag).await;
    assert_eq!(kind, "artifact", "{note:?} {rejection:?}");
    assert_eq!(rejection, None);
    assert_eq!(
        artifact_type.as_deref(),
        Some("application/vnd.dev.cosign.simplesigning.v1+json")
    );
    assert!(
        note.as_deref()
            .unwrap_or_default()
            .contains("no layer is a tar layer"),
        "{note:?}"
    );
    assert_eq!(
        downloaded, sig.size as i64,
        "the manifest alone was read: no config, no layer"
    );
    assert_eq!(env.count("select count(*) from objects").await, 0);
}

/// A gzip tar of `entries` written as they come: (path, type, link target, content).
fn tar_with(entries: &[(&str, tar::EntryType, &str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, kind, link, body) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_size(body.len() as u64);
        header.set_mode(0o755);
        if !link.is_empty() {
            header.set_link_name(link).unwrap();
        }
        header.set_path(path).unwrap();
        header.set_cksum();
        builder.append(&header, *body).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

#[tokio::test]
async fn a_symlink_in_an_image_layer_does_not_fail_a_roleless_flatten() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let source = xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main"));
    // An old package: no roles anywhere, a runtime layer as images have them (a symlink, a hard
    // link), then the layer with package.yaml.
    let runtime = tar_with(&[
        ("bin/", tar::EntryType::Directory, "", b""),
        (
            "bin/provider",
            tar::EntryType::Regular,
            "",
            b"\x7fELF not really",
        ),
        ("bin/sh", tar::EntryType::Symlink, "/bin/busybox", b""),
        ("bin/nop", tar::EntryType::Link, "bin/provider", b""),
    ]);
    let base = tar_gz(&[("package.yaml", &source.package_yaml)]);
    let config = testkit::oci::config_json_with_diff_ids(
        &Default::default(),
        &[diff_id(&runtime), diff_id(&base)],
    );
    let desc = layout.add_image(ImageSpec {
        config,
        layers: vec![LayerSpec::bytes(runtime), LayerSpec::bytes(base)],
        ..Default::default()
    });
    layout.tag("old", &desc);
    env.push(&layout, "old", "xpkg/provider-nop", &[]).await;
    env.index_all().await;
    let (kind, _, note, rejection, _) = stored(&env, "old").await;
    assert_eq!(kind, "package", "{note:?} {rejection:?}");
    let package_type: Option<String> =
        testkit::pg::scalar(&env.pool, "select package_type from versions").await;
    assert_eq!(package_type.as_deref(), Some("Provider"));
}

#[tokio::test]
async fn an_image_config_over_the_read_cap_is_not_truncated_and_says_why() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let source = xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main"));
    let base = tar_gz(&[("package.yaml", &source.package_yaml)]);
    // A roleless image (nothing to run) whose config is 2 MiB: a truncated read would parse as
    // nothing, and the image would be flattened as an old package.
    let labels = [("padding".to_owned(), "x".repeat(2 << 20))].into();
    let config = testkit::oci::config_json_with_diff_ids(&labels, &[diff_id(&base)]);
    let desc = layout.add_image(ImageSpec {
        config: config.clone(),
        layers: vec![LayerSpec::bytes(base)],
        ..Default::default()
    });
    layout.tag("fat", &desc);
    env.push(&layout, "fat", "xpkg/provider-fat", &[]).await;
    // And a config that is not JSON at all: not read as "no config", either.
    let garbled = layout.add_image(ImageSpec {
        config: b"{\"config\": not json".to_vec(),
        layers: vec![LayerSpec::bytes(tar_gz(&[(
            "package.yaml",
            &source.package_yaml,
        )]))],
        ..Default::default()
    });
    layout.tag("garbled", &garbled);
    env.push(&layout, "garbled", "xpkg/provider-fat", &[]).await;
    env.index_all().await;
    let (kind, _, note, rejection, _) = stored(&env, "garbled").await;
    assert_eq!(kind, "image", "{rejection:?}");
    assert_eq!(
        note.as_deref(),
        Some("image config is not valid JSON; its layers were not searched for a package")
    );
    let (kind, _, note, rejection, downloaded) = stored(&env, "fat").await;
    assert_eq!(kind, "image", "{rejection:?}");
    let note = note.unwrap_or_default();
    assert!(
        note.contains("larger than the 1048576-byte read cap")
            && note.contains(&format!("{} bytes declared", config.len())),
        "{note}"
    );
    assert_eq!(
        downloaded, desc.size as i64,
        "neither config nor layer read"
    );
}

/// A gzip tar whose one entry `path` claims `size` bytes, with none of them present: the header
/// alone must make the reader refuse it.
fn claims_size(path: &str, size: u64) -> Vec<u8> {
    let mut tar = file_header(path, size);
    tar.extend_from_slice(&[0; 1024]);
    gzip_member(&tar)
}

#[tokio::test]
async fn examples_and_extensions_over_their_caps_leave_a_note_and_the_package_indexed() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let source = xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main"));
    let role = |bytes: Vec<u8>, role: &str| {
        let mut l = LayerSpec::bytes(bytes);
        l.annotations
            .insert("io.crossplane.xpkg".into(), role.into());
        l
    };
    let package = layout.add_image(ImageSpec {
        config: testkit::oci::config_json(&Default::default()),
        layers: vec![
            role(tar_gz(&[("package.yaml", &source.package_yaml)]), "base"),
            role(claims_size(".up/examples.yaml", 65 << 20), "upbound"),
        ],
        ..Default::default()
    });
    let extensions = layout.add_image(ImageSpec {
        config: b"{}".to_vec(),
        config_media_type: Some("application/vnd.oci.empty.v1+json".into()),
        layers: vec![role(claims_size("readme/README.md", 5 << 20), "readme")],
        ..Default::default()
    });
    tag_with_extensions(&layout, "v1", package, extensions);
    env.push(&layout, "v1", "xpkg/provider-nop", &["--all"])
        .await;
    env.index_all().await;
    let (kind, note, examples): (String, Option<String>, i64) = testkit::pg::row(&env.pool, "select v.kind, v.meta->>'note', (select count(*) from examples e where e.version_id = v.id)
         from versions v join tags t on t.version_id = v.id where t.tag = 'v1'").await;
    assert_eq!(kind, "package");
    assert_eq!(examples, 0);
    assert_eq!(
        note.as_deref(),
        Some(
            "examples layer not read: .up/examples.yaml size exceeded (limit 67108864): \
             \".up/examples.yaml\" is 68157440 bytes; extension layer not read: extension file \
             size exceeded (limit 4194304): \"readme/README.md\" is 5242880 bytes"
        )
    );
}

/// A registry serving one OCI layout, whose layer blobs are cut off halfway (the full
/// `Content-Length` announced, then the connection closed) while `cut` is set.
///
/// Hand-written fake, and only for this: a real registry cannot be made to die mid-stream.
async fn registry_cutting_blobs(
    layout: &OciLayout,
    manifest: testkit::oci::Descriptor,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> String {
    use axum::{
        Router,
        body::Body,
        extract::Path,
        http::{StatusCode, header},
        response::{IntoResponse, Response},
        routing::get,
    };
    let dir = layout.dir.clone();
    let blob = move |digest: &str| std::fs::read(dir.join("blobs/sha256").join(&digest[7..])).ok();
    let app = Router::new().route("/v2/", get(|| async { "{}" })).route(
        "/v2/{*path}",
        get(move |Path(path): Path<String>| {
            let (blob, manifest, cut) = (blob.clone(), manifest.clone(), cut.clone());
            async move {
                let Some((_, reference)) = path.rsplit_once('/') else {
                    return StatusCode::NOT_FOUND.into_response();
                };
                if path.contains("/manifests/") {
                    let bytes = blob(&manifest.digest).unwrap();
                    return (
                        [
                            (header::CONTENT_TYPE, manifest.media_type.clone()),
                            (
                                header::HeaderName::from_static("docker-content-digest"),
                                manifest.digest.clone(),
                            ),
                        ],
                        bytes,
                    )
                        .into_response();
                }
                let Some(bytes) = blob(reference) else {
                    return StatusCode::NOT_FOUND.into_response();
                };
                // Layers only (gzip): the config blob comes whole, so the cut lands where the
                // layer is being read.
                if !cut.load(std::sync::atomic::Ordering::SeqCst)
                    || !bytes.starts_with(&[0x1f, 0x8b])
                {
                    return bytes.into_response();
                }
                let half = bytes[..bytes.len() / 2].to_vec();
                // The head and the first half go out; a moment later the connection dies.
                let body = futures_util::StreamExt::chain(
                    futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(half))]),
                    futures_util::stream::once(async {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        Err(std::io::Error::other("the backend died"))
                    }),
                );
                Response::builder()
                    .header(header::CONTENT_LENGTH, bytes.len())
                    .body(Body::from_stream(body))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_layer_cut_off_mid_stream_fails_the_job_for_a_retry_and_a_forced_reindex_replaces() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let manifest = xpkg_image::write(
        &layout,
        "v1",
        &xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main")),
    );
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let url = registry_cutting_blobs(&layout, manifest.clone(), cut.clone()).await;
    let reader = shimmer_registry::Client::from_config(&shimmer_config::BackendConfig::new(
        "flaky",
        url.parse().unwrap(),
    ))
    .unwrap();
    let index = |force: bool| {
        let (pool, reader) = (env.pool.clone(), reader.clone());
        let digest = manifest.digest.clone();
        async move {
            let options = shimmer_indexer::pipeline::Options {
                force,
                ..Default::default()
            };
            shimmer_indexer::pipeline::index(&pool, &reader, "flaky/nop", &digest, &options).await
        }
    };
    // The registry's failure, not the package's: an error (the worker retries it), nothing
    // stored. It used to be recorded for good as "not a readable gzip tar".
    let err = index(false).await.unwrap_err().to_string();
    assert!(
        err.contains("the backend died") || err.contains("decoding"),
        "{err}"
    );
    assert_eq!(env.count("select count(*) from versions").await, 0);

    // Whole again: indexed.
    cut.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(index(false).await.unwrap().kind, "package");

    // A forced re-index replaces what is stored (a wrong rejection could not be cleared).
    testkit::pg::exec(
        &env.pool,
        "update versions set kind = 'rejected', rejection = 'stale'",
    )
    .await;
    testkit::pg::exec(&env.pool, "delete from api_types").await;
    assert_eq!(index(true).await.unwrap().kind, "package");
    let stored: (String, Option<String>) =
        testkit::pg::row(&env.pool, "select kind, rejection from versions").await;
    assert_eq!(stored, ("package".to_owned(), None));
    assert!(
        env.count("select count(*) from api_types").await > 0,
        "API types written again"
    );
    assert_eq!(env.count("select count(*) from versions").await, 1);
}

#[tokio::test]
async fn a_nul_character_in_a_manifest_is_a_rejection_not_a_database_error() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let artifact = layout.add_image(ImageSpec {
        // `\u0000` in the JSON: valid JSON, and docker-registry stores it.
        artifact_type: Some("application/vnd.example\u{0}.v1".into()),
        config: b"{}".to_vec(),
        config_media_type: Some("application/vnd.oci.empty.v1+json".into()),
        layers: vec![LayerSpec::bytes(b"x".to_vec())],
        ..Default::default()
    });
    layout.tag("nul", &artifact);
    env.push(&layout, "nul", "odd/artifact", &[]).await;
    env.index_all().await;
    // One attempt, done, and a version saying why (it failed at the database, three times).
    let (state, attempts): (String, i32) = testkit::pg::row(
        &env.pool,
        "select state, attempts from index_jobs where repository = 'odd/artifact'",
    )
    .await;
    assert_eq!((state.as_str(), attempts), ("done", 1));
    let (kind, rejection): (String, Option<String>) =
        testkit::pg::row(&env.pool, "select kind, rejection from versions").await;
    assert_eq!(kind, "rejected");
    assert!(rejection.unwrap_or_default().contains("NUL character"));
}

#[tokio::test]
async fn a_missing_examples_blob_is_a_note_and_the_package_is_indexed() {
    let env = Env::start_with("[indexer]\nmax_attempts = 2\nretry_base = \"0s\"\n").await;
    let (_tmp, layout) = scratch_layout();
    let manifest = xpkg_image::write(
        &layout,
        "v1",
        &xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-kubernetes-v1.2.1")),
    );
    env.push(&layout, "v1", "acme/kubernetes", &[]).await;
    // The examples layer's blob goes from the backend (deleted there, as a registry's garbage
    // collection or a partial mirror leaves it).
    let m: serde_json::Value = serde_json::from_slice(&layout.read_blob(&manifest.digest)).unwrap();
    let examples = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["annotations"]["io.crossplane.xpkg"] == "upbound")
        .expect("an examples layer")["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = reqwest::Client::new()
        .delete(format!(
            "{}/v2/acme/kubernetes/blobs/{examples}",
            env.registry.url()
        ))
        .sent()
        .await;
    assert_eq!(deleted.status(), 202);
    env.index_all().await;
    // It used to fail the job until it gave up, the package never indexed.
    let (kind, note): (String, Option<String>) =
        testkit::pg::row(&env.pool, "select kind, meta->>'note' from versions").await;
    assert_eq!(kind, "package");
    assert!(
        note.unwrap_or_default()
            .contains("examples layer not read: its blob is missing from the registry")
    );
}

#[tokio::test]
async fn a_manifest_over_the_size_limit_is_rejected_unparsed() {
    // The indexer reads no manifest over the shim's `server.max_manifest_bytes` (docker-registry
    // itself neither stores nor serves one over 4 MiB, so the limit is set lower here).
    const LIMIT: usize = 64 * 1024;
    let env = Env::start_with(&format!("[server]\nmax_manifest_bytes = {LIMIT}\n")).await;
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{}", "1".repeat(64)),
            "size": 2,
        },
        "layers": [],
        "annotations": {"pad": "x".repeat(LIMIT)},
    }))
    .unwrap();
    // Planted in the registry's storage (pushing it would need its config blob), from where the
    // real registry serves it.
    let digest = testkit::skopeo::digest_of(&body);
    let hex = &digest["sha256:".len()..];
    let root = env.registry.data_dir().join("docker/registry/v2");
    let write = |path: std::path::PathBuf, data: &[u8]| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    write(
        root.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2])),
        &body,
    );
    let manifests = root.join("repositories/big/manifest/_manifests");
    for link in [
        format!("revisions/sha256/{hex}/link"),
        "tags/v1/current/link".to_owned(),
        format!("tags/v1/index/sha256/{hex}/link"),
    ] {
        write(manifests.join(link), digest.as_bytes());
    }
    let reader = env.indexer.backend("primary").unwrap();
    let outcome = shimmer_indexer::pipeline::index(
        &env.pool,
        reader,
        "big/manifest",
        "v1",
        env.indexer.options(),
    )
    .await
    .unwrap();
    let want = format!(
        "manifest is {} bytes, over the limit of {LIMIT}",
        body.len()
    );
    assert_eq!(
        (outcome.kind.as_str(), outcome.rejection.as_deref()),
        ("rejected", Some(want.as_str()))
    );
    assert_eq!(outcome.manifest_digest, digest);
    let (kind, _, _, rejection, downloaded) = stored(&env, "v1").await;
    assert_eq!((kind.as_str(), rejection), ("rejected", Some(want)));
    assert_eq!(downloaded, body.len() as i64, "the manifest, and no more");
}
