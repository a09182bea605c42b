//! A backend registry as the shim forwards to it: its connection (from the registry crate), the
//! per-thread pools of the `/v2` pass-through, and what the shim has learnt about whether it
//! wants client credentials.

use std::{
    cell::RefCell,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioTimer},
};
use reqwest::StatusCode;
use shimmer_config::{BackendConfig, ClientAuth, Referrers};
use shimmer_registry::{Connection, Connector, Endpoint, RegistryError};
use tokio::time::{Instant, Sleep};

pub use shimmer_registry::install_crypto_provider;

const AUTH_UNKNOWN: u8 = 0;
const AUTH_OPEN: u8 = 1;
const AUTH_PROTECTED: u8 = 2;

/// One configured backend, shared by all requests routed to it.
#[derive(Debug)]
pub struct Backend {
    pub name: String,
    /// TLS, timeouts, credentials and URLs: the one connection setup shimmer has.
    pub conn: Arc<Connection>,
    pub client_auth: ClientAuth,
    /// Whether the backend has asked for credentials (see [`Backend::forwards_client_auth`]).
    auth: AtomicU8,
    /// Identifies this backend's pass-through pools (see [`Backend::passthrough`]).
    id: usize,
    connector: Connector,
    read_timeout: Duration,
    /// Whether clients ask this backend's token service through the shim (see [`crate::token`]):
    /// `relay_tokens`, or a `repository_prefix`.
    pub relay_tokens: bool,
    /// What the shim knows of this backend's token service.
    pub token_realm: crate::realm::RealmMemory,
    /// Whether the backend has paged a tag list itself (it sent a `Link`): from then on its tag
    /// lists pass through untouched (see `forward::paging`).
    pages_tags: AtomicBool,
    /// How referrers requests are answered (`referrers` in the configuration).
    referrers: Referrers,
    /// Under `auto`: what the backend's answers showed of its referrers API (unknown, has it,
    /// lacks it).
    has_referrers: AtomicU8,
}

const REFERRERS_UNKNOWN: u8 = 0;
const REFERRERS_PRESENT: u8 = 1;
const REFERRERS_ABSENT: u8 = 2;

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

/// Why a pass-through request got no answer from the backend.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Client(#[from] hyper_util::client::legacy::Error),
    #[error("no response headers within the read timeout of {0:?}")]
    Timeout(Duration),
}

impl Backend {
    pub fn from_config(cfg: &BackendConfig) -> Result<Arc<Self>, RegistryError> {
        let conn = Connection::from_config(cfg)?;
        Ok(Arc::new(Self {
            name: cfg.name.clone(),
            connector: conn.connector(),
            conn: Arc::new(conn),
            client_auth: cfg.client_auth,
            auth: AtomicU8::new(AUTH_UNKNOWN),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            read_timeout: cfg.read_timeout,
            relay_tokens: cfg.relay_tokens || !cfg.repository_prefix.is_empty(),
            token_realm: Default::default(),
            pages_tags: AtomicBool::new(false),
            referrers: cfg.referrers,
            has_referrers: AtomicU8::new(REFERRERS_UNKNOWN),
        }))
    }

    /// Where the backend's API lives and how its repository names map onto the shim's.
    pub fn endpoint(&self) -> &Endpoint {
        &self.conn.endpoint
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

    /// Whether the backend pages tag lists itself, learning it from `headers`, a tag list's: a
    /// backend that has sent a `Link` once pages.
    pub fn pages_tags(&self, headers: &http::HeaderMap) -> bool {
        if headers.contains_key(http::header::LINK) {
            self.pages_tags.store(true, Ordering::Relaxed);
        }
        self.pages_tags.load(Ordering::Relaxed)
    }

    /// Whether the shim serves referrers for this backend: `Some` when the configuration or the
    /// backend's earlier answers decided it, `None` while `auto` has not found out.
    pub fn emulates_referrers(&self) -> Option<bool> {
        match self.referrers {
            Referrers::Emulate => Some(true),
            Referrers::Passthrough => Some(false),
            Referrers::Auto => match self.has_referrers.load(Ordering::Relaxed) {
                REFERRERS_PRESENT => Some(false),
                REFERRERS_ABSENT => Some(true),
                _ => None,
            },
        }
    }

    /// Remembers what an answer showed of the backend's referrers API.
    pub fn learn_referrers(&self, present: bool) {
        let v = if present {
            REFERRERS_PRESENT
        } else {
            REFERRERS_ABSENT
        };
        self.has_referrers.store(v, Ordering::Relaxed);
    }

    /// `GET /v2/` without credentials: the backend is up if it answers below 500; a 401 marks
    /// it as wanting credentials.
    pub async fn probe(&self) -> Result<StatusCode, reqwest::Error> {
        let resp = self
            .conn
            .http
            .get(self.endpoint().url("/v2/", None))
            .send()
            .await?;
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
