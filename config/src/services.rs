//! The sections of shimmer's own services: `[server]` (the shim), `[database]`, `[indexer]`,
//! `[web]` and `[log]`.

use std::{net::SocketAddr, time::Duration};

use serde::Deserialize;
use url::Url;

use crate::{ConfigError, Secret, duration};

/// `[server]`: the OCI endpoint (the shim).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address the OCI endpoint listens on.
    pub listen: SocketAddr,
    /// Absolute base URL clients reach the shim at. When set, rewritten `Location` and `Link`
    /// headers are absolute on it; otherwise they are relative paths (`/v2/...`).
    pub public_url: Option<Url>,
    /// Largest manifest accepted on `PUT`, in bytes.
    pub max_manifest_bytes: u64,
    /// Follow a backend's blob redirect (307 to object storage) instead of handing it to the client.
    pub follow_redirects: bool,
    /// Backend that answers `GET /v2/` (the ping clients use to discover auth). Defaults to the
    /// backend of the route with an empty prefix; with neither, the shim answers 200 itself.
    pub ping_backend: Option<String>,
    /// How long a graceful shutdown waits for in-flight requests.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// How long a client connection may take to send a request's head (line and headers), timed
    /// from when the shim starts waiting for it: a connection that sends a head no faster, or
    /// idles between requests longer, is closed. Bodies are not bounded by it.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// How many (backend, repository, digest) triples the shim remembers as already enqueued,
    /// so repeated pulls cost no database round trip.
    pub seen_cache_size: usize,
    /// Threads serving the OCI endpoint, each with a single-threaded runtime of its own and its
    /// own backend connections (so a request never hops threads); 0 means one per core.
    pub threads: usize,
    /// Key that signs the upload sessions the shim hands out for a backend upload location
    /// outside `/v2` (so a client cannot make one up to reach any path on the backend). Shims
    /// behind one load balancer must share it; unset, each process picks a random one.
    pub session_secret: Option<Secret>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:5000".parse().expect("valid address"),
            public_url: None,
            max_manifest_bytes: 4 * 1024 * 1024,
            follow_redirects: true,
            ping_backend: None,
            shutdown_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(30),
            seen_cache_size: 100_000,
            threads: 0,
            session_secret: None,
        }
    }
}

/// `[database]`: the one PostgreSQL every component shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before giving up (kept short so a
    /// database outage never stalls the registry path).
    #[serde(with = "duration")]
    pub acquire_timeout: Duration,
    /// Apply migrations when `serve` starts.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("postgres://postgres@127.0.0.1:5432/shimmer"),
            max_connections: 10,
            acquire_timeout: Duration::from_secs(3),
            migrate_on_start: true,
        }
    }
}

/// `[indexer]`: the workers that turn queued manifests into package records.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IndexerConfig {
    /// Run indexer workers inside `shimmer serve`.
    pub enabled: bool,
    /// Jobs run at once per process.
    pub workers: usize,
    /// How often idle workers look for jobs if no notification arrives.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// How long a claimed job is a worker's; renewed while it runs. A job whose worker died
    /// returns to the queue when its lease runs out.
    #[serde(with = "duration")]
    pub lease: Duration,
    /// Attempts before a failing job stays `failed`.
    pub max_attempts: i32,
    /// First retry delay; doubled on every further failure (capped at an hour).
    #[serde(with = "duration")]
    pub retry_base: Duration,
    /// Most layer bytes downloaded to look for `package.yaml` in an image without layer roles.
    pub flatten_limit_bytes: u64,
    /// Longest one attempt of a job may take, whatever it waits on: past it the attempt fails
    /// (and is retried with backoff), so a hung read cannot keep a job's lease alive for ever.
    #[serde(with = "duration")]
    pub job_timeout: Duration,
    /// How long `done` jobs are kept before workers delete them, so the queue table does not
    /// grow for ever.
    #[serde(with = "duration")]
    pub keep_done_jobs: Duration,
}

impl IndexerConfig {
    /// The checks of `[indexer]`, each naming its key.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("indexer.lease", self.lease),
            ("indexer.poll_interval", self.poll_interval),
            ("indexer.job_timeout", self.job_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(key, "must be greater than 0"));
            }
        }
        if self.lease < Duration::from_millis(3) {
            // The heartbeat renews every third of the lease: it needs a whole millisecond.
            return Err(ConfigError::invalid(
                "indexer.lease",
                "must be at least 3ms",
            ));
        }
        if self.max_attempts < 1 {
            return Err(ConfigError::invalid(
                "indexer.max_attempts",
                format!("must be at least 1, not {}", self.max_attempts),
            ));
        }
        if self.retry_base > Duration::from_secs(3600) {
            return Err(ConfigError::invalid(
                "indexer.retry_base",
                "must be at most 1h (retries are capped at an hour)",
            ));
        }
        Ok(())
    }
}

impl Default for IndexerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            workers: 2,
            poll_interval: Duration::from_secs(5),
            lease: Duration::from_secs(60),
            max_attempts: 5,
            retry_base: Duration::from_secs(10),
            flatten_limit_bytes: 64 * 1024 * 1024,
            job_timeout: Duration::from_secs(600),
            keep_done_jobs: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// `[web]`: the marketplace.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Run the marketplace in `shimmer serve`.
    pub enabled: bool,
    pub listen: SocketAddr,
    /// Absolute base (a CDN host) for the immutable URLs: content-addressed docs and static
    /// assets. Unset: they are relative to the page.
    pub public_url: Option<Url>,
    /// Tokens that let a request (`Authorization: Bearer <token>`) see private packages.
    pub reader_tokens: Vec<Secret>,
    /// `max-age` of pages that change (home, package, version, search).
    #[serde(with = "duration")]
    pub page_max_age: Duration,
    /// Hits per search page.
    pub page_size: u32,
    /// As `server.header_read_timeout`, for the marketplace's connections.
    #[serde(with = "duration")]
    pub header_read_timeout: Duration,
    /// Longest a page or API answer may take; past it the request is abandoned and answered
    /// 503 (a page, or JSON under `/api/v1`); PostgreSQL cancels the marketplace's statements
    /// a second later.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            public_url: None,
            reader_tokens: Vec::new(),
            page_max_age: Duration::from_secs(60),
            page_size: 20,
            header_read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive; `RUST_LOG` wins when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}
