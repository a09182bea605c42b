//! Checking a loaded configuration: every refusal names its key. Loading (file, then
//! environment) is in `lib.rs`; what each key means is in its section's module.

use std::collections::HashSet;

use crate::{Config, ConfigError, normalize_registry_host};

impl Config {
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
        let mut names = HashSet::new();
        self.validate_backends(&mut names)?;
        self.validate_upstreams(&mut names)?;
        self.validate_routes()?;
        self.validate_limits()?;
        self.indexer.validate()
    }

    /// Backends: named, each once, an http(s) URL, a client certificate with its key, a
    /// repository prefix ending in `/`.
    fn validate_backends<'a>(&'a self, names: &mut HashSet<&'a str>) -> Result<(), ConfigError> {
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
        Ok(())
    }

    /// Upstreams: a name no backend or upstream has, hosts each served once, an http(s) URL, a
    /// client certificate with its key.
    fn validate_upstreams<'a>(&'a self, names: &mut HashSet<&'a str>) -> Result<(), ConfigError> {
        let mut hosts = HashSet::new();
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
        Ok(())
    }

    /// Routes and the ping backend: each names a configured backend, each prefix once.
    fn validate_routes(&self) -> Result<(), ConfigError> {
        let mut prefixes = HashSet::new();
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
        Ok(())
    }

    /// Timeouts that must not be zero, and sizes that must be in range.
    fn validate_limits(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }
}
