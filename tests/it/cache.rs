//! The pull-through cache through the binary: `preload`, `cache ls`, `cache export` and
//! `cache import`, an offline pull, and a disk that fills up mid-download.

use crate::helpers::{copy_dir, http10_get, migrate, push, scratch_layout, shimmer, write_config};
use testkit::registry::{Registry, RegistryOptions};

/// Preload a list, carry the cache to another site (`cache export` / `import`), and pull
/// everything in the list there with containerd, offline, the upstream stopped.
#[tokio::test]
async fn preload_export_import_then_pull_offline() {
    use std::time::Duration;
    use testkit::{
        containerd::{ConnectionCounter, Containerd},
        oci::{ImageSpec, IndexSpec, LayerSpec, tar_gz},
    };

    let mut upstream = Registry::start(RegistryOptions::default()).await;
    let (dir, layout) = scratch_layout();
    let single = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"single")]))],
        ..Default::default()
    });
    layout.tag("single", &single);
    let amd = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"amd64")]))],
        ..Default::default()
    });
    let arm = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(tar_gz(&[("f", b"arm64")]))],
        ..Default::default()
    });
    let index = layout.add_index(IndexSpec {
        manifests: vec![
            amd.clone().with_platform("linux", "amd64"),
            arm.clone().with_platform("linux", "arm64"),
        ],
        ..Default::default()
    });
    layout.tag("multi", &index);
    for (tag, repo, extra) in [
        ("single", "team/one:v1", &[][..]),
        ("multi", "team/two:v1", &["--all"][..]),
    ] {
        push(&layout, tag, &upstream, repo, extra).await;
    }
    let list = dir.path().join("images.txt");
    std::fs::write(
        &list,
        "# what the cluster needs\nregistry-a.test/team/one:v1\nregistry-a.test/team/two:v1\n",
    )
    .unwrap();

    let upstream_url = upstream.url();
    let site = |name: &str, db: &str, extra: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[server]\nlisten = \"127.0.0.1:{}\"\n[database]\nurl = \"{db}\"\n[cache]\npath = \"{}\"\n{extra}\n[[upstream]]\nname = \"a\"\nhosts = [\"registry-a.test\"]\nurl = \"{}\"\n",
                testkit::free_port(),
                dir.path().join(format!("{name}-cache")).display(),
                upstream_url
            ),
        )
        .unwrap();
        path
    };
    let online_db = testkit::pg::fresh_database().await;
    let online = site("online", &online_db.url, "");
    let run = |args: &[&str], config: &std::path::Path| {
        let out = shimmer()
            .args(args)
            .arg("--config")
            .arg(config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // What each image is made of, by digest and size, from the layout that was pushed.
    let parts = |manifests: &[&testkit::oci::Descriptor]| {
        let mut ms = std::collections::BTreeMap::new();
        let mut blobs = std::collections::BTreeMap::new();
        for m in manifests {
            let bytes = layout.read_blob(&m.digest);
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            ms.insert(m.digest.clone(), bytes.len() as u64);
            for d in
                std::iter::once(&v["config"]).chain(v["layers"].as_array().into_iter().flatten())
            {
                if let Some(digest) = d["digest"].as_str() {
                    blobs.insert(digest.to_owned(), layout.read_blob(digest).len() as u64);
                }
            }
        }
        (ms, blobs)
    };
    let expect = |manifests: &[&testkit::oci::Descriptor]| {
        let (ms, blobs) = parts(manifests);
        let bytes: u64 = ms.values().sum::<u64>() + blobs.values().sum::<u64>();
        (ms.len() as u64, blobs.len() as u64, bytes)
    };
    let ls_of = |out: &str| -> Option<(u64, u64, u64)> {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some("a"))?;
        let n: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap())
            .collect();
        Some((n[0], n[1], n[2]))
    };

    let progress = run(&["preload", list.to_str().unwrap()], &online);
    assert!(progress.contains("[2/2]"), "{progress}");
    // Every entry is recorded before the preload command exits, exactly once.
    let ls = run(&["cache", "ls"], &online);
    assert_eq!(
        ls_of(&ls),
        Some(expect(&[&single, &index, &amd, &arm])),
        "(manifests, blobs, bytes): {ls}"
    );
    let export = dir.path().join("export");
    run(&["cache", "export", export.to_str().unwrap()], &online);

    // A platform variant is honoured: arm64 without a variant is v8.
    let arm_db = testkit::pg::fresh_database().await;
    let arm_site = site("arm", &arm_db.url, "");
    run(
        &[
            "preload",
            "--platform",
            "linux/arm64/v8",
            list.to_str().unwrap(),
        ],
        &arm_site,
    );
    assert_eq!(
        ls_of(&run(&["cache", "ls"], &arm_site)),
        Some(expect(&[&single, &index, &arm])),
        "only the arm64 child of the index"
    );

    upstream.stop().await;
    let offline_db = testkit::pg::fresh_database().await;
    let offline = site("offline", &offline_db.url, "offline = true");
    // An export with one corrupted blob is refused whole, naming the file.
    let bad = dir.path().join("export-bad");
    copy_dir(&export, &bad);
    let (_, blobs) = parts(&[&single]);
    let victim = blobs.keys().next().unwrap().trim_start_matches("sha256:");
    let victim_path = bad.join("cache/a/blobs/sha256").join(victim);
    let mut bytes = std::fs::read(&victim_path).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&victim_path, bytes).unwrap();
    let out = shimmer()
        .args(["cache", "import", bad.to_str().unwrap(), "--config"])
        .arg(&offline)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a corrupted import must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("do not match their digest") && err.contains(victim),
        "{err}"
    );
    assert_eq!(
        ls_of(&run(&["cache", "ls"], &offline)),
        None,
        "nothing imported"
    );
    assert!(!dir.path().join("offline-cache/a").exists());

    run(&["cache", "import", export.to_str().unwrap()], &offline);
    assert_eq!(
        ls_of(&run(&["cache", "ls"], &offline)),
        Some(expect(&[&single, &index, &amd, &arm])),
        "the import holds what was exported"
    );
    let listen = std::fs::read_to_string(&offline).unwrap();
    let addr = listen
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("listen = ")
        .trim_matches('"')
        .to_owned();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_shimmer"))
        .args(["shim", "--config"])
        .arg(&offline)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let health = format!("http://{addr}/healthz");
    testkit::wait_until("the offline shim answers", Duration::from_secs(20), || {
        let health = health.clone();
        async move {
            tokio::net::TcpStream::connect(
                health
                    .trim_start_matches("http://")
                    .trim_end_matches("/healthz"),
            )
            .await
            .is_ok()
        }
    })
    .await;
    let fallback = ConnectionCounter::start().await;
    let ctrd = Containerd::start().await;
    ctrd.mirror(
        "registry-a.test",
        &format!("http://{addr}"),
        &fallback.url(),
    );
    ctrd.fetch("registry-a.test/team/one:v1", &[])
        .await
        .expect("single image offline");
    ctrd.fetch("registry-a.test/team/two:v1", &["--all-platforms"])
        .await
        .expect("index offline");
    assert_eq!(fallback.connections(), 0);
    server.start_kill().unwrap();
}

/// A cache whose disk fills up in the middle of a download: the shim runs with a file size
/// limit of 1 MiB (`ulimit -f`, SIGXFSZ ignored, so writes past it fail as on a full disk),
/// and a 4 MiB blob still reaches the client whole, the rest straight from the upstream.
#[tokio::test]
async fn a_cache_disk_filling_mid_download_still_serves_the_whole_blob() {
    use std::time::Duration;
    use testkit::oci::{ImageSpec, LayerSpec};

    let upstream = Registry::start(RegistryOptions::default()).await;
    let (dir, layout) = scratch_layout();
    let noise = testkit::oci::incompressible(0x5eed, 4 << 20);
    let image = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::bytes(testkit::oci::tar_gz(&[("f", &noise)]))],
        ..Default::default()
    });
    layout.tag("v1", &image);
    push(&layout, "v1", &upstream, "team/big:v1", &[]).await;
    let manifest: serde_json::Value =
        serde_json::from_slice(&layout.read_blob(&image.digest)).unwrap();
    let blob = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let data = layout.read_blob(&blob);

    let db = testkit::pg::fresh_database().await;
    let addr = format!("127.0.0.1:{}", testkit::free_port());
    let cache = dir.path().join("cache");
    let config = write_config(
        &dir,
        &format!(
            "[server]\nlisten = \"{addr}\"\n[database]\nurl = \"{}\"\n[cache]\npath = \"{}\"\n[[upstream]]\nname = \"a\"\nhosts = [\"registry-a.test\"]\nurl = \"{}\"\n",
            db.url,
            cache.display(),
            upstream.url()
        ),
    );
    assert!(migrate(&config).success());
    let _shim = tokio::process::Command::new("bash")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1024; exec \"$0\" shim --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_shimmer"))
        .arg(&config)
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    testkit::wait_until("the shim listens", Duration::from_secs(20), || async {
        tokio::net::TcpStream::connect(&addr).await.is_ok()
    })
    .await;

    let (head, body) = http10_get(
        &addr,
        &format!("/v2/team/big/blobs/{blob}?ns=registry-a.test"),
    )
    .await;
    let status = head.lines().next().unwrap_or_default();
    assert!(
        status.contains(" 200 "),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(body.len(), data.len(), "the transfer was cut short");
    assert!(body == data, "the client got other bytes");
    let kept = cache
        .join("a/blobs/sha256")
        .join(blob.trim_start_matches("sha256:"));
    assert!(!kept.exists(), "a blob the disk could not hold was kept");
}
