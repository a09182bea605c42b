//! Connection setup, done once per configured backend or upstream: its TLS (trust roots, CA
//! file, client certificate), its timeouts, its credentials, and the two transports built on
//! them. The shim's `/v2` pass-through takes [`Connection::connector`] into hyper's pooled client
//! (the measured fast path); every read shimmer makes itself goes through [`Connection::http`].

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use shimmer_config::{BackendConfig, Secret};

use crate::{Endpoint, RegistryError, tls};

/// Installs rustls' ring crypto provider once per process (reqwest is built without a default).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The hyper connector of the pass-through (HTTP or HTTPS, HTTP/1.1 and HTTP/2 by ALPN).
pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One registry as shimmer connects to it.
#[derive(Debug)]
pub struct Connection {
    pub name: String,
    pub endpoint: Endpoint,
    /// Credentials shimmer itself uses (never a client's).
    pub credentials: Option<(String, Secret)>,
    /// Requests to the registry itself: its TLS, no redirects followed (callers follow them with
    /// [`crate::redirect`]), no proxy from the environment.
    pub http: reqwest::Client,
    /// Requests to where the registry redirects (object storage, a CDN): the platform's trust
    /// roots, no client certificate, never credentials.
    pub redirects: reqwest::Client,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    connector: Connector,
}

impl Connection {
    pub fn from_config(cfg: &BackendConfig) -> Result<Self, RegistryError> {
        install_crypto_provider();
        let setup = |what: &'static str, e: reqwest::Error| RegistryError::Setup {
            registry: cfg.name.clone(),
            what,
            message: e.to_string(),
        };
        let mut tls = tls::client_config(cfg)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(cfg.connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let client = base_client(cfg)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| setup("client", e))?;
        let redirects = base_client(cfg)
            .build()
            .map_err(|e| setup("redirect client", e))?;
        let credentials = match (&cfg.username, cfg.resolve_password()?) {
            (Some(u), Some(p)) => Some((u.clone(), p)),
            (Some(u), None) => Some((u.clone(), Secret::new(""))),
            _ => None,
        };
        Ok(Self {
            name: cfg.name.clone(),
            endpoint: Endpoint::new(&cfg.url, &cfg.repository_prefix),
            credentials,
            http: client,
            redirects,
            connect_timeout: cfg.connect_timeout,
            read_timeout: cfg.read_timeout,
            connector,
        })
    }

    /// The connector for hyper's pooled pass-through client (same TLS as [`Connection::http`]).
    pub fn connector(&self) -> Connector {
        self.connector.clone()
    }
}

/// What both reqwest clients share: the configured timeouts, no redirects of their own, no
/// proxy from the environment.
fn base_client(cfg: &BackendConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(cfg.connect_timeout)
        .read_timeout(cfg.read_timeout)
}
