//! The marketplace's shared state: the pool, the configuration every handler reads, the asset
//! names and the renderer. Built once per server by [`AppState::new`]; handlers get it as
//! `State<Arc<AppState>>` and never change it.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::FromRef,
    http::{HeaderMap, header},
};
use shimmer_config::Config;
use sqlx::PgPool;

use crate::{assets::Assets, http::Caching, render};

/// What every handler reads.
pub struct AppState {
    pub pool: PgPool,
    /// Prefix of immutable URLs: `""` (same host) or a CDN base without a trailing slash.
    pub public_base: String,
    reader_tokens: Vec<String>,
    pub page_max_age: Duration,
    pub page_size: u32,
    /// Longest a request may take before it is answered 503 (`web.request_timeout`).
    pub request_timeout: Duration,
    /// The registry host clients pull from, for the install lines, when `[server] public_url`
    /// names it; otherwise it is taken from each request (see [`AppState::registry_host`]).
    registry_host: Option<String>,
    /// The port the shim listens on, for install lines built from a request's `Host`.
    registry_port: u16,
    pub assets: Assets,
    /// Markdown, schema trees and large YAML, rendered off the runtime and cached.
    pub render: render::Renderer,
}

impl AppState {
    pub fn new(config: &Config, pool: PgPool) -> Self {
        let public_base = config
            .web
            .public_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let registry_host = config.server.public_url.as_ref().map(|u| {
            let host = u.host_str().unwrap_or("localhost");
            match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_owned(),
            }
        });
        Self {
            pool,
            assets: Assets::new(&public_base),
            public_base,
            reader_tokens: config
                .web
                .reader_tokens
                .iter()
                .map(|t| t.expose().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
            page_max_age: config.web.page_max_age,
            page_size: config.web.page_size.clamp(1, 100),
            request_timeout: config.web.request_timeout,
            registry_host,
            registry_port: config.server.listen.port(),
            render: render::Renderer::default(),
        }
    }

    /// The registry host for install lines: `[server] public_url`'s host when set; otherwise
    /// the host name the request was addressed to (its `Host` header, when it is a plain host
    /// name or IP literal) with the shim's listen port, as the shim normally runs beside the
    /// web on the same machine name; `localhost` with that port when the header is absent or
    /// malformed. Never the listen address itself (`0.0.0.0` is no place to pull from).
    pub fn registry_host(&self, headers: &HeaderMap) -> String {
        if let Some(h) = &self.registry_host {
            return h.clone();
        }
        let name = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .and_then(host_name)
            .unwrap_or("localhost");
        format!("{name}:{}", self.registry_port)
    }

    /// Whether the request carries a reader token (and may see private packages).
    pub fn is_reader(&self, headers: &HeaderMap) -> bool {
        if self.reader_tokens.is_empty() {
            return false;
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix("shimmer_token="));
        bearer.into_iter().chain(cookie).any(|t| {
            self.reader_tokens
                .iter()
                .any(|r| constant_time_eq(r.as_bytes(), t.as_bytes()))
        })
    }

    /// The URL of an object's docs page (absolute on the CDN host when one is configured).
    pub fn docs_url(&self, digest: &str) -> String {
        format!("{}/docs/{digest}", self.public_base)
    }

    /// How a page (or its JSON twin) that changes may be cached: `web.page_max_age`, publicly
    /// unless the request is a reader's (it may show private packages).
    pub fn page_caching(&self, reader: bool) -> Caching {
        Caching::Page {
            max_age: self.page_max_age.as_secs(),
            public: !reader,
        }
    }

    /// Whether install lines name `[server] public_url` (else each request's `Host`).
    pub fn fixed_registry_host(&self) -> bool {
        self.registry_host.is_some()
    }
}

/// The asset handler takes the assets alone.
impl FromRef<Arc<AppState>> for Assets {
    fn from_ref(state: &Arc<AppState>) -> Self {
        state.assets.clone()
    }
}

/// The host name of a `Host` header value (`name`, `name:port`, `[v6]`, `[v6]:port`) when it is
/// a DNS name or IP literal made of the characters those allow.
fn host_name(value: &str) -> Option<&str> {
    let name = if value.starts_with('[') {
        &value[..=value.find(']')?]
    } else {
        value.split(':').next()?
    };
    let rest = &value[name.len()..];
    let port_ok = rest.is_empty()
        || rest.strip_prefix(':').is_some_and(|p| {
            !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
        });
    let ok = !name.is_empty()
        && name.len() <= 253
        && port_ok
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
        && !name.starts_with(['.', '-']);
    ok.then_some(name)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn state(extra: &str) -> AppState {
        let config = Config::from_toml(&format!(
            "{extra}\n[database]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n\
             [[backend]]\nname = \"b\"\nurl = \"http://127.0.0.1:1\"\n\
             [[route]]\nprefix = \"\"\nbackend = \"b\"\n"
        ))
        .unwrap();
        let pool = shimmer_store::connect_lazy(&config.database).unwrap();
        AppState::new(&config, pool)
    }

    fn host(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(value).unwrap());
        h
    }

    #[tokio::test]
    async fn install_lines_name_the_public_url_else_the_requested_host() {
        let s = state("[server]\nlisten = \"0.0.0.0:5000\"");
        assert_eq!(
            s.registry_host(&host("web.example.com:8080")),
            "web.example.com:5000"
        );
        assert_eq!(s.registry_host(&host("bad_host")), "localhost:5000");
        assert_eq!(s.registry_host(&HeaderMap::new()), "localhost:5000");
        let s = state("[server]\npublic_url = \"https://registry.example.com\"");
        assert_eq!(
            s.registry_host(&host("web.example.com")),
            "registry.example.com"
        );
        let s = state("[server]\npublic_url = \"http://registry.example.com:5443/\"");
        assert_eq!(
            s.registry_host(&HeaderMap::new()),
            "registry.example.com:5443"
        );
    }

    #[test]
    fn host_headers_are_validated() {
        assert_eq!(host_name("example.com"), Some("example.com"));
        assert_eq!(host_name("example.com:8080"), Some("example.com"));
        assert_eq!(host_name("[::1]:8080"), Some("[::1]"));
        assert_eq!(host_name("10.0.0.1"), Some("10.0.0.1"));
        assert_eq!(host_name("bad_host"), None);
        assert_eq!(host_name("a\"><script>"), None);
        assert_eq!(host_name("example.com:http"), None);
        assert_eq!(host_name(""), None);
        assert_eq!(host_name("-x.com"), None);
    }
}
