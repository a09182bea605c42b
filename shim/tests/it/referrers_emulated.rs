//! The referrers API served by the shim for docker-registry 2.8, which has none (issue 26): the
//! real registry behind a real shim; referrers pushed (two at once, to one subject) get
//! `OCI-Subject` and are listed, filtered by `artifactType`; a subject without referrers has an
//! empty list; a deleted referrer leaves it; the fallback index lives on the backend under the
//! spec's `sha256-<hex>` tag; oras-py attaches an artifact and finds it listed;
//! two shims sharing a database take turns on a subject's index;
//! referrers through an upstream (`?ns=`) read its fallback tag; `referrers = "passthrough"`
//! leaves the backend's 404.

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use testkit::{
    oci::{ImageSpec, LayerSpec, OciLayout, tar_gz},
    oras::{Oras, PushOptions},
    registry::{Registry, RegistryOptions},
    skopeo::{self, digest_of},
};

use crate::harness::{Shim, backend_toml, http, metrics_text, start_upload};
use testkit::http::Sent;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Pushes the subject image through the shim; its manifest digest and size.
async fn push_subject(shim: &Shim, repo: &str) -> (String, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(tmp.path().join("layout"));
    let image = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"the subject")]))],
        ..Default::default()
    });
    layout.tag("v1", &image);
    shim.push(&layout, "v1", &format!("{repo}:v1"), &[]).await;
    let raw = skopeo::inspect_raw(&shim.docker(&format!("{repo}:v1")), &[])
        .await
        .unwrap();
    (digest_of(&raw), raw.len())
}

/// Uploads the empty blob `{}` (the config and layer of an artifact manifest).
async fn push_empty_blob(shim: &Shim, repo: &str) -> String {
    let digest = digest_of(b"{}");
    let loc = start_upload(&shim.url(), repo).await;
    let sep = if loc.contains('?') { '&' } else { '?' };
    let r = http()
        .put(format!("{loc}{sep}digest={digest}"))
        .body("{}")
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    digest
}

/// An artifact manifest of `artifact_type` whose subject is `subject`.
fn referrer(artifact_type: &str, subject: &str, size: usize, empty: &str) -> String {
    json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": EMPTY, "digest": empty, "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": size},
        "annotations": {"org.example.kind": artifact_type},
    })
    .to_string()
}

/// Pushes `manifest` by its digest to `repo` through the shim.
async fn put_manifest(shim: &Shim, repo: &str, manifest: String) -> reqwest::Response {
    let digest = digest_of(manifest.as_bytes());
    http()
        .put(shim.v2(&format!("{repo}/manifests/{digest}")))
        .header(header::CONTENT_TYPE, OCI_MANIFEST)
        .body(manifest)
        .sent()
        .await
}

async fn referrers(shim: &Shim, repo: &str, subject: &str, query: &str) -> reqwest::Response {
    http()
        .get(shim.v2(&format!("{repo}/referrers/{subject}{query}")))
        .header(header::ACCEPT, INDEX)
        .sent()
        .await
}

fn digests(index: &Value) -> Vec<String> {
    let mut d: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_owned())
        .collect();
    d.sort();
    d
}

#[tokio::test]
async fn the_shim_serves_referrers_for_a_registry_without_them() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let repo = "acme/art";
    let (subject, size) = push_subject(&shim, repo).await;
    let empty = push_empty_blob(&shim, repo).await;
    // The registry alone has no referrers API.
    let direct = http()
        .get(format!("{}/v2/{repo}/referrers/{subject}", reg.url()))
        .sent()
        .await;
    assert_eq!(direct.status(), StatusCode::NOT_FOUND);

    // Two referrers pushed at once to one subject: both answered with OCI-Subject, both listed.
    let sig = referrer("application/vnd.example.sig.v1", &subject, size, &empty);
    let sbom = referrer("application/vnd.example.sbom.v1", &subject, size, &empty);
    let (a, b) = tokio::join!(
        put_manifest(&shim, repo, sig.clone()),
        put_manifest(&shim, repo, sbom.clone())
    );
    for r in [&a, &b] {
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()["oci-subject"], subject.as_str());
    }
    let (sig_digest, sbom_digest) = (digest_of(sig.as_bytes()), digest_of(sbom.as_bytes()));
    let r = referrers(&shim, repo, &subject, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[header::CONTENT_TYPE], INDEX);
    assert!(r.headers().get("oci-filters-applied").is_none());
    let index: Value = r.json().await.unwrap();
    let mut both = vec![sig_digest.clone(), sbom_digest.clone()];
    both.sort();
    assert_eq!(digests(&index), both, "{index}");
    let listed = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["digest"] == sig_digest.as_str())
        .unwrap();
    assert_eq!(listed["artifactType"], "application/vnd.example.sig.v1");
    assert_eq!(listed["size"], sig.len());
    assert_eq!(
        listed["annotations"]["org.example.kind"],
        "application/vnd.example.sig.v1"
    );

    // Filtered by artifactType.
    let r = referrers(
        &shim,
        repo,
        &subject,
        "?artifactType=application%2Fvnd.example.sbom.v1",
    )
    .await;
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let index: Value = r.json().await.unwrap();
    assert_eq!(digests(&index), std::slice::from_ref(&sbom_digest));

    // A subject without referrers: an empty index, not a 404.
    let none = digest_of(b"no such subject");
    let r = referrers(&shim, repo, &none, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let index: Value = r.json().await.unwrap();
    assert_eq!(index["manifests"], json!([]));

    // The fallback index is on the backend, under the spec's tag.
    let tag = subject.replacen(':', "-", 1);
    let r = http()
        .get(format!("{}/v2/{repo}/manifests/{tag}", reg.url()))
        .header(header::ACCEPT, INDEX)
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // A deleted referrer leaves the list.
    let r = http()
        .delete(shim.v2(&format!("{repo}/manifests/{sig_digest}")))
        .sent()
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let index: Value = referrers(&shim, repo, &subject, "")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(digests(&index), [sbom_digest]);

    // A subject that is no digest (here one climbing out of the repository) names no fallback
    // tag: the push is the backend's to judge, and nothing else is written.
    let sneaky = referrer(
        "application/vnd.example.sig.v1",
        "sha256:x/../../../acme/victim/manifests/latest",
        size,
        &empty,
    );
    let r = put_manifest(&shim, repo, sneaky).await;
    assert!(r.headers().get("oci-subject").is_none());
    let victim = http()
        .get(format!("{}/v2/acme/victim/manifests/latest", reg.url()))
        .sent()
        .await;
    assert_eq!(victim.status(), StatusCode::NOT_FOUND);

    let metrics = metrics_text(&shim).await;
    let emulated = metrics
        .lines()
        .find_map(|l| l.strip_prefix("shimmer_referrers_emulated_total "))
        .unwrap();
    assert!(emulated.parse::<u64>().unwrap() >= 4, "{metrics}");
}

/// Two shims sharing a database take turns on a subject's fallback index: docker-registry has
/// no conditional PUT, so two updating it at once could each write an index without the other's
/// referrer. A third holder keeps the subject's lease while the two (apart, as two processes
/// are: each has its own in-process locks) push a referrer each; both wait, then update one after
/// the other without a conflict, and both referrers are listed.
#[tokio::test]
async fn shims_sharing_a_database_take_turns_on_a_subjects_index() {
    use std::sync::atomic::Ordering::Relaxed;
    let reg = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let toml = backend_toml("primary", &reg.url(), "");
    let one = Shim::start_with_database(&toml, &db.url).await;
    let two = Shim::start_with_database(&toml, &db.url).await;
    let repo = "acme/turns";
    let (subject, size) = push_subject(&one, repo).await;
    let empty = push_empty_blob(&one, repo).await;
    let (key, third) = (format!("referrers primary {subject}"), "a third shim");
    let minute = std::time::Duration::from_secs(60);
    let leased = shimmer_store::leases::try_lease(&one.pool, &key, third, minute).await;
    assert!(leased.unwrap());
    let sig = referrer("application/vnd.example.sig.v1", &subject, size, &empty);
    let sbom = referrer("application/vnd.example.sbom.v1", &subject, size, &empty);
    let pushes = [(&one, sig.clone()), (&two, sbom.clone())].map(|(shim, manifest)| {
        let url = shim.v2(&format!(
            "{repo}/manifests/{}",
            digest_of(manifest.as_bytes())
        ));
        let put = http().put(url).header(header::CONTENT_TYPE, OCI_MANIFEST);
        tokio::spawn(put.body(manifest).sent())
    });
    let waits = |shim: &Shim| shim.state.metrics.referrers_lease_waits.load(Relaxed);
    testkit::wait_until("both shims wait for the lease", minute, || async {
        waits(&one) > 0 && waits(&two) > 0
    })
    .await;
    assert!(!pushes.iter().any(|p| p.is_finished()), "an update went on");
    shimmer_store::leases::release(&one.pool, &key, third)
        .await
        .unwrap();
    for push in pushes {
        let r = push.await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.headers()["oci-subject"], subject.as_str());
    }
    let conflicts = |shim: &Shim| shim.state.metrics.referrers_conflicts.load(Relaxed);
    assert_eq!(
        (conflicts(&one), conflicts(&two)),
        (0, 0),
        "the updates took turns"
    );
    let index: Value = referrers(&two, repo, &subject, "")
        .await
        .json()
        .await
        .unwrap();
    let mut both = vec![digest_of(sig.as_bytes()), digest_of(sbom.as_bytes())];
    both.sort();
    assert_eq!(digests(&index), both, "{index}");
    // A holder that died: its lease runs out and another takes it over.
    let lease =
        |holder: &'static str, ttl| shimmer_store::leases::try_lease(&one.pool, "k", holder, ttl);
    assert!(lease("died", std::time::Duration::ZERO).await.unwrap());
    assert!(lease("alive", minute).await.unwrap());
    assert!(!lease("died", minute).await.unwrap());
}

/// oras-py attaches an artifact to an image (a manifest with a `subject`) through the shim: the
/// push is answered with `OCI-Subject`, and the referrers API lists it.
#[tokio::test]
async fn oras_py_attaches_and_the_referrers_api_finds_it() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &reg.url(), "")).await;
    let (subject, size) = push_subject(&shim, "acme/app").await;
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("sbom.json"), br#"{"packages":[]}"#).unwrap();
    std::fs::write(tmp.path().join("config.json"), b"{}").unwrap();
    let pushed = Oras::new(&shim.host_port)
        .push(
            tmp.path(),
            "acme/app:sbom",
            &["sbom.json:application/spdx+json"],
            PushOptions {
                config: Some("config.json:application/vnd.example.sbom.v1"),
                subject: Some((OCI_MANIFEST, &subject, size)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(pushed.status, 201);
    assert_eq!(pushed.oci_subject.as_deref(), Some(subject.as_str()));
    let r = referrers(
        &shim,
        "acme/app",
        &subject,
        "?artifactType=application%2Fvnd.example.sbom.v1",
    )
    .await;
    let index: Value = r.json().await.unwrap();
    assert_eq!(digests(&index), [pushed.digest.unwrap()], "{index}");
}

/// Through the pull-through cache (`?ns=`), an upstream without the API: the shim reads the
/// upstream's fallback tag, so `referrers` works there too.
#[tokio::test]
async fn referrers_through_an_upstream_read_its_fallback_tag() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&format!(
        "{}[[upstream]]\nname = \"up\"\nhosts = [\"up.example\"]\nurl = \"{}\"\n",
        backend_toml("primary", &reg.url(), ""),
        reg.url()
    ))
    .await;
    // The referrer pushed to the registry (through the shim's backend, which keeps the
    // fallback index there) ...
    let (subject, size) = push_subject(&shim, "acme/up").await;
    let empty = push_empty_blob(&shim, "acme/up").await;
    let manifest = referrer("application/vnd.example.sig.v1", &subject, size, &empty);
    let digest = digest_of(manifest.as_bytes());
    let r = put_manifest(&shim, "acme/up", manifest).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // ... is found through the same registry as an upstream.
    let r = referrers(&shim, "acme/up", &subject, "?ns=up.example").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["oci-namespace"], "up.example");
    let index: Value = r.json().await.unwrap();
    assert_eq!(digests(&index), [digest]);
}

#[tokio::test]
async fn passthrough_leaves_the_backends_answer() {
    let reg = Registry::start(RegistryOptions::default()).await;
    let toml = format!(
        "[[backend]]\nname = \"primary\"\nurl = \"{}\"\nreferrers = \"passthrough\"\n\n\
         [[route]]\nprefix = \"\"\nbackend = \"primary\"\n",
        reg.url()
    );
    let shim = Shim::start(&toml).await;
    let (subject, size) = push_subject(&shim, "acme/plain").await;
    let empty = push_empty_blob(&shim, "acme/plain").await;
    let manifest = referrer("application/vnd.example.sig.v1", &subject, size, &empty);
    let r = put_manifest(&shim, "acme/plain", manifest).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().get("oci-subject").is_none());
    let r = referrers(&shim, "acme/plain", &subject, "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
