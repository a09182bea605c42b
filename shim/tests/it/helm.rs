//! The real `helm` (3.17) pushing and pulling charts through the shim: OCI charts as helm
//! stores them, version resolution from the tag list, and logins to Basic and token backends.

use testkit::{
    helm::{Helm, digest_in},
    registry::{Registry, RegistryOptions},
    skopeo,
};

use crate::harness::{AuthBackends, Shim, backend_toml, docker, wait_for_jobs};

#[tokio::test]
async fn helm_pushes_pulls_and_resolves_chart_versions_through_the_shim() {
    let registry = Registry::start(RegistryOptions::default()).await;
    let shim = Shim::start(&backend_toml("primary", &registry.url(), "")).await;
    let helm = Helm::new();
    let oci = format!("oci://{}/charts", shim.host_port);

    let mut digests = Vec::new();
    for version in ["0.1.0", "0.2.0", "0.10.0-rc.1"] {
        let chart = helm.package("podinfo", version).await;
        let out = helm
            .run(&["push", chart.to_str().unwrap(), &oci, "--plain-http"])
            .await
            .unwrap();
        assert!(
            out.contains(&format!(
                "Pushed: {}/charts/podinfo:{version}",
                shim.host_port
            )),
            "{out}"
        );
        // The manifest the backend stores is the one helm pushed through the shim.
        let direct = skopeo::inspect_raw(
            &docker(&registry.host_port(), &format!("charts/podinfo:{version}")),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(digest_in(&out), Some(skopeo::digest_of(&direct).as_str()));
        let manifest: serde_json::Value = serde_json::from_slice(&direct).unwrap();
        assert_eq!(
            manifest["config"]["mediaType"],
            "application/vnd.cncf.helm.config.v1+json"
        );
        digests.push(skopeo::digest_of(&direct));
    }

    // Pulled back through the shim: the very archive pushed.
    let pulled = helm.dir().join("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    let out = helm
        .run(&[
            "pull",
            &format!("{oci}/podinfo"),
            "--version",
            "0.2.0",
            "--plain-http",
            "-d",
            pulled.to_str().unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(digest_in(&out), Some(digests[1].as_str()), "{out}");
    assert!(
        std::fs::read(pulled.join("podinfo-0.2.0.tgz")).unwrap()
            == std::fs::read(helm.dir().join("podinfo-0.2.0.tgz")).unwrap(),
        "the pulled chart differs from the pushed one"
    );

    // No version: helm lists the tags through the shim and takes the highest release (the
    // pre-release is skipped), and a range is resolved the same way.
    let shown = helm
        .run(&["show", "chart", &format!("{oci}/podinfo"), "--plain-http"])
        .await
        .unwrap();
    assert!(shown.contains("\nversion: 0.2.0\n"), "{shown}");
    let shown = helm
        .run(&[
            "show",
            "chart",
            &format!("{oci}/podinfo"),
            "--version",
            ">=0.10.0-0",
            "--plain-http",
        ])
        .await
        .unwrap();
    assert!(shown.contains("\nversion: 0.10.0-rc.1\n"), "{shown}");

    // One job a push, and the pulls of digests the shim has seen add none.
    let jobs = wait_for_jobs(&shim.pool, 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let jobs_now = crate::harness::jobs(&shim.pool).await;
    assert_eq!(jobs_now.len(), 3, "{jobs_now:?}");
    let mut pushed: Vec<&str> = jobs.iter().map(|j| j.digest.as_str()).collect();
    pushed.sort();
    digests.sort();
    assert_eq!(pushed, digests);
}

/// helm sends its `--username`/`--password` as the backend asks: Basic to an htpasswd backend,
/// and to a token backend's realm for a Bearer token with push scope, through the shim.
#[tokio::test]
async fn helm_logs_in_to_basic_and_token_auth_backends_through_the_shim() {
    let env = AuthBackends::start("").await;
    let shim = &env.shim;
    let helm = Helm::new();
    let chart = helm.package("podinfo", "1.0.0").await;
    let chart = chart.to_str().unwrap();

    for (repo, user, password) in [
        ("private", "bob", "t0ken-pass"),
        ("team", "alice", "s3cret-pass"),
    ] {
        let oci = format!("oci://{}/{repo}", shim.host_port);
        let err = helm
            .run(&["push", chart, &oci, "--plain-http"])
            .await
            .unwrap_err();
        // (From the token backend an anonymous token, then `insufficient_scope`.)
        assert!(
            err.contains("401")
                || err.contains("push access denied")
                || err.to_lowercase().contains("unauthorized"),
            "{repo}: {err}"
        );
        let creds = ["--username", user, "--password", password, "--plain-http"];
        let mut args = vec!["push", chart, &oci];
        args.extend(creds);
        helm.run(&args).await.unwrap();
        let pulled = helm.dir().join(repo);
        std::fs::create_dir_all(&pulled).unwrap();
        let chart_ref = format!("{oci}/podinfo");
        let mut args = vec![
            "pull",
            &chart_ref,
            "--version",
            "1.0.0",
            "-d",
            pulled.to_str().unwrap(),
        ];
        args.extend(creds);
        helm.run(&args).await.unwrap();
        assert!(
            std::fs::read(pulled.join("podinfo-1.0.0.tgz")).unwrap()
                == std::fs::read(chart).unwrap(),
            "{repo}: the pulled chart differs"
        );
    }
    // helm asked the realm itself, with bob's password, for push access.
    assert!(
        env.token_asked("private/podinfo", "push"),
        "{:?}",
        env.tokens.requests()
    );
    wait_for_jobs(&shim.pool, 2).await;
}
