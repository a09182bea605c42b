//! Backends over TLS: a private CA (`ca_file`), mutual TLS (`client_cert`/`client_key`), and
//! `insecure_skip_verify`, against a real docker-registry serving HTTPS with certificates made
//! by openssl.

use reqwest::StatusCode;
use testkit::registry::Registry;

use crate::harness::{Shim, http};
use testkit::http::Sent;

fn backend(url: &str, extra: &str) -> String {
    format!(
        "[[backend]]\nname = \"tls\"\nurl = \"{url}\"\n{extra}\n[[route]]\nprefix = \"\"\nbackend = \"tls\"\n"
    )
}

async fn status(shim: &Shim) -> StatusCode {
    http().get(shim.v2("x/tags/list")).sent().await.status()
}

#[tokio::test]
async fn tls_backends_with_a_private_ca_and_mutual_tls() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let registry = Registry::start_mutual_tls(d).await;
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
