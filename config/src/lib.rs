//! shimmer's configuration.
//!
//! One TOML file (`--config`, default `shimmer.toml`; a missing default file is fine), then
//! environment variables: `SHIMMER_<SECTION>__<KEY>` overrides `[section] key`, e.g.
//! `SHIMMER_SERVER__LISTEN=0.0.0.0:5000` or `SHIMMER_DATABASE__URL=postgres://...`. Arrays of
//! tables can be replaced whole with inline syntax:
//! `SHIMMER_ROUTE='[{prefix="acme/", backend="primary"}]'`.
//!
//! Unknown keys are errors, and every error names the key it is about, so a typo fails at start
//! instead of being silently ignored.

mod duration;
mod secret;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;
use url::Url;

pub use secret::Secret;

/// The whole configuration of a shimmer process (all components read the parts they need).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default, rename = "backend")]
    pub backends: Vec<BackendConfig>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub indexer: IndexerConfig,
    #[serde(default)]
    pub web: WebConfig,
    #[serde(default)]
    pub log: LogConfig,
}

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

/// Whether the shim passes a client's `Authorization` header on to a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// Forward only to a backend that has asked for credentials (answered 401), so credentials
    /// meant for a protected backend never reach an open one.
    #[default]
    Auto,
    /// Always forward the client's credentials to the backend the request routes to.
    Forward,
    /// Never forward them.
    Drop,
}

/// Whether the marketplace shows a backend's or route's packages to everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed for everyone.
    Public,
    /// Indexed, but shown only to requests with a reader token.
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }
}

/// `[[backend]]`: a registry the shim forwards to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    /// Base URL, e.g. `https://registry.example.com` (a path prefix is kept).
    pub url: Url,
    /// PEM file of extra CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (and `client_key`) for mutual TLS.
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Credentials shimmer itself uses (the indexer's reads), never a client's.
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Backend repository = prefix + shim repository (`mirror/` stores `acme/x` at `mirror/acme/x`).
    #[serde(default)]
    pub repository_prefix: String,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// `public` or `private` in the marketplace; unset: public only if the backend serves the
    /// manifest without credentials (the indexer checks).
    pub visibility: Option<Visibility>,
    /// Serve blob pulls through the pull-through cache (`[cache] path`); each request is still
    /// authorised by the backend (a `HEAD` with the client's own headers) first.
    #[serde(default)]
    pub cache: bool,
    /// Point the backend's `Bearer` challenges at the shim's token relay (`/token/<name>`), for a
    /// token service clients cannot reach themselves. Always on with a `repository_prefix`.
    #[serde(default)]
    pub relay_tokens: bool,
    #[serde(default = "default_connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// Longest silence while reading a response (not a cap on a whole blob transfer).
    #[serde(default = "default_read_timeout", with = "duration")]
    pub read_timeout: Duration,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_read_timeout() -> Duration {
    Duration::from_secs(60)
}

impl BackendConfig {
    /// A backend at `url` with every option at its default.
    pub fn new(name: impl Into<String>, url: Url) -> Self {
        Self {
            name: name.into(),
            url,
            ca_file: None,
            client_cert: None,
            client_key: None,
            insecure_skip_verify: false,
            username: None,
            password: None,
            password_env: None,
            password_file: None,
            repository_prefix: String::new(),
            client_auth: ClientAuth::Auto,
            visibility: None,
            cache: false,
            relay_tokens: false,
            connect_timeout: default_connect_timeout(),
            read_timeout: default_read_timeout(),
        }
    }

    /// The password shimmer uses for this backend, from `password`, `password_env` or
    /// `password_file` (first set wins).
    pub fn resolve_password(&self) -> Result<Option<Secret>, ConfigError> {
        resolve_secret(
            &format!("backend.{}.password", self.name),
            self.password.as_ref(),
            self.password_env.as_deref(),
            self.password_file.as_deref(),
        )
    }
}

/// A secret given inline (`KEY`), by the name of an environment variable holding it
/// (`KEY_env`) or by a file holding it (`KEY_file`, one trailing line break dropped): the first
/// one set wins; a source that is set but unreadable is an error naming its key.
fn resolve_secret(
    key: &str,
    inline: Option<&Secret>,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(s) = inline {
        return Ok(Some(s.clone()));
    }
    if let Some(var) = env {
        return std::env::var(var)
            .map(|v| Some(Secret::new(v)))
            .map_err(|_| {
                ConfigError::invalid(
                    format!("{key}_env"),
                    format!("environment variable {var} is not set"),
                )
            });
    }
    if let Some(path) = file {
        return std::fs::read_to_string(path)
            .map(|v| Some(Secret::new(v.trim_end_matches(['\r', '\n']))))
            .map_err(|e| {
                ConfigError::invalid(format!("{key}_file"), format!("{}: {e}", path.display()))
            });
    }
    Ok(None)
}

/// `[[route]]`: repositories whose name starts with `prefix` go to `backend`. The longest
/// matching prefix wins; an empty prefix makes that backend the default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub prefix: String,
    pub backend: String,
    /// Overrides the backend's `visibility` for the repositories this route covers.
    pub visibility: Option<Visibility>,
}

/// `[[upstream]]`: a read-only registry the shim pulls from for clients that name it with
/// `?ns=<host>` (containerd mirrors). Credentials come from here only, never from a client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    /// Registry host names this upstream answers for, matched against `ns` (`docker.io`,
    /// `index.docker.io` and `registry-1.docker.io` are one).
    pub hosts: Vec<String>,
    pub url: Url,
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Basic credentials for the upstream.
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A static bearer token instead of Basic credentials: `token`, or the name of an
    /// environment variable holding it (`token_env`), or a file holding it (`token_file`).
    pub token: Option<Secret>,
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    #[serde(default = "default_connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    #[serde(default = "default_read_timeout", with = "duration")]
    pub read_timeout: Duration,
    /// Keep a verified local copy of what is pulled (needs `[cache] path`).
    #[serde(default = "default_true")]
    pub cache: bool,
}

fn default_true() -> bool {
    true
}

/// `[cache]`: the pull-through cache of upstream content.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Directory of cached blobs and manifests; no cache without it.
    pub path: Option<PathBuf>,
    /// Never contact upstreams: serve only what is cached.
    pub offline: bool,
    /// How long a cached tag is served before it is revalidated with a `HEAD` upstream:
    /// a duration (`"10m"`), `"0"` (always revalidate) or `"never"` (pin). Digests never are.
    pub tag_ttl: TagTtl,
    /// Longest wait for an upstream to revalidate a cached tag; past it the cached copy is
    /// served (a slow upstream must not stall pulls for the whole `read_timeout`).
    #[serde(with = "duration")]
    pub revalidate_timeout: Duration,
    /// Most bytes kept; least recently used content goes first. 0: no limit.
    pub max_bytes: u64,
    /// Content not used for this long is removed. Unset: kept however old.
    #[serde(with = "duration::option")]
    pub max_age: Option<Duration>,
    /// How often eviction runs in the background.
    #[serde(with = "duration")]
    pub eviction_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            path: None,
            offline: false,
            tag_ttl: TagTtl(Some(Duration::from_secs(600))),
            revalidate_timeout: Duration::from_secs(3),
            max_bytes: 0,
            max_age: None,
            eviction_interval: Duration::from_secs(300),
        }
    }
}

/// A tag TTL; `None` pins tags forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagTtl(pub Option<Duration>);

impl<'de> Deserialize<'de> for TagTtl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Self(Some(Duration::from_secs(s)))),
            Raw::Text(t) if t == "never" => Ok(Self(None)),
            Raw::Text(t) if t == "0" => Ok(Self(Some(Duration::ZERO))),
            Raw::Text(t) => duration::parse(&t).map(|d| Self(Some(d))).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid tag_ttl {t:?}: a duration (\"10m\"), \"0\" or \"never\""
                ))
            }),
        }
    }
}

impl UpstreamConfig {
    /// The static bearer token, from `token`, `token_env` or `token_file` (first set wins, as
    /// for passwords).
    pub fn resolve_token(&self) -> Result<Option<Secret>, ConfigError> {
        resolve_secret(
            &format!("upstream.{}.token", self.name),
            self.token.as_ref(),
            self.token_env.as_deref(),
            self.token_file.as_deref(),
        )
    }

    /// The backend settings the shim's HTTP client is built from (no client credentials ever
    /// pass: `client_auth = drop`).
    pub fn as_backend(&self) -> BackendConfig {
        BackendConfig {
            ca_file: self.ca_file.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
            username: self.username.clone(),
            password: self.password.clone(),
            password_env: self.password_env.clone(),
            password_file: self.password_file.clone(),
            client_auth: ClientAuth::Drop,
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            ..BackendConfig::new(self.name.clone(), self.url.clone())
        }
    }
}

/// The canonical form of a registry host named by `ns`: lowercase, default ports dropped, and
/// Docker Hub's aliases folded into `docker.io`.
pub fn normalize_registry_host(host: &str) -> String {
    let h = host.trim().to_ascii_lowercase();
    let h = h.strip_suffix(":443").unwrap_or(&h);
    match h {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        other => other.to_owned(),
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
    fn validate(&self) -> Result<(), ConfigError> {
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

/// Why a configuration was refused. Every variant names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(Box<figment::Error>),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The configuration's sections: `SHIMMER_<SECTION>` (an array of tables or a whole table) and
/// `SHIMMER_<SECTION>__<KEY>` name configuration.
const SECTIONS: [&str; 9] = [
    "server", "database", "backend", "route", "upstream", "cache", "indexer", "web", "log",
];

/// Whether a `SHIMMER_*` variable (prefix stripped) is configuration: a section's name, or
/// anything with the `__` separator, so a misspelt `SHIMMER_SERVR__LISTEN` is still refused as an
/// unknown key. Other names are left alone: the secrets `password_env` and `token_env` point at
/// (`SHIMMER_PRIMARY_PASSWORD`), the run script's `SHIMMER_RUN_*`, `SHIMMER_CONFIG` itself.
pub fn is_config_variable(key: &str) -> bool {
    key.contains("__") || SECTIONS.iter().any(|s| key.eq_ignore_ascii_case(s))
}

impl Config {
    /// The configured visibility of a backend's repository: the longest matching route's, else
    /// the backend's; `None` when neither says (the indexer then asks the backend).
    pub fn visibility(&self, backend: &str, repository: &str) -> Option<Visibility> {
        let route = self
            .routes
            .iter()
            .filter(|r| r.backend == backend && repository.starts_with(r.prefix.as_str()))
            .max_by_key(|r| r.prefix.len());
        route.and_then(|r| r.visibility).or_else(|| {
            self.backends
                .iter()
                .find(|b| b.name == backend)
                .and_then(|b| b.visibility)
        })
    }

    /// Reads `path` (required when `explicit`, optional otherwise), then the `SHIMMER_*`
    /// variables that name configuration (see [`is_config_variable`]), then checks the result.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        if explicit && !path.exists() {
            return Err(ConfigError::invalid(
                "--config",
                format!("{} does not exist", path.display()),
            ));
        }
        let figment = Figment::new().merge(Toml::file(path)).merge(
            Env::prefixed("SHIMMER_")
                .filter(|key| is_config_variable(key.as_str()))
                .split("__"),
        );
        Self::from_figment(figment)
    }

    /// Parses a configuration from TOML text alone (tests, embedded defaults).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::new().merge(Toml::string(text)))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Parse(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Cross-field checks serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(secret) = &self.server.session_secret
            && secret.expose().len() < 32
        {
            return Err(ConfigError::invalid(
                "server.session_secret",
                "must be at least 32 characters (e.g. `openssl rand -hex 32`)",
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (i, b) in self.backends.iter().enumerate() {
            if b.name.is_empty() {
                return Err(ConfigError::invalid(
                    format!("backend[{i}].name"),
                    "is empty",
                ));
            }
            if !names.insert(b.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("backend[{i}].name"),
                    format!("duplicate backend name {:?}", b.name),
                ));
            }
            if !matches!(b.url.scheme(), "http" | "https") {
                return Err(ConfigError::invalid(
                    format!("backend[{i}].url"),
                    "must be an http or https URL",
                ));
            }
            if b.client_cert.is_some() != b.client_key.is_some() {
                return Err(ConfigError::invalid(
                    format!("backend[{i}].client_cert"),
                    "client_cert and client_key go together",
                ));
            }
            if !b.repository_prefix.is_empty() && !b.repository_prefix.ends_with('/') {
                return Err(ConfigError::invalid(
                    format!("backend[{i}].repository_prefix"),
                    "must end with '/'",
                ));
            }
        }
        let mut hosts = std::collections::HashSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            if !names.insert(u.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("upstream[{i}].name"),
                    format!("name {:?} is already a backend or upstream", u.name),
                ));
            }
            if u.hosts.is_empty() {
                return Err(ConfigError::invalid(
                    format!("upstream[{i}].hosts"),
                    "is empty",
                ));
            }
            for h in &u.hosts {
                if !hosts.insert(normalize_registry_host(h)) {
                    return Err(ConfigError::invalid(
                        format!("upstream[{i}].hosts"),
                        format!("host {h:?} is served by two upstreams"),
                    ));
                }
            }
            if !matches!(u.url.scheme(), "http" | "https") {
                return Err(ConfigError::invalid(
                    format!("upstream[{i}].url"),
                    "must be an http or https URL",
                ));
            }
            if u.client_cert.is_some() != u.client_key.is_some() {
                return Err(ConfigError::invalid(
                    format!("upstream[{i}].client_cert"),
                    "client_cert and client_key go together",
                ));
            }
        }
        let mut prefixes = std::collections::HashSet::new();
        for (i, r) in self.routes.iter().enumerate() {
            if !self.backends.iter().any(|b| b.name == r.backend) {
                return Err(ConfigError::invalid(
                    format!("route[{i}].backend"),
                    format!("no backend named {:?}", r.backend),
                ));
            }
            if !prefixes.insert(r.prefix.as_str()) {
                return Err(ConfigError::invalid(
                    format!("route[{i}].prefix"),
                    format!("prefix {:?} is routed twice", r.prefix),
                ));
            }
        }
        if let Some(p) = &self.server.ping_backend
            && !self.backends.iter().any(|b| &b.name == p)
        {
            return Err(ConfigError::invalid(
                "server.ping_backend",
                format!("no backend named {p:?}"),
            ));
        }
        for (key, timeout) in [
            (
                "server.header_read_timeout",
                self.server.header_read_timeout,
            ),
            ("web.header_read_timeout", self.web.header_read_timeout),
            ("web.request_timeout", self.web.request_timeout),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError::invalid(
                    key,
                    "must be greater than 0 (no request could ever be answered)",
                ));
            }
        }
        if self.cache.revalidate_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "cache.revalidate_timeout",
                "must be greater than 0 (a cached tag would never be revalidated)",
            ));
        }
        if !(1..=100).contains(&self.web.page_size) {
            return Err(ConfigError::invalid(
                "web.page_size",
                format!("must be 1 to 100, not {}", self.web.page_size),
            ));
        }
        if self.server.max_manifest_bytes == 0 {
            return Err(ConfigError::invalid(
                "server.max_manifest_bytes",
                "must be greater than 0",
            ));
        }
        self.indexer.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        [server]
        listen = "127.0.0.1:5000"
        [database]
        url = "postgres://u@h/db"
        [[backend]]
        name = "primary"
        url = "http://127.0.0.1:5001"
        [[route]]
        prefix = "acme/"
        backend = "primary"
    "#;

    #[test]
    fn sample_from_issue_parses() {
        let c = Config::from_toml(SAMPLE).unwrap();
        assert_eq!(c.backends[0].name, "primary");
        assert_eq!(c.routes[0].prefix, "acme/");
        assert_eq!(c.server.max_manifest_bytes, 4 * 1024 * 1024);
        assert_eq!(c.backends[0].read_timeout, Duration::from_secs(60));
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[server]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn bad_value_names_its_key() {
        let err = Config::from_toml("[server]\nmax_manifest_bytes = \"lots\"\n").unwrap_err();
        assert!(err.to_string().contains("max_manifest_bytes"), "{err}");
        let err = Config::from_toml("[server]\nshutdown_timeout = \"soon\"\n").unwrap_err();
        assert!(err.to_string().contains("shutdown_timeout"), "{err}");
    }

    #[test]
    fn half_a_client_certificate_and_a_page_size_out_of_range_are_refused() {
        for section in ["backend", "upstream"] {
            let extra = match section {
                "backend" => "[[backend]]\nname = \"b\"\nurl = \"https://127.0.0.1:1\"\n",
                _ => {
                    "[[upstream]]\nname = \"u\"\nhosts = [\"r.test\"]\nurl = \"https://127.0.0.1:1\"\n"
                }
            };
            let half = format!("{SAMPLE}\n{extra}client_cert = \"c.pem\"\n");
            let err = Config::from_toml(&half).unwrap_err().to_string();
            let index = if section == "backend" { 1 } else { 0 };
            assert!(
                err.contains(&format!("`{section}[{index}].client_cert`")),
                "{err}"
            );
            let whole = format!("{half}client_key = \"k.pem\"\n");
            Config::from_toml(&whole).unwrap();
        }
        for bad in [0, 101] {
            let err = Config::from_toml(&format!("[web]\npage_size = {bad}\n")).unwrap_err();
            assert!(err.to_string().contains("`web.page_size`"), "{err}");
        }
        Config::from_toml("[web]\npage_size = 100\n").unwrap();
    }

    #[test]
    fn a_short_session_secret_is_refused() {
        let short = SAMPLE.replace(
            "listen = \"127.0.0.1:5000\"",
            "listen = \"127.0.0.1:5000\"\nsession_secret = \"too short\"",
        );
        let err = Config::from_toml(&short).unwrap_err();
        assert!(err.to_string().contains("server.session_secret"), "{err}");
        let long = short.replace("too short", &"k".repeat(32));
        let c = Config::from_toml(&long).unwrap();
        assert_eq!(c.server.session_secret.unwrap().expose(), "k".repeat(32));
    }

    #[test]
    fn route_to_missing_backend_is_named() {
        let err = Config::from_toml(&SAMPLE.replace("backend = \"primary\"", "backend = \"nope\""))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration key `route[0].backend`: no backend named \"nope\""
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn environment_overrides_file_including_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shimmer.toml");
        std::fs::write(&path, SAMPLE).unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("SHIMMER_SERVER__LISTEN", "127.0.0.1:6000");
            jail.set_env("SHIMMER_SERVER__MAX_MANIFEST_BYTES", "1024");
            jail.set_env("SHIMMER_ROUTE", r#"[{prefix="other/", backend="primary"}]"#);
            let c = Config::load(&path, true).unwrap();
            assert_eq!(c.server.listen.port(), 6000);
            assert_eq!(c.server.max_manifest_bytes, 1024);
            assert_eq!(c.routes.len(), 1);
            assert_eq!(c.routes[0].prefix, "other/");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn other_shimmer_variables_are_not_configuration_but_misspelt_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shimmer.toml");
        std::fs::write(
            &path,
            format!("{SAMPLE}\n[[upstream]]\nname = \"up\"\nhosts = [\"registry.test\"]\nurl = \"http://127.0.0.1:1\"\nusername = \"me\"\npassword_env = \"SHIMMER_UP_PASSWORD\"\n"),
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            // A secret named by password_env, the run script's ports, the config path.
            jail.set_env("SHIMMER_UP_PASSWORD", "pw-from-env");
            jail.set_env("SHIMMER_RUN_PORT", "5600");
            jail.set_env("SHIMMER_CONFIG", "elsewhere.toml");
            let c = Config::load(&path, true).unwrap();
            let pw = c.upstreams[0].as_backend().resolve_password().unwrap();
            assert_eq!(pw.unwrap().expose(), "pw-from-env");

            jail.set_env("SHIMMER_SERVR__LISTEN", "127.0.0.1:6000");
            let err = Config::load(&path, true).unwrap_err().to_string();
            assert!(err.contains("servr"), "{err}");
            Ok(())
        });
        assert!(is_config_variable("DATABASE__URL") && is_config_variable("route"));
        assert!(!is_config_variable("PRIMARY_PASSWORD") && !is_config_variable("config"));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Config::from_toml(SAMPLE).unwrap();
        assert!(!format!("{c:?}").contains("postgres://u@h/db"));
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let err = Config::load(Path::new("/nonexistent/shimmer.toml"), true).unwrap_err();
        assert!(err.to_string().contains("--config"), "{err}");
    }

    #[test]
    fn tag_ttl_zero_always_revalidates_never_pins_and_durations_parse() {
        let ttl = |v: &str| {
            Config::from_toml(&format!("[cache]\ntag_ttl = {v}\n"))
                .map(|c| c.cache.tag_ttl)
                .map_err(|e| e.to_string())
        };
        assert_eq!(ttl("\"0\""), Ok(TagTtl(Some(Duration::ZERO))));
        assert_eq!(ttl("0"), Ok(TagTtl(Some(Duration::ZERO))));
        assert_eq!(ttl("\"never\""), Ok(TagTtl(None)));
        assert_eq!(ttl("\"10m\""), Ok(TagTtl(Some(Duration::from_secs(600)))));
        assert_eq!(ttl("90"), Ok(TagTtl(Some(Duration::from_secs(90)))));
        let err = ttl("\"sometimes\"").unwrap_err();
        assert!(err.contains("tag_ttl"), "{err}");
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.cache.tag_ttl, TagTtl(Some(Duration::from_secs(600))));
        assert_eq!(c.cache.revalidate_timeout, Duration::from_secs(3));
        let err = Config::from_toml("[cache]\nrevalidate_timeout = \"0s\"\n").unwrap_err();
        assert!(
            err.to_string().contains("cache.revalidate_timeout"),
            "{err}"
        );
    }

    #[test]
    fn serving_timeouts_default_parse_and_refuse_zero() {
        let pick = |c: &Config, key: &str| match key {
            "server.header_read_timeout" => c.server.header_read_timeout,
            "web.header_read_timeout" => c.web.header_read_timeout,
            "web.request_timeout" => c.web.request_timeout,
            _ => unreachable!("{key}"),
        };
        for key in [
            "server.header_read_timeout",
            "web.header_read_timeout",
            "web.request_timeout",
        ] {
            let (section, name) = key.split_once('.').unwrap();
            let c = Config::from_toml("").unwrap();
            assert_eq!(pick(&c, key), Duration::from_secs(30), "{key} default");
            let c = Config::from_toml(&format!("[{section}]\n{name} = \"5s\"\n")).unwrap();
            assert_eq!(pick(&c, key), Duration::from_secs(5), "{key}");
            let err = Config::from_toml(&format!("[{section}]\n{name} = \"0s\"\n")).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    const UPSTREAM: &str =
        "[[upstream]]\nname = \"up\"\nhosts = [\"registry.test\"]\nurl = \"http://127.0.0.1:1\"\n";

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the error type
    fn upstream_secrets_come_from_env_or_files_and_do_not_print() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SHIMMER_TEST_UP_PASSWORD", "pw-from-env");
            jail.set_env("SHIMMER_TEST_UP_TOKEN", "token-from-env");
            jail.create_file("password.txt", "pw-from-file\n")?;
            jail.create_file("token.txt", "token-from-file\r\n")?;
            let dir = jail.directory().to_owned();
            let load = |extra: &str| {
                let c = Config::from_toml(&format!("{UPSTREAM}{extra}")).unwrap();
                c.upstreams[0].clone()
            };
            let u = load("username = \"me\"\npassword_env = \"SHIMMER_TEST_UP_PASSWORD\"\n");
            let p = u.as_backend().resolve_password().unwrap().unwrap();
            assert_eq!(p.expose(), "pw-from-env");
            let u = load(&format!(
                "username = \"me\"\npassword_file = \"{}\"\n",
                dir.join("password.txt").display()
            ));
            let p = u.as_backend().resolve_password().unwrap().unwrap();
            assert_eq!(
                p.expose(),
                "pw-from-file",
                "one trailing newline is dropped"
            );
            let u = load("token_env = \"SHIMMER_TEST_UP_TOKEN\"\n");
            assert_eq!(
                u.resolve_token().unwrap().unwrap().expose(),
                "token-from-env"
            );
            let u = load(&format!(
                "token_file = \"{}\"\n",
                dir.join("token.txt").display()
            ));
            assert_eq!(
                u.resolve_token().unwrap().unwrap().expose(),
                "token-from-file"
            );
            let u = load("token = \"inline\"\ntoken_env = \"SHIMMER_TEST_UP_TOKEN\"\n");
            assert_eq!(
                u.resolve_token().unwrap().unwrap().expose(),
                "inline",
                "first set wins"
            );
            let u = load("");
            assert_eq!(u.resolve_token().unwrap(), None);

            // Missing sources are errors naming the key.
            let u = load("token_env = \"SHIMMER_TEST_UP_UNSET\"\n");
            let err = u.resolve_token().unwrap_err().to_string();
            assert!(err.contains("upstream.up.token_env"), "{err}");
            let u = load("token_file = \"/nonexistent/token\"\n");
            let err = u.resolve_token().unwrap_err().to_string();
            assert!(err.contains("upstream.up.token_file"), "{err}");
            let u = load("password_env = \"SHIMMER_TEST_UP_UNSET\"\n");
            let err = u.as_backend().resolve_password().unwrap_err().to_string();
            assert!(err.contains("password_env"), "{err}");
            let u = load("password_file = \"/nonexistent/pw\"\n");
            let err = u.as_backend().resolve_password().unwrap_err().to_string();
            assert!(err.contains("password_file"), "{err}");

            // Inline secrets never print.
            let c = Config::from_toml(&format!(
                "{UPSTREAM}password = \"hunter2-secret\"\ntoken = \"tok-secret\"\n"
            ))
            .unwrap();
            let printed = format!("{c:?}");
            assert!(!printed.contains("hunter2-secret") && !printed.contains("tok-secret"));
            Ok(())
        });
    }

    /// The README's Configuration tables and shimmer.example.toml name the same options, each in
    /// the same section (set or commented out in the example): the example claims to hold every
    /// option, and the README to document them.
    #[test]
    fn the_example_configuration_has_every_documented_option() {
        let readme = include_str!("../../README.md");
        let tables = readme
            .split("\n## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("README has a Configuration section");
        // The backticked names in a table row's first cell (`a`, `b` / `c`) or a heading.
        let names = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(|n| n.trim_matches(|c| c == '[' || c == ']').to_owned())
                .collect()
        };
        let mut documented = Vec::new();
        let mut section = String::new();
        for line in tables.lines() {
            if let Some(heading) = line.strip_prefix("### ") {
                section = names(heading).first().cloned().unwrap_or_default();
            } else if let Some(row) = line.strip_prefix("| `") {
                let cell = format!("`{}", row.split('|').next().unwrap_or_default());
                for name in names(&cell) {
                    documented.push(match name.split_once('.') {
                        Some((s, k)) => (s.to_owned(), k.to_owned()),
                        None => (section.clone(), name),
                    });
                }
            }
        }
        assert!(documented.len() > 50, "parsed {documented:?}");

        let mut example = std::collections::HashSet::new();
        let mut section = String::new();
        for line in include_str!("../../shimmer.example.toml").lines() {
            let line = line.trim_start_matches(['#', ' ']);
            if line.starts_with('[') {
                let end = line.find(']').unwrap_or(line.len());
                section = line[..end].trim_matches('[').to_owned();
            } else if let Some((key, _)) = line.split_once('=')
                && !key.trim().is_empty()
                && key
                    .trim()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            {
                example.insert((section.clone(), key.trim().to_owned()));
            }
        }
        let missing: Vec<_> = documented
            .iter()
            .filter(|(s, k)| !example.contains(&(s.clone(), k.clone())))
            .map(|(s, k)| format!("{s}.{k}"))
            .collect();
        assert!(
            missing.is_empty(),
            "documented in the README, missing from shimmer.example.toml: {missing:?}"
        );
        let undocumented: Vec<_> = example
            .iter()
            .filter(|entry| !documented.contains(entry))
            .map(|(s, k)| format!("{s}.{k}"))
            .collect();
        assert!(
            undocumented.is_empty(),
            "in shimmer.example.toml, not in the README's tables: {undocumented:?}"
        );
    }

    #[test]
    fn the_shipped_example_configurations_load() {
        for (name, text) in [
            (
                "shimmer.example.toml",
                include_str!("../../shimmer.example.toml"),
            ),
            (
                "deploy/shimmer.compose.toml",
                include_str!("../../deploy/shimmer.compose.toml"),
            ),
        ] {
            let config = Config::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!config.backends.is_empty(), "{name}");
        }
        let example = Config::from_toml(include_str!("../../shimmer.example.toml")).unwrap();
        assert_eq!(
            example.visibility("primary", "internal/x"),
            Some(Visibility::Private)
        );
        assert_eq!(example.visibility("primary", "acme/x"), None);
    }

    #[test]
    fn indexer_values_that_cannot_work_are_refused_naming_their_key() {
        for (toml, key) in [
            ("lease = \"0s\"", "indexer.lease"),
            ("lease = \"1ms\"", "indexer.lease"),
            ("poll_interval = \"0s\"", "indexer.poll_interval"),
            ("job_timeout = \"0s\"", "indexer.job_timeout"),
            ("max_attempts = 0", "indexer.max_attempts"),
            ("max_attempts = -1", "indexer.max_attempts"),
            ("retry_base = \"2h\"", "indexer.retry_base"),
        ] {
            let err = Config::from_toml(&format!("[indexer]\n{toml}\n")).unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{key}`")),
                "{toml}: {err}"
            );
        }
        let c = Config::from_toml("[indexer]\nlease = \"1s\"\nretry_base = \"0s\"\n").unwrap();
        assert_eq!(c.indexer.job_timeout, Duration::from_secs(600));
        assert_eq!(c.indexer.keep_done_jobs, Duration::from_secs(7 * 24 * 3600));
    }
}
