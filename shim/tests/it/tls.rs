//! Backends over TLS: a private CA (`ca_file`), mutual TLS (`client_cert`/`client_key`), and
//! `insecure_skip_verify`, against a real docker-registry serving HTTPS with certificates made
//! by openssl.

use std::{path::Path, process::Command};

use reqwest::StatusCode;
use testkit::registry::{Registry, RegistryOptions, RegistryTls};

use crate::harness::{Shim, http};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=shimmer",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            "client.pem",
        ],
    );
}

fn backend(url: &str, extra: &str) -> String {
    format!(
        "[[backend]]\nname = \"tls\"\nurl = \"{url}\"\n{extra}\n[[route]]\nprefix = \"\"\nbackend = \"tls\"\n"
    )
}

async fn status(shim: &Shim) -> StatusCode {
    http()
        .get(format!("{}/v2/x/tags/list", shim.url()))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn tls_backends_with_a_private_ca_and_mutual_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    certificates(d);
    let registry = Registry::start(RegistryOptions {
        tls: Some(RegistryTls {
            certificate: d.join("server.pem"),
            key: d.join("server.key"),
            client_ca: Some(d.join("ca.pem")),
        }),
        ..Default::default()
    })
    .await;
    let url = registry.url();
    assert!(url.starts_with("https://"));
    let files = |names: &[(&str, &str)]| {
        names
            .iter()
            .map(|(k, f)| format!("{k} = \"{}\"\n", d.join(f).display()))
            .collect::<String>()
    };

    // The private CA and a client certificate: the registry answers (404: no such repository).
    let full = files(&[
        ("ca_file", "ca.pem"),
        ("client_cert", "client.pem"),
        ("client_key", "client.key"),
    ]);
    let shim = Shim::start(&backend(&url, &full)).await;
    assert_eq!(status(&shim).await, StatusCode::NOT_FOUND);

    // Without the client certificate the registry refuses the handshake.
    let no_client = Shim::start(&backend(&url, &files(&[("ca_file", "ca.pem")]))).await;
    assert_eq!(status(&no_client).await, StatusCode::BAD_GATEWAY);

    // Without the CA the server certificate is not trusted...
    let no_ca = Shim::start(&backend(
        &url,
        &files(&[("client_cert", "client.pem"), ("client_key", "client.key")]),
    ))
    .await;
    assert_eq!(status(&no_ca).await, StatusCode::BAD_GATEWAY);

    // ...unless verification is switched off.
    let insecure = format!(
        "{}insecure_skip_verify = true\n",
        files(&[("client_cert", "client.pem"), ("client_key", "client.key")])
    );
    let skip = Shim::start(&backend(&url, &insecure)).await;
    assert_eq!(status(&skip).await, StatusCode::NOT_FOUND);
}
