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
mod registries;
mod routes;
mod secret;
mod services;

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

pub use registries::{
    BackendConfig, CacheConfig, ClientAuth, RouteConfig, TagTtl, UpstreamConfig, Visibility,
    normalize_registry_host,
};
pub use routes::RouteTable;
pub use secret::Secret;
pub use services::{DatabaseConfig, IndexerConfig, LogConfig, LogFormat, ServerConfig, WebConfig};

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
        let table = self.route_table();
        let route = table
            .route(repository)
            .map(|(_, r)| *r)
            .filter(|r| r.backend == backend);
        route.and_then(|r| r.visibility).or_else(|| {
            self.backends
                .iter()
                .find(|b| b.name == backend)
                .and_then(|b| b.visibility)
        })
    }

    /// The `[[route]]` table: which route a repository name falls under.
    pub fn route_table(&self) -> RouteTable<&RouteConfig> {
        RouteTable::new(self.routes.iter().map(|r| (r.prefix.clone(), r)))
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
mod tests;
