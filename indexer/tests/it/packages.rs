//! Real packages from `testdata/xpkg-sources`, every version, through the whole path.

use std::collections::{BTreeMap, BTreeSet};

use testkit::{
    oci::{Flavor, OciLayout},
    xpkg_image::{self, PackageImage, Roles},
    xpkg_source,
};

use crate::harness::{Env, scratch_layout, tag_index, tag_with_extensions};

/// `provider-kubernetes-v0.9.0` -> (`xpkg/provider-kubernetes`, `v0.9.0`).
fn repo_and_tag(dir: &std::path::Path) -> (String, String) {
    let name = dir.file_name().unwrap().to_str().unwrap();
    let (repo, tag) = name.rsplit_once('-').unwrap();
    (format!("xpkg/{repo}"), tag.to_owned())
}

/// The documents of a YAML stream, read by the test itself (a plain serde reader, none of the
/// indexer's classification), empty documents left out.
fn documents(stream: &[u8]) -> Vec<serde_json::Value> {
    // Test data only; a thread with room for deep CRD schemas in debug builds.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn_scoped(scope, || {
                let mut options = serde_saphyr::Options::default();
                options.budget = None;
                options.duplicate_keys = serde_saphyr::options::DuplicateKeyPolicy::LastWins;
                serde_saphyr::from_slice_multiple_with_options::<serde_json::Value>(stream, options)
            })
            .unwrap()
            .join()
            .unwrap()
    })
    .unwrap_or_else(|e| panic!("test data parses: {e}"))
    .into_iter()
    .filter(|d| !d.is_null())
    .collect()
}

/// What the sources say a package version must be stored as.
#[derive(Debug)]
struct Expected {
    repo: String,
    tag: String,
    package_type: String,
    name: String,
    /// maintainer, source, license, description: as the meta's annotations set them.
    annotations: BTreeMap<&'static str, Option<String>>,
    crossplane_version: Option<String>,
    depends_on: usize,
    /// (group, kind) of every CRD and XRD, sorted.
    apis: Vec<(String, String)>,
    examples: usize,
}

fn expected_from(dir: &std::path::Path, image: &PackageImage) -> Expected {
    let (repo, tag) = repo_and_tag(dir);
    let docs = documents(&image.package_yaml);
    // The build puts crossplane.yaml (or the meta synthesised from upbound.yaml) first.
    let meta = &docs[0];
    // The current `meta.crossplane.io/` keys, else the bare keys old packages use
    // (provider-nop: `description`, `descriptionShort`).
    let annotation = |key: &str| {
        let annotations = &meta["metadata"]["annotations"];
        let mut keys = vec![format!("meta.crossplane.io/{key}"), key.to_owned()];
        if key == "description" {
            keys.push("descriptionShort".to_owned());
        }
        keys.iter()
            .find_map(|k| annotations[k.as_str()].as_str())
            .map(str::to_owned)
    };
    let mut apis: Vec<(String, String)> = docs[1..]
        .iter()
        .filter(|d| {
            matches!(
                d["kind"].as_str(),
                Some("CustomResourceDefinition" | "CompositeResourceDefinition")
            )
        })
        .map(|d| {
            (
                d["spec"]["group"].as_str().unwrap().to_owned(),
                d["spec"]["names"]["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    apis.sort();
    Expected {
        repo,
        tag,
        package_type: meta["kind"].as_str().unwrap().to_owned(),
        name: meta["metadata"]["name"].as_str().unwrap().to_owned(),
        annotations: ["maintainer", "source", "license", "description"]
            .into_iter()
            .map(|k| (k, annotation(k)))
            .collect(),
        crossplane_version: meta["spec"]["crossplane"]["version"]
            .as_str()
            .map(str::to_owned),
        depends_on: meta["spec"]["dependsOn"].as_array().map_or(0, Vec::len),
        apis,
        examples: image
            .examples_yaml
            .as_deref()
            .map_or(0, |e| documents(e).len()),
    }
}

fn expected_type(repo: &str) -> &'static str {
    if repo.contains("/provider-") {
        "Provider"
    } else if repo.contains("/function-") {
        "Function"
    } else {
        "Configuration"
    }
}

/// Size of the stand-in for the controller binary in every built image.
const RUNTIME_BYTES: u64 = 3 * 1024 * 1024;

#[tokio::test]
async fn every_real_package_at_every_version_is_indexed() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let mut expected = Vec::new();
    for (n, dir) in xpkg_source::package_dirs().into_iter().enumerate() {
        let image = PackageImage {
            // The controller binary: random bytes the indexer must never download.
            runtime_bytes: Some(RUNTIME_BYTES),
            seed: n as u64,
            ..xpkg_image::from_source(&dir)
        };
        let want = expected_from(&dir, &image);
        xpkg_image::write(
            &layout,
            &format!("{}-{}", want.repo.replace('/', "-"), want.tag),
            &image,
        );
        expected.push(want);
    }
    assert!(expected.len() >= 19, "{} package trees", expected.len());
    for want in &expected {
        let ltag = format!("{}-{}", want.repo.replace('/', "-"), want.tag);
        skopeo_push(&env, &layout, &ltag, &want.repo, &want.tag).await;
    }
    env.index_all().await;

    let failed = env
        .count("select count(*) from index_jobs where state <> 'done'")
        .await;
    assert_eq!(failed, 0, "every job finished");
    for want in &expected {
        let (repo, tag) = (&want.repo, &want.tag);
        let what = format!("{repo}:{tag}");
        /// kind, package type, name, meta, crossplane version, examples, rejection, bytes
        /// downloaded, image bytes, version id
        type Row = (
            String,
            Option<String>,
            Option<String>,
            Option<serde_json::Value>,
            Option<String>,
            i64,
            Option<String>,
            i64,
            i64,
            i64,
        );
        let row: Row = sqlx::query_as(
            "select v.kind, v.package_type, v.meta->>'name', v.meta, v.crossplane_version,
                    (select count(*) from examples e where e.version_id = v.id),
                    v.rejection, v.bytes_downloaded, v.image_bytes, v.id
             from versions v join packages p on p.id = v.package_id
             join tags t on t.version_id = v.id and t.tag = $2
             where p.repository = $1",
        )
        .bind(repo)
        .bind(tag)
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("{what} not stored: {e}"));
        let (kind, package_type, name, meta, crossplane, examples, rejection, down, size, id) = row;
        assert_eq!(kind, "package", "{what} {rejection:?}");
        assert_eq!(
            package_type.as_deref(),
            Some(want.package_type.as_str()),
            "{what}"
        );
        assert_eq!(want.package_type, expected_type(repo), "{what}: test data");
        assert_eq!(name.as_deref(), Some(want.name.as_str()), "{what}");
        let meta = meta.unwrap_or_else(|| panic!("{what}: meta stored"));
        assert_eq!(meta["name"].as_str(), Some(want.name.as_str()), "{what}");
        for (key, value) in &want.annotations {
            assert_eq!(
                meta[*key].as_str(),
                value.as_deref(),
                "{what}: meta field {key}"
            );
        }
        assert_eq!(
            crossplane, want.crossplane_version,
            "{what}: crossplane version"
        );
        assert_eq!(
            meta["crossplane_version"].as_str(),
            want.crossplane_version.as_deref(),
            "{what}"
        );
        assert_eq!(
            meta["depends_on"].as_array().map_or(0, Vec::len),
            want.depends_on,
            "{what}: dependsOn"
        );
        let apis = env.api_types(id).await;
        assert_eq!(apis, want.apis, "{what}: API types");
        assert_eq!(examples as usize, want.examples, "{what}: examples");
        assert!(
            size as u64 > RUNTIME_BYTES,
            "{what}: the image holds the runtime layer ({size} bytes)"
        );
        assert!(
            (down as u64) < size as u64 - RUNTIME_BYTES,
            "{what}: downloaded {down} of {size} bytes: the runtime layer was read"
        );
    }
    let with_meta = expected
        .iter()
        .filter(|e| e.annotations.values().all(Option::is_some) && e.depends_on > 0)
        .count();
    assert!(with_meta > 0, "some versions set every field checked");
    assert!(
        expected.iter().any(|e| e.examples > 50),
        "some versions have many examples"
    );

    // Spot checks against what the sources say.
    let kinds: BTreeSet<String> = testkit::pg::scalars(
        &env.pool,
        "select a.kind from api_types a join versions v on v.id = a.version_id
         join packages p on p.id = v.package_id where p.repository = 'xpkg/provider-kubernetes'",
    )
    .await
    .into_iter()
    .collect();
    assert!(
        kinds.contains("Object") && kinds.contains("ProviderConfig"),
        "{kinds:?}"
    );
    let ec2: i64 = env
        .count(
            "select count(*) from examples e join versions v on v.id = e.version_id
             join packages p on p.id = v.package_id
             where p.repository = 'xpkg/provider-aws-ec2' and e.example_id is not null and not e.supporting",
        )
        .await;
    assert!(
        ec2 > 50,
        "provider-aws-ec2 examples linked by example-id: {ec2}"
    );
    let deprecated = env
        .count(r#"select count(*) from api_types where versions @> '[{"deprecated": true}]'"#)
        .await;
    assert!(deprecated > 0, "some real CRD version is marked deprecated");
    // provider-kubernetes' Object: v1alpha1 is deprecated, v1alpha2 current, so the kind is not.
    let object_deprecated = env
        .count(
            "select count(*) from api_types a join versions v on v.id = a.version_id
             join packages p on p.id = v.package_id
             where p.repository like '%provider-kubernetes' and a.kind = 'Object'
               and a.api_group = 'kubernetes.crossplane.io' and a.deprecated",
        )
        .await;
    assert_eq!(object_deprecated, 0, "Object as a whole is not deprecated");
    let deps: i64 = env
        .count(
            "select count(*) from versions v join packages p on p.id = v.package_id
             where p.repository = 'xpkg/platform-ref-aws' and jsonb_array_length(v.meta->'depends_on') > 0",
        )
        .await;
    assert_eq!(deps, 2, "both platform-ref-aws versions have dependencies");
}

async fn skopeo_push(env: &Env, layout: &OciLayout, ltag: &str, repo: &str, tag: &str) {
    testkit::skopeo::copy(
        &layout.skopeo_ref(ltag),
        &format!("docker://{}/{repo}:{tag}", env.shim),
        &[],
    )
    .await
    .unwrap_or_else(|e| panic!("push {repo}:{tag}: {e}"));
}

#[tokio::test]
async fn docker_v2_labels_only_multi_platform_and_roleless_packages() {
    let env = Env::start().await;
    let dir = xpkg_source::testdata_root().join("provider-nop-main");
    let (_tmp, layout) = scratch_layout();
    let base = xpkg_image::from_source(&dir);
    let variants = [
        (
            "docker",
            PackageImage {
                flavor: Flavor::DockerV2,
                roles: Roles::LabelsOnly,
                ..base.clone()
            },
        ),
        (
            "labels",
            PackageImage {
                roles: Roles::LabelsOnly,
                ..base.clone()
            },
        ),
        (
            "roleless",
            PackageImage {
                roles: Roles::None,
                examples_yaml: None,
                ..base.clone()
            },
        ),
    ];
    for (tag, image) in &variants {
        xpkg_image::write(&layout, tag, image);
        env.push(&layout, tag, "nop/variants", &[]).await;
    }
    // An index of two platforms whose base layer is the same blob.
    let amd = xpkg_image::write(
        &layout,
        "amd",
        &PackageImage {
            runtime_bytes: Some(4096),
            seed: 1,
            ..base.clone()
        },
    );
    let arm = xpkg_image::write(
        &layout,
        "arm",
        &PackageImage {
            runtime_bytes: Some(4096),
            seed: 2,
            ..base.clone()
        },
    );
    let platforms = vec![amd.digest.clone(), arm.digest.clone()];
    let index = tag_index(
        &layout,
        "multi",
        vec![
            amd.clone().with_platform("linux", "amd64"),
            arm.with_platform("linux", "arm64"),
        ],
    );
    env.push(&layout, "multi", "nop/variants", &["--all"]).await;
    env.index_all().await;

    /// tag, kind, package type, index digest, rejection
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = testkit::pg::rows(
        &env.pool,
        "select t.tag, v.kind, v.package_type, v.index_digest, v.rejection
         from tags t join versions v on v.id = t.version_id order by t.tag",
    )
    .await;
    let by_tag: BTreeMap<_, _> = rows.iter().map(|r| (r.0.as_str(), r)).collect();
    for tag in ["docker", "labels", "roleless", "multi"] {
        let r = by_tag
            .get(tag)
            .unwrap_or_else(|| panic!("{tag} indexed: {rows:?}"));
        assert_eq!(r.1, "package", "{tag}: {r:?}");
        assert_eq!(r.2.as_deref(), Some("Provider"), "{tag}");
    }
    assert_eq!(by_tag["multi"].3.as_deref(), Some(index.digest.as_str()));
    // The index names its platform images, which were pushed (and indexed) by digest before it,
    // and their platforms.
    let (children, offered): (Vec<String>, Vec<String>) =
        sqlx::query_as("select children, platforms from versions where manifest_digest = $1")
            .bind(&index.digest)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(children, platforms);
    assert_eq!(offered, ["linux/amd64", "linux/arm64"]);
    assert_eq!(
        env.count(&format!(
            "select count(*) from versions where manifest_digest in ('{}', '{}')",
            platforms[0], platforms[1]
        ))
        .await,
        2,
        "each platform image has its own version row"
    );
    // Five manifests of one package: its objects are stored once.
    let one = shimmer_indexer::xpkg::parse_package(
        &base.package_yaml,
        base.examples_yaml.as_deref(),
        &Default::default(),
    )
    .unwrap();
    let mut distinct: BTreeSet<&str> = one.objects.iter().map(|o| o.digest.as_str()).collect();
    distinct.extend(one.examples.iter().map(|e| e.digest.as_str()));
    assert_eq!(
        env.count("select count(*) from objects").await as usize,
        distinct.len()
    );
    assert_eq!(
        env.count("select count(distinct contents_digest) from versions")
            .await,
        1
    );
}

#[tokio::test]
async fn versions_share_objects_and_reindexing_adds_nothing() {
    let env = Env::start().await;
    let root = xpkg_source::testdata_root();
    let (_tmp, layout) = scratch_layout();
    let mut union = BTreeSet::new();
    let mut total = 0;
    let mut per_version = BTreeMap::new();
    for v in ["v1.2.1", "main"] {
        let image = xpkg_image::from_source(&root.join(format!("provider-kubernetes-{v}")));
        let parsed = shimmer_indexer::xpkg::parse_package(
            &image.package_yaml,
            image.examples_yaml.as_deref(),
            &Default::default(),
        )
        .unwrap();
        let digests: BTreeSet<String> = parsed
            .objects
            .iter()
            .map(|o| o.digest.clone())
            .chain(parsed.examples.iter().map(|e| e.digest.clone()))
            .collect();
        total += digests.len();
        per_version.insert(v, digests.len());
        union.extend(digests);
        xpkg_image::write(&layout, v, &image);
        env.push(&layout, v, "xpkg/provider-kubernetes", &[]).await;
    }
    env.index_all().await;
    let objects = env.count("select count(*) from objects").await as usize;
    assert_eq!(objects, union.len(), "each distinct object stored once");
    // Bodies are sent as canonical JSON text: each stored body is the object its digest names.
    let rows: Vec<(String, String, i32)> = testkit::pg::rows(
        &env.pool,
        "select digest, body::text, size_bytes from objects",
    )
    .await;
    for (digest, body, size) in rows {
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(shimmer_indexer::xpkg::canonical::digest(&value), digest);
        let encoding = shimmer_indexer::xpkg::canonical::to_vec(&value);
        assert_eq!(size as usize, encoding.len(), "{digest}");
    }
    assert!(
        union.len() < total,
        "the two versions share objects ({} of {total} distinct)",
        union.len()
    );

    // Index both again, forced: nothing new anywhere.
    let before_versions = env.count("select count(*) from versions").await;
    let before_apis = env.count("select count(*) from api_types").await;
    for v in ["v1.2.1", "main"] {
        let outcome = shimmer_indexer::pipeline::index(
            &env.pool,
            env.indexer.backend("primary").unwrap(),
            "xpkg/provider-kubernetes",
            v,
            &shimmer_indexer::pipeline::Options {
                force: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(outcome.objects_new, 0, "{v}");
        assert_eq!(
            outcome.objects, per_version[v],
            "{v}: objects counts the version's distinct objects, examples included"
        );
        assert_eq!(outcome.kind, "package");
    }
    assert_eq!(
        env.count("select count(*) from objects").await as usize,
        objects
    );
    assert_eq!(
        env.count("select count(*) from versions").await,
        before_versions
    );
    assert_eq!(
        env.count("select count(*) from api_types").await,
        before_apis
    );
}

#[tokio::test]
async fn only_the_annotated_layers_are_downloaded() {
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let image = PackageImage {
        runtime_bytes: Some(64 * 1024 * 1024),
        ..xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main"))
    };
    xpkg_image::write(&layout, "v1", &image);
    env.push(&layout, "v1", "xpkg/provider-nop", &[]).await;
    env.index_all().await;
    let (downloaded, size): (i64, i64) = testkit::pg::row(
        &env.pool,
        "select bytes_downloaded, image_bytes from versions",
    )
    .await;
    assert!(size > 64 * 1024 * 1024, "{size}");
    assert!(downloaded > 0);
    assert!(
        (downloaded as f64) < 0.02 * size as f64,
        "downloaded {downloaded} of {size} bytes"
    );
}

#[tokio::test]
async fn extensions_manifest_readme_and_icons_are_read() {
    use testkit::oci::{ImageSpec, LayerSpec, tar_gz};
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let package = xpkg_image::write(
        &layout,
        "pkg",
        &xpkg_image::from_source(&xpkg_source::testdata_root().join("provider-nop-main")),
    );
    let layer = |folder: &str, file: &str, body: &[u8]| {
        let mut l = LayerSpec::bytes(tar_gz(&[(&format!("{folder}/{file}"), body)]));
        l.annotations
            .insert("io.crossplane.xpkg".into(), folder.into());
        l
    };
    let extensions = layout.add_image(ImageSpec {
        config: b"{}".to_vec(),
        config_media_type: Some("application/vnd.oci.empty.v1+json".into()),
        layers: vec![
            layer(
                "readme",
                "README.md",
                b"# NOP provider\n\nDoes nothing, reliably.",
            ),
            layer(
                "icons",
                "icon.svg",
                b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
            ),
        ],
        ..Default::default()
    });
    tag_with_extensions(&layout, "v1", package, extensions);
    env.push(&layout, "v1", "xpkg/provider-nop", &["--all"])
        .await;
    env.index_all().await;
    let ext: serde_json::Value = testkit::pg::scalar(&env.pool, "select v.meta->'extensions' from versions v join tags t on t.version_id = v.id where t.tag = 'v1'").await;
    let files = ext
        .as_array()
        .unwrap_or_else(|| panic!("extensions recorded: {ext}"));
    let readme = files
        .iter()
        .find(|f| f["folder"] == "readme")
        .expect("readme");
    assert!(
        readme["text"]
            .as_str()
            .unwrap()
            .contains("Does nothing, reliably.")
    );
    assert!(
        files
            .iter()
            .any(|f| f["folder"] == "icons" && f["path"] == "icons/icon.svg")
    );
}

/// A plain (uncompressed) tar of `files`.
fn plain_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, *body).unwrap();
    }
    builder.into_inner().unwrap()
}

#[tokio::test]
async fn a_package_with_zstd_layers_is_indexed() {
    use testkit::oci::{ImageSpec, LayerSpec};
    let env = Env::start().await;
    let (_tmp, layout) = scratch_layout();
    let dir = xpkg_source::testdata_root().join("provider-nop-main");
    let source = xpkg_image::from_source(&dir);
    let want = expected_from(&dir, &source);
    let zstd = |tar: &[u8]| {
        ruzstd::encoding::compress_to_vec(tar, ruzstd::encoding::CompressionLevel::Fastest)
    };
    let base_tar = plain_tar(&[("package.yaml", &source.package_yaml)]);
    let examples_tar = plain_tar(&[(
        ".up/examples.yaml",
        source.examples_yaml.as_deref().unwrap(),
    )]);
    let layer = |tar: &[u8], role: &str| {
        let mut l = LayerSpec::bytes(zstd(tar));
        l.media_type = Some("application/vnd.oci.image.layer.v1.tar+zstd".into());
        l.annotations
            .insert("io.crossplane.xpkg".into(), role.into());
        l
    };
    let base = layer(&base_tar, "base");
    assert!(
        matches!(&base.source, testkit::oci::LayerSource::Bytes(b) if b.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])),
        "the base layer really is zstd"
    );
    let config = testkit::oci::config_json_with_diff_ids(
        &Default::default(),
        &[
            testkit::skopeo::digest_of(&base_tar),
            testkit::skopeo::digest_of(&examples_tar),
        ],
    );
    let desc = layout.add_image(ImageSpec {
        config,
        layers: vec![base, layer(&examples_tar, "upbound")],
        ..Default::default()
    });
    layout.tag("zstd", &desc);
    env.push(&layout, "zstd", "xpkg/provider-nop", &[]).await;
    env.index_all().await;

    let (kind, package_type, rejection, examples, id): (
        String,
        Option<String>,
        Option<String>,
        i64,
        i64,
    ) = testkit::pg::row(
        &env.pool,
        "select v.kind, v.package_type, v.rejection,
                (select count(*) from examples e where e.version_id = v.id), v.id
         from versions v join tags t on t.version_id = v.id where t.tag = 'zstd'",
    )
    .await;
    assert_eq!(kind, "package", "{rejection:?}");
    assert_eq!(package_type.as_deref(), Some("Provider"));
    let apis = env.api_types(id).await;
    assert_eq!(apis, want.apis);
    assert_eq!(examples as usize, want.examples);
    assert!(want.examples > 0);
}
