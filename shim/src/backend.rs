//! A backend registry: its HTTP client (TLS, timeouts), its repository name mapping, and what
//! the shim has learnt about whether it wants client credentials.

use std::{
    cell::RefCell,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use reqwest::StatusCode;
use shimmer_config::{BackendConfig, ClientAuth, Secret};
use tokio::time::{Instant, Sleep};
use url::Url;

/// Installs rustls' ring crypto provider once per process (reqwest is built without a default).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

const AUTH_UNKNOWN: u8 = 0;
const AUTH_OPEN: u8 = 1;
const AUTH_PROTECTED: u8 = 2;

/// One configured backend, shared by all requests routed to it.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    /// Scheme, host and port of the backend, e.g. `https://registry.example.com:5000`.
    origin: String,
    /// Path the backend's API lives under, without a trailing slash (usually empty).
    base_path: String,
    /// The configured URL, parsed once: [`Backend::api_url`] only sets its path and query.
    base_url: Url,
    /// Prepended to shim repository names to get backend repository names.
    pub prefix: String,
    pub client_auth: ClientAuth,
    /// Whether the backend has asked for credentials (see [`Backend::forwards_client_auth`]).
    auth: AtomicU8,
    /// Credentials shimmer itself uses (never a client's).
    pub credentials: Option<(String, Secret)>,
    /// For the shim's own requests (probes, the cache, upstream token exchange).
    pub client: reqwest::Client,
    /// Identifies this backend's pass-through pools (see [`Backend::passthrough`]).
    id: usize,
    connector: Connector,
    read_timeout: Duration,
    /// Whether clients ask this backend's token service through the shim (see [`crate::token`]):
    /// `relay_tokens`, or a `repository_prefix`.
    pub relay_tokens: bool,
    /// What the shim knows of this backend's token service.
    pub token_realm: crate::realm::RealmMemory,
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
/// The pass-through client: hyper's pooled client directly, which costs about 15 us less CPU a
/// request than going through reqwest (measured with `bench/shim.sh`).
type PassClient = Client<Connector, Body>;

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Each thread's pass-through pools, one per backend. A pooled connection is driven by a
    /// task on the runtime that opened it; keeping pools per thread (each serving thread has its
    /// own runtime) means a request and its backend exchange never wake another thread.
    static POOLS: RefCell<Vec<(usize, PassClient)>> = const { RefCell::new(Vec::new()) };
}

/// Why a backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("backend {backend}: {what}: {source}")]
    File {
        backend: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("backend {backend}: {what}: {message}")]
    Tls {
        backend: String,
        what: &'static str,
        message: String,
    },
    #[error(transparent)]
    Config(#[from] shimmer_config::ConfigError),
}

/// Why a pass-through request got no answer from the backend.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Client(#[from] hyper_util::client::legacy::Error),
    #[error("no response headers within the read timeout of {0:?}")]
    Timeout(Duration),
}

impl Backend {
    pub fn from_config(cfg: &BackendConfig) -> Result<Arc<Self>, BackendError> {
        install_crypto_provider();
        let mut tls = crate::tls::client_config(cfg)?;
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
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(cfg.connect_timeout)
            .read_timeout(cfg.read_timeout)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| BackendError::Tls {
                backend: cfg.name.clone(),
                what: "client",
                message: e.to_string(),
            })?;
        let credentials = match (&cfg.username, cfg.resolve_password()?) {
            (Some(u), Some(p)) => Some((u.clone(), p)),
            (Some(u), None) => Some((u.clone(), Secret::new(""))),
            _ => None,
        };
        let url = &cfg.url;
        let origin = url[..url::Position::BeforePath].to_owned();
        let base_path = url.path().trim_end_matches('/').to_owned();
        Ok(Arc::new(Self {
            name: cfg.name.clone(),
            origin,
            base_path,
            base_url: url.clone(),
            prefix: cfg.repository_prefix.clone(),
            client_auth: cfg.client_auth,
            auth: AtomicU8::new(AUTH_UNKNOWN),
            credentials,
            client,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            connector,
            read_timeout: cfg.read_timeout,
            relay_tokens: cfg.relay_tokens || !cfg.repository_prefix.is_empty(),
            token_realm: Default::default(),
        }))
    }

    /// Sends a client's request on to the backend with the pass-through client. `read_timeout`
    /// bounds silence, never a whole transfer: the answer's headers must come within it of the
    /// request's last body bytes going out (an upload of any length is fine while it moves), and
    /// each piece of the answer's body within it of the one before.
    pub async fn send(&self, req: http::Request<Body>) -> Result<http::Response<Body>, SendError> {
        let timeout = self.read_timeout;
        let start = Instant::now();
        // Only a request with a body can make progress before the answer (no cost otherwise).
        let (req, sent) = if http_body::Body::is_end_stream(req.body()) {
            (req, None)
        } else {
            let sent = Arc::new(LastSent::default());
            let tracked = sent.clone();
            let req = req.map(|inner| {
                Body::new(TrackSent {
                    inner,
                    sent: tracked,
                    start,
                })
            });
            (req, Some(sent))
        };
        let silent_since = || sent.as_ref().map_or(start, |s| s.at(start));
        let answer = self.passthrough().request(req);
        tokio::pin!(answer);
        let resp = loop {
            match tokio::time::timeout_at(silent_since() + timeout, &mut answer).await {
                Ok(resp) => break resp?,
                // Body bytes went out since: the silence began later than we thought.
                Err(_) if silent_since() + timeout > Instant::now() => continue,
                Err(_) => return Err(SendError::Timeout(timeout)),
            }
        };
        Ok(resp.map(|body| Body::new(ReadTimeout::new(body, timeout))))
    }

    /// This thread's pooled client for this backend.
    fn passthrough(&self) -> PassClient {
        POOLS.with_borrow_mut(|pools| {
            if let Some((_, c)) = pools.iter().find(|(id, _)| *id == self.id) {
                return c.clone();
            }
            let c = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(64)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(self.connector.clone());
            pools.push((self.id, c.clone()));
            c
        })
    }

    /// The backend's name for a shim repository.
    pub fn backend_repo(&self, shim_name: &str) -> String {
        format!("{}{}", self.prefix, shim_name)
    }

    /// The shim's name for a backend repository, if it is one the shim maps.
    pub fn shim_repo<'a>(&self, backend_name: &'a str) -> Option<&'a str> {
        backend_name.strip_prefix(&self.prefix)
    }

    /// The URL of an API path on this backend (`api_path` starts with `/v2/`).
    pub fn url(&self, api_path: &str, query: Option<&str>) -> String {
        let mut u = format!("{}{}{}", self.origin, self.base_path, api_path);
        if let Some(q) = query {
            u.push('?');
            u.push_str(q);
        }
        u
    }

    /// [`Backend::url`], built on the parsed configured URL: no parse of its scheme and host per
    /// request. `api_path` must be a path only (validated names, references and digests): a
    /// `?` or `#` in it would be percent-encoded, not taken as a query or fragment.
    pub fn api_url(&self, api_path: &str, query: Option<&str>) -> Url {
        let mut u = self.base_url.clone();
        if self.base_path.is_empty() {
            u.set_path(api_path);
        } else {
            u.set_path(&format!("{}{api_path}", self.base_path));
        }
        u.set_query(query);
        u.set_fragment(None);
        u
    }

    /// The URL of an absolute path on this backend's origin (an upload location outside the
    /// API path), so an encoded session can never point at another host.
    pub fn at_origin(&self, path: &str, query: Option<&str>) -> String {
        let mut u = format!("{}{}", self.origin, path);
        if let Some(q) = query {
            u.push('?');
            u.push_str(q);
        }
        u
    }

    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Whether `url` is on this backend (same scheme, host and port).
    pub fn owns(&self, url: &Url) -> bool {
        url[..url::Position::BeforePath] == self.origin
    }

    /// Whether a client's `Authorization` header goes to this backend. With `auto`, only once
    /// the backend has shown it wants credentials (a 401 on any request, or on the probe), so
    /// credentials a client meant for a protected backend never reach an open one.
    pub async fn forwards_client_auth(&self) -> bool {
        match self.client_auth {
            ClientAuth::Forward => true,
            ClientAuth::Drop => false,
            ClientAuth::Auto => {
                if self.auth.load(Ordering::Relaxed) == AUTH_UNKNOWN {
                    let _ = self.probe().await;
                }
                self.auth.load(Ordering::Relaxed) == AUTH_PROTECTED
            }
        }
    }

    /// Records what a response says about the backend's auth.
    pub fn observe(&self, status: StatusCode) {
        if status == StatusCode::UNAUTHORIZED {
            self.auth.store(AUTH_PROTECTED, Ordering::Relaxed);
        }
    }

    /// `GET /v2/` without credentials: the backend is up if it answers below 500; a 401 marks
    /// it as wanting credentials.
    pub async fn probe(&self) -> Result<StatusCode, reqwest::Error> {
        let resp = self.client.get(self.url("/v2/", None)).send().await?;
        let status = resp.status();
        self.auth.store(
            if status == StatusCode::UNAUTHORIZED {
                AUTH_PROTECTED
            } else {
                AUTH_OPEN
            },
            Ordering::Relaxed,
        );
        Ok(status)
    }
}

/// When a request body last handed bytes to the connection, in microseconds after the request
/// started (0: not yet).
#[derive(Default)]
struct LastSent(AtomicU64);

impl LastSent {
    fn at(&self, start: Instant) -> Instant {
        start + Duration::from_micros(self.0.load(Ordering::Relaxed))
    }
}

/// A request body that records in [`LastSent`] each time a piece of it is taken to be sent.
struct TrackSent {
    inner: Body,
    sent: Arc<LastSent>,
    /// When the request started, what [`LastSent`] counts from.
    start: Instant,
}

impl http_body::Body for TrackSent {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        let micros = self.start.elapsed().as_micros() as u64;
        self.sent.0.store(micros, Ordering::Relaxed);
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A backend's response body, failing when `timeout` passes without a frame arriving (a backend
/// that stops sending mid-blob must not hold the client's connection forever). The timer is
/// only created once the body first has to wait, so a small body already read costs none.
struct ReadTimeout {
    inner: hyper::body::Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl ReadTimeout {
    fn new(inner: hyper::body::Incoming, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: None,
        }
    }
}

impl http_body::Body for ReadTimeout {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let Some(sleep) = &mut this.sleep {
                sleep.as_mut().reset(Instant::now() + this.timeout);
            }
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let timeout = this.timeout;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Some(Err(format!(
            "backend sent no data for the read timeout of {timeout:?}"
        )
        .into())))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A backend named `b` at `url` storing repositories under `prefix`, for unit tests.
#[cfg(test)]
pub(crate) fn test_backend(url: &str, prefix: &str) -> Arc<Backend> {
    let mut cfg = BackendConfig::new("b", url.parse().unwrap());
    cfg.repository_prefix = prefix.into();
    Backend::from_config(&cfg).unwrap()
}

#[cfg(test)]
mod tests;
