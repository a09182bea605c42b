//! The `shimmer` binary itself: configuration errors, `migrate`, `index --json`.

use std::process::Command;

use testkit::{
    oci::OciLayout,
    registry::{Registry, RegistryOptions},
    skopeo, xpkg_image, xpkg_source,
};

fn shimmer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shimmer"));
    c.env_remove("RUST_LOG");
    c
}

/// A temporary directory with an empty OCI layout in `layout/`.
fn scratch_layout() -> (tempfile::TempDir, OciLayout) {
    let dir = tempfile::tempdir().unwrap();
    let layout = OciLayout::create(dir.path().join("layout"));
    (dir, layout)
}

/// Copies the layout's `tag` to `repo_and_tag` on `registry`.
async fn push(
    layout: &OciLayout,
    tag: &str,
    registry: &Registry,
    repo_and_tag: &str,
    extra: &[&str],
) {
    skopeo::copy(
        &layout.skopeo_ref(tag),
        &format!("docker://{}/{repo_and_tag}", registry.host_port()),
        extra,
    )
    .await
    .unwrap();
}

/// Writes `toml` to `dir/shimmer.toml` and returns its path.
fn write_config(dir: &tempfile::TempDir, toml: &str) -> std::path::PathBuf {
    let path = dir.path().join("shimmer.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// `[[backend]]` "primary" at `url` and a `[[route]]` sending `prefix` to it.
fn primary_backend(url: &str, prefix: &str) -> String {
    format!(
        "[[backend]]\nname = \"primary\"\nurl = \"{url}\"\n[[route]]\nprefix = \"{prefix}\"\nbackend = \"primary\"\n"
    )
}

/// `shimmer migrate --config <config>`.
fn migrate(config: &std::path::Path) -> std::process::ExitStatus {
    shimmer()
        .args(["migrate", "--config"])
        .arg(config)
        .status()
        .unwrap()
}

/// `shimmer index <reference> --json --config <config>`.
fn index_json(reference: &str, config: &std::path::Path) -> std::process::Output {
    shimmer()
        .args(["index", reference, "--json", "--config"])
        .arg(config)
        .output()
        .unwrap()
}

/// `shimmer <command> --config <config>` in the background, killed when dropped.
fn spawn(command: &str, config: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_shimmer"))
        .args([command, "--config"])
        .arg(config)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[test]
fn invalid_configuration_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad_limit = "[server]\nlisten = \"127.0.0.1:0\"\nmax_manifest_bytes = -1\n";
    let bad_filter = "[log]\nfilter = \"shimmer=loud\"\n";
    // A log filter that does not parse, from the file or from RUST_LOG, used to fall back to
    // `info` silently.
    /// (configuration, environment, what the message must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 4] = [
        (bad_limit, &[], "max_manifest_bytes"),
        (
            bad_limit,
            &[
                ("SHIMMER_SERVER__MAX_MANIFEST_BYTES", "10"),
                ("SHIMMER_ROUTE", r#"[{prefix="", backend="missing"}]"#),
            ],
            "route[0].backend",
        ),
        (bad_filter, &[], "`log.filter`"),
        (bad_filter, &[("RUST_LOG", "shimmer=quiet")], "RUST_LOG"),
    ];
    for (toml, env, named) in cases {
        let path = write_config(&dir, toml);
        let out = shimmer()
            .args(["migrate", "--config"])
            .arg(&path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{named}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{err}");
    }
}

#[tokio::test]
async fn index_prints_one_json_object() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let (dir, layout) = scratch_layout();
    let source = xpkg_source::testdata_root().join("function-patch-and-transform-v0.10.8");
    xpkg_image::write(&layout, "v0.10.8", &xpkg_image::from_source(&source));
    push(&layout, "v0.10.8", &registry, "fn/pat:v0.10.8", &[]).await;
    let config = write_config(
        &dir,
        &format!(
            "[database]\nurl = \"{}\"\n{}",
            db.url,
            primary_backend(&registry.url(), "fn/")
        ),
    );
    let run = |reference: &str| {
        let out = index_json(reference, &config);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let v = run("fn/pat:v0.10.8");
    assert_eq!(v["package_type"], "Function");
    assert_eq!(v["name"], "function-patch-and-transform");
    let apis = v["apis"].as_array().unwrap();
    assert!(!apis.is_empty());
    assert!(
        apis.iter()
            .all(|a| a["group"].is_string() && a["kind"].is_string() && a["versions"].is_array())
    );
    assert!(v["objects"].as_u64().unwrap() >= 2);
    // `objects` counts the version's distinct objects, examples included; a first run stores
    // them all.
    assert_eq!(v["objects_new"], v["objects"]);
    assert!(v["objects"].as_u64().unwrap() > v["examples"].as_u64().unwrap());
    assert!(v["bytes_downloaded"].as_u64().unwrap() > 0);
    assert!(v["image_bytes"].as_u64().unwrap() > 0);
    // Again: the same objects, none new.
    let again = run(&format!(
        "127.0.0.1:5000/fn/pat@{}",
        v["manifest_digest"].as_str().unwrap()
    ));
    assert_eq!(again["objects_new"], 0);
    assert_eq!(again["objects"], v["objects"]);
    assert_eq!(again["package_type"], "Function");
}

#[tokio::test]
async fn index_json_of_a_non_package_has_a_null_package_type() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let (dir, layout) = scratch_layout();
    let layer = testkit::oci::tar_gz(&[("app", b"#!/bin/sh\necho hi\n")]);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/app"]},
        "rootfs": {"type": "layers", "diff_ids": [testkit::oci::diff_id(&layer)]},
    }))
    .unwrap();
    let image = layout.add_image(testkit::oci::ImageSpec {
        config,
        layers: vec![testkit::oci::LayerSpec::bytes(layer)],
        ..Default::default()
    });
    layout.tag("v1", &image);
    push(&layout, "v1", &registry, "apps/web:v1", &[]).await;
    let config = write_config(
        &dir,
        &format!(
            "[database]\nurl = \"{}\"\n{}",
            db.url,
            primary_backend(&registry.url(), "")
        ),
    );
    let out = index_json("apps/web:v1", &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let object = v.as_object().unwrap();
    assert!(
        object.contains_key("package_type") && v["package_type"].is_null(),
        "package_type is present and null: {v}"
    );
    assert_eq!(v["kind"], "image");
    assert!(v["name"].is_null(), "{v}");
    assert_eq!(v["apis"], serde_json::json!([]));
    assert_eq!(
        (v["objects"].as_u64(), v["objects_new"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(v["manifest_digest"], image.digest.as_str());
    assert!(v["image_bytes"].as_u64().unwrap() > 0, "{v}");
}

/// A `shimmer indexer` process SIGKILLed in the middle of a job: after its lease runs out a
/// second process takes the job over and finishes it, and the package is indexed once. The
/// backend is a real registry behind a real nginx that reads it at 128 KiB/s, so the job is
/// still downloading when the first worker dies.
#[tokio::test]
async fn a_killed_indexer_process_leaves_its_job_to_another() {
    use std::time::Duration;

    let registry = Registry::start(RegistryOptions::default()).await;
    let slow = testkit::nginx::Nginx::start(&format!(
        "location / {{ proxy_pass {}; proxy_set_header Host $http_host; proxy_limit_rate 128k; }}",
        registry.url()
    ))
    .await;
    let db = testkit::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    // A real package whose package.yaml carries 2 MiB of incompressible comments.
    let source = xpkg_source::testdata_root().join("provider-nop-main");
    let mut image = xpkg_image::from_source(&source);
    let mut x = 0x9e37_79b9_u32;
    let mut padding = String::from("# ");
    while padding.len() < 2 * 1024 * 1024 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        padding.push(char::from(b'a' + (x % 26) as u8));
        if padding.len() % 100 == 0 {
            padding.push_str("\n# ");
        }
    }
    image
        .package_yaml
        .extend_from_slice(format!("\n{padding}\n").as_bytes());
    let layout = OciLayout::create(dir.path().join("layout"));
    let desc = xpkg_image::write(&layout, "v1", &image);
    push(&layout, "v1", &registry, "xpkg/provider-nop:v1", &[]).await;
    let config = write_config(
        &dir,
        &format!(
            "[database]\nurl = \"{}\"\n[indexer]\nworkers = 1\nlease = \"2s\"\npoll_interval = \"200ms\"\nretry_base = \"1s\"\n{}",
            db.url,
            primary_backend(&slow.url(), "")
        ),
    );
    assert!(migrate(&config).success());
    let pool = shimmer_store::PgPool::connect(&db.url).await.unwrap();
    shimmer_store::jobs::enqueue(
        &pool,
        &shimmer_store::jobs::NewJob {
            backend: "primary".into(),
            repository: "xpkg/provider-nop".into(),
            reference: "v1".into(),
            digest: desc.digest.clone(),
            media_type: None,
            source: shimmer_store::jobs::JobSource::Push,
            at: std::time::SystemTime::now(),
        },
    )
    .await
    .unwrap();
    let state = || async {
        sqlx::query_as::<_, (String, i32)>("select state, attempts from index_jobs")
            .fetch_one(&pool)
            .await
            .unwrap()
    };

    let mut first = spawn("indexer", &config);
    testkit::wait_until(
        "the first worker runs the job",
        Duration::from_secs(20),
        || async { state().await.0 == "running" },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.start_kill().unwrap(); // SIGKILL: no chance to release the job
    first.wait().await.unwrap();
    assert_eq!(
        state().await,
        ("running".to_owned(), 1),
        "the dead worker still holds its lease"
    );
    let versions = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from versions")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(versions().await, 0, "killed before it stored anything");

    let mut second = spawn("indexer", &config);
    testkit::wait_until(
        "the second worker finishes the job",
        Duration::from_secs(60),
        || async { state().await.0 == "done" },
    )
    .await;
    second.start_kill().unwrap();
    assert_eq!(state().await, ("done".to_owned(), 2));
    assert_eq!(versions().await, 1, "indexed once");
    let kind: String = sqlx::query_scalar("select kind from versions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kind, "package");
}

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

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
/// `shimmer shim` running from a configuration that listens on port 0, with the address it
/// printed. Its stdout stays open (held here) for as long as the caller keeps this.
struct ShimProcess {
    child: tokio::process::Child,
    /// `host:port`
    addr: String,
    stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl ShimProcess {
    /// Writes a configuration in `dir` (`[server]` on port 0 with `extra` after it, the database
    /// at `db_url` migrated, one backend at `registry_url` for every name) and starts on it.
    async fn configured(
        dir: &tempfile::TempDir,
        extra: &str,
        db_url: &str,
        registry_url: &str,
        logs: bool,
    ) -> ShimProcess {
        let config = write_config(
            dir,
            &format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n{extra}[database]\nurl = \"{db_url}\"\n{}",
                primary_backend(registry_url, "")
            ),
        );
        assert!(migrate(&config).success());
        Self::start(&config, logs).await
    }

    /// Starts it and waits for the address line; with `logs`, its stderr is piped for the caller
    /// to read (`child.stderr`), else inherited.
    async fn start(config: &std::path::Path, logs: bool) -> ShimProcess {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_shimmer"))
            .args(["shim", "--config"])
            .arg(config)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::piped())
            .stderr(if logs {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::inherit()
            })
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            while let Some(line) = stdout.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("shimmer: OCI endpoint at http://") {
                    return rest.trim_end_matches("/v2/").to_owned();
                }
            }
            panic!("shimmer shim exited without printing its address");
        })
        .await
        .expect("shimmer shim prints its address");
        ShimProcess {
            child,
            addr,
            stdout,
        }
    }
}

/// `shimmer shim` on SIGTERM: stops accepting connections at once, finishes the blob download
/// in flight (all of it, the right bytes), then exits 0; afterwards nothing listens.
#[tokio::test]
async fn sigterm_drains_a_download_in_flight_then_exits_zero() {
    use std::time::Duration;
    use testkit::oci::{ImageSpec, LayerSpec};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let (dir, layout) = scratch_layout();
    let image = layout.add_image(ImageSpec {
        layers: vec![LayerSpec::random_gzip(64 * 1024 * 1024, 11)],
        ..Default::default()
    });
    layout.tag("big", &image);
    let manifest: serde_json::Value =
        serde_json::from_slice(&layout.read_blob(&image.digest)).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let size = manifest["layers"][0]["size"].as_u64().unwrap();
    push(&layout, "big", &registry, "acme/big:v1", &[]).await;
    // The drain may take far longer than this test waits, so an exit within the wait below is
    // the drain finishing, not timing out.
    // It prints the address it bound (port 0: no race for a free port).
    let ShimProcess {
        child: mut server,
        addr,
        stdout: _stdout,
    } = ShimProcess::configured(
        &dir,
        "shutdown_timeout = \"120s\"\nthreads = 3\n",
        &db.url,
        &registry.url(),
        false,
    )
    .await;

    // A client that reads slowly: the first 64 KiB of a 64 MiB blob, then nothing for a while.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(
        format!("GET /v2/acme/big/blobs/{layer} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let head_end = loop {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed before the response head");
        received.extend_from_slice(&buf[..n]);
        if let Some(i) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains(&format!("content-length: {size}\r\n")),
        "{head}"
    );
    let mut body = received.split_off(head_end);

    let pid = server.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    testkit::wait_until(
        "the shim refuses new connections",
        Duration::from_secs(20),
        || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(&addr).await.is_err() }
        },
    )
    .await;
    assert!(
        server.try_wait().unwrap().is_none(),
        "the shim exited with a download in flight"
    );

    while (body.len() as u64) < size {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(
            n > 0,
            "the download was cut off at {} of {size} bytes",
            body.len()
        );
        body.extend_from_slice(&buf[..n]);
    }
    assert_eq!(body.len() as u64, size);
    assert_eq!(skopeo::digest_of(&body), layer);
    drop(conn);

    let status = tokio::time::timeout(Duration::from_secs(60), server.wait())
        .await
        .expect("the shim exits once the download is done")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        tokio::net::TcpStream::connect(&addr).await.is_err(),
        "something still listens on {addr}"
    );
}

#[tokio::test]
async fn reconcile_with_backend_walks_only_that_backend() {
    let primary = Registry::start(RegistryOptions::default()).await;
    let other = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let (dir, layout) = scratch_layout();
    let source = xpkg_source::testdata_root().join("provider-nop-main");
    xpkg_image::write(&layout, "v1", &xpkg_image::from_source(&source));
    // Pushed around the shim, straight to each backend: only reconcile can find them.
    for (registry, repo) in [(&primary, "a/nop"), (&other, "b/nop")] {
        push(&layout, "v1", registry, &format!("{repo}:v1"), &[]).await;
    }
    let config = write_config(
        &dir,
        &format!(
            "[database]\nurl = \"{}\"\n[[backend]]\nname = \"primary\"\nurl = \"{}\"\n[[backend]]\nname = \"other\"\nurl = \"{}\"\n[[route]]\nprefix = \"a/\"\nbackend = \"primary\"\n[[route]]\nprefix = \"b/\"\nbackend = \"other\"\n",
            db.url,
            primary.url(),
            other.url()
        ),
    );
    let reconcile = |backend: &str| {
        shimmer()
            .args(["reconcile", "--backend", backend, "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = reconcile("other");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        "other: 1 repositories, 1 tags, 1 manifests queued, 0 repositories failed\n"
    );
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let jobs: Vec<(String, String, String, String)> =
        sqlx::query_as("select backend, repository, reference, source from index_jobs")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        jobs,
        vec![(
            "other".to_owned(),
            "b/nop".to_owned(),
            "v1".to_owned(),
            "reconcile".to_owned()
        )]
    );
    // Again: nothing new to queue.
    let again = reconcile("other");
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 manifests queued"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let unknown = reconcile("nosuch");
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no backend named \"nosuch\""),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}

#[tokio::test]
async fn one_off_commands_leave_the_schema_to_migrate_when_migrate_on_start_is_off() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let config = |migrate: bool| {
        write_config(
            &dir,
            &format!(
                "[database]\nurl = \"{}\"\nmigrate_on_start = {migrate}\n{}",
                db.url,
                primary_backend(&registry.url(), "")
            ),
        )
    };
    let schema = || async {
        let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
        let tables: i64 = sqlx::query_scalar(
            "select count(*) from information_schema.tables where table_schema = 'public'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        tables
    };
    // Off (a deployment that runs `shimmer migrate` as its own step): reconcile of the (empty)
    // backend runs and touches no schema.
    let out = shimmer()
        .args(["reconcile", "--config"])
        .arg(config(false))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(schema().await, 0, "no table was created");
    // On (the default): the same command migrates first.
    let out = shimmer()
        .args(["reconcile", "--config"])
        .arg(config(true))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(schema().await > 5);
}

/// `GET path` over HTTP/1.0 to `addr`: the answer's head (status line first) and its body (the
/// connection closes after the answer, so the body is whatever arrived before it did).
async fn http10_get(addr: &str, path: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = conn.read_to_end(&mut raw).await;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an answer head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    (head, raw[split + 4..].to_vec())
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

/// With JSON logs at debug, every request's events sit in one `shim` span naming its method,
/// path and the `x-request-id` its answer carries: registry requests and the operational
/// endpoints alike, so one id finds a request in the logs whichever it was.
#[tokio::test]
async fn every_request_logs_in_a_span_with_its_request_id() {
    use std::time::Duration;
    use tokio::io::AsyncBufReadExt;

    let registry = Registry::start(RegistryOptions::default()).await;
    let db = testkit::pg::fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let ShimProcess {
        child: mut server,
        addr,
        stdout: _stdout,
    } = ShimProcess::configured(
        &dir,
        "[log]\nformat = \"json\"\nfilter = \"shimmer_shim=debug,tower_http=debug\"\n",
        &db.url,
        &registry.url(),
        true,
    )
    .await;

    let mut asked = Vec::new();
    for path in ["/v2/", "/healthz", "/v2/acme/none/manifests/v1", "/metrics"] {
        let (head, _) = http10_get(&addr, path).await;
        let id = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-request-id")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("{path}: no x-request-id in {head}"));
        asked.push((path, id));
    }

    // Each request's start and finish, at debug, in its span.
    let mut logs = tokio::io::BufReader::new(server.stderr.take().unwrap()).lines();
    let mut seen: Vec<(String, String, String)> = Vec::new();
    let wanted = |seen: &[(String, String, String)]| {
        asked
            .iter()
            .all(|(path, id)| seen.iter().filter(|(p, i, _)| p == path && i == id).count() >= 2)
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = logs.next_line().await.unwrap() {
            let v: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
            let span = &v["span"];
            if span["name"] == "shim" {
                let field = |k: &str| span[k].as_str().unwrap_or_default().to_owned();
                seen.push((
                    field("path"),
                    field("request_id"),
                    v["fields"]["message"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                ));
                if wanted(&seen) {
                    break;
                }
            }
        }
    })
    .await;
    for (path, id) in &asked {
        let messages: Vec<&str> = seen
            .iter()
            .filter(|(p, i, _)| p == path && i == id)
            .map(|(_, _, m)| m.as_str())
            .collect();
        assert!(
            messages.contains(&"started processing request")
                && messages.contains(&"finished processing request"),
            "{path} ({id}): {messages:?} in {seen:#?}"
        );
    }
}
