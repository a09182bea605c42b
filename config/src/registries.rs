//! The registries a shimmer process talks to: `[[backend]]` (read and written through the shim),
//! `[[route]]` (which repository goes to which backend), `[[upstream]]` (read-only registries
//! chosen by `?ns=`), and `[cache]` (the pull-through cache of upstream content).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;
use url::Url;

use crate::{ConfigError, Secret, duration};

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

/// How the shim answers the referrers API for a backend (distribution spec 1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Referrers {
    /// Find out from the backend's first answers and remember: one that answers the referrers
    /// API is passed through; one that has no such route is emulated.
    #[default]
    Auto,
    /// The shim serves referrers from the `sha256-<hex>` fallback tags it keeps on the backend.
    Emulate,
    /// Always pass referrers requests through.
    Passthrough,
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
    /// The referrers API for a backend without it: `auto`, `emulate` or `passthrough`.
    #[serde(default)]
    pub referrers: Referrers,
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
            referrers: Referrers::Auto,
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
        use duration::Raw;
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
