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
mod validate;

use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use serde::Deserialize;

pub use registries::{
    BackendConfig, CacheConfig, ClientAuth, Referrers, RouteConfig, TagTtl, UpstreamConfig,
    Visibility, normalize_registry_host,
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
}

#[cfg(test)]
mod tests;
