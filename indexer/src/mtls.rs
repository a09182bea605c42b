//! Reading a backend that demands a client certificate (mutual TLS).
//!
//! oci-client 0.18 cannot present a client certificate: its configuration has no setting for one
//! and its reqwest client is private. So for such a backend the indexer's oci-client speaks plain
//! HTTP through a forward proxy of its own, in this process: a listener on a random loopback
//! port that opens the TLS connection to the backend, certificate presented, with the backend's
//! `ca_file`, `insecure_skip_verify` and timeouts.
//!
//! The bridge serves nobody else: it answers only requests that carry its random credentials
//! (sent as `Proxy-Authorization`, which oci-client's reqwest takes from the proxy URL), only
//! `GET` and `HEAD`, and only for the backend's own host and port, so it cannot be used to reach
//! anything but the one backend it was made for. Redirects are left to oci-client, which follows
//! them itself (object storage needs no client certificate).

use std::{net::Ipv4Addr, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use shimmer_config::BackendConfig;

use crate::registry::RegistryError;

/// Headers of one connection, never passed on.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A running bridge; it stops when the last handle on it is dropped.
#[derive(Debug)]
pub struct MtlsBridge {
    /// `http://<user>:<secret>@127.0.0.1:<port>`, for oci-client's `http_proxy`.
    pub proxy_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MtlsBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Inner {
    /// `host:port` of the backend: the only authority the bridge forwards to.
    authority: String,
    /// The `Proxy-Authorization` value a request must carry.
    expected: HeaderValue,
    client: reqwest::Client,
}

impl MtlsBridge {
    /// Starts the bridge for `cfg` (a backend with `client_cert` and `client_key`) on the current
    /// tokio runtime.
    pub fn start(cfg: &BackendConfig) -> Result<Self, RegistryError> {
        let err = |m: String| RegistryError::Config(cfg.name.clone(), m);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (Some(cert), Some(key)) = (&cfg.client_cert, &cfg.client_key) else {
            return Err(err("client_cert and client_key go together".into()));
        };
        let read = |what: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| err(format!("{what}: {e}")))
        };
        let mut pem = read("client_cert", cert)?;
        pem.push(b'\n');
        pem.extend(read("client_key", key)?);
        let identity = reqwest::Identity::from_pem(&pem)
            .map_err(|e| err(format!("client_cert/client_key: {e}")))?;
        let mut client = reqwest::Client::builder()
            .identity(identity)
            .danger_accept_invalid_certs(cfg.insecure_skip_verify)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout);
        if let Some(ca) = &cfg.ca_file {
            let certs = reqwest::Certificate::from_pem_bundle(&read("ca_file", ca)?)
                .map_err(|e| err(format!("ca_file: {e}")))?;
            client = client.tls_certs_merge(certs);
        }
        let client = client
            .build()
            .map_err(|e| err(format!("TLS client: {e}")))?;

        let host = cfg
            .url
            .host_str()
            .ok_or_else(|| err("url has no host".into()))?;
        let authority = match cfg.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let mut secret = [0u8; 24];
        getrandom::getrandom(&mut secret).map_err(|e| err(format!("random source: {e}")))?;
        let secret = hex::encode(secret);
        let mut expected = HeaderValue::from_str(&format!(
            "Basic {}",
            STANDARD.encode(format!("shimmer:{secret}"))
        ))
        .expect("base64 is a valid header value");
        expected.set_sensitive(true);

        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| err("the mutual TLS bridge needs a tokio runtime".into()))?;
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| err(format!("mutual TLS bridge: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| err(format!("mutual TLS bridge: {e}")))?
            .port();
        let inner = Arc::new(Inner {
            authority,
            expected,
            client,
        });
        let app = Router::new().fallback(relay).with_state(inner);
        let task = runtime.spawn(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => {
                    let _ = axum::serve(listener, app).await;
                }
                Err(error) => tracing::error!(%error, "mutual TLS bridge could not listen"),
            }
        });
        Ok(Self {
            proxy_url: format!("http://shimmer:{secret}@127.0.0.1:{port}"),
            task,
        })
    }
}

/// One proxied request (absolute-form: `GET http://host:port/v2/... HTTP/1.1`).
async fn relay(State(bridge): State<Arc<Inner>>, req: Request) -> Response {
    let authorised = req
        .headers()
        .get(header::PROXY_AUTHORIZATION)
        .is_some_and(|v| constant_time_eq(v.as_bytes(), bridge.expected.as_bytes()));
    if !authorised {
        return (
            StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            [(header::PROXY_AUTHENTICATE, "Basic realm=\"shimmer\"")],
            "proxy credentials required\n",
        )
            .into_response();
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "the indexer only reads\n",
        )
            .into_response();
    }
    let uri = req.uri();
    if uri.scheme_str() != Some("http")
        || uri.authority().map(|a| a.as_str()) != Some(bridge.authority.as_str())
    {
        return (
            StatusCode::FORBIDDEN,
            "this bridge reaches only its own backend\n",
        )
            .into_response();
    }
    let url = format!(
        "https://{}{}",
        bridge.authority,
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut out = bridge.client.request(req.method().clone(), url);
    for (name, value) in req.headers() {
        if passes(name, req.headers()) && name != header::HOST {
            out = out.header(name, value);
        }
    }
    let answer = match out.send().await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::warn!(authority = %bridge.authority, %error, "backend unreachable over mutual TLS");
            return (StatusCode::BAD_GATEWAY, "backend unreachable\n").into_response();
        }
    };
    let mut resp = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if passes(name, answer.headers()) {
            resp = resp.header(name, value);
        }
    }
    resp.body(Body::from_stream(answer.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

/// Whether a header goes on: not hop-by-hop, nor named in `Connection`.
fn passes(name: &HeaderName, headers: &HeaderMap) -> bool {
    !HOP_BY_HOP.contains(&name.as_str())
        && !headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|listed| listed.trim().eq_ignore_ascii_case(name.as_str()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
