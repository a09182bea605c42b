//! Upstream registries chosen by containerd's `?ns=<host>` parameter (pull-through mirrors).
//!
//! `ns` is untrusted: it is only ever a key into the configured upstreams, never a host to dial
//! (no open proxy). It is stripped before forwarding and echoed in `OCI-Namespace`. There is no
//! fallback from one upstream to another (a squatter on one registry must not shadow a name on
//! another), a client's own credentials never go upstream (the upstream's come from
//! configuration), and upstreams are read-only.

use std::{collections::HashMap, sync::Arc};

use shimmer_config::{Config, normalize_registry_host};
use shimmer_registry::{Auth, Client, RegistryError};

use crate::backend::Backend;

pub const OCI_NAMESPACE: &str = "oci-namespace";

/// One configured upstream: the backend the shim forwards to, and the registry client that
/// carries the upstream's configured credentials (never a client's).
#[derive(Debug)]
pub struct Upstream {
    pub backend: Arc<Backend>,
    /// The upstream's credentials (a static token, or Basic credentials exchanged for tokens
    /// when it challenges), on the same connection as `backend`.
    pub client: Client,
    /// Whether pulls from it go through the cache (when one is configured).
    pub cache: bool,
}

impl Upstream {
    fn new(backend: Arc<Backend>, auth: Auth, cache: bool) -> Arc<Self> {
        let client = Client::new(backend.conn.clone(), Arc::new(auth));
        Arc::new(Self {
            backend,
            client,
            cache,
        })
    }
}

/// Upstreams by normalised host name, and the cache side of backends with `cache = true`.
#[derive(Debug, Default)]
pub struct Upstreams {
    by_host: HashMap<String, Arc<Upstream>>,
    backends: HashMap<String, Arc<Upstream>>,
}

impl Upstreams {
    pub fn from_config(config: &Config) -> Result<Self, RegistryError> {
        let mut by_host = HashMap::new();
        for u in &config.upstreams {
            let backend = Backend::from_config(&u.as_backend())?;
            let auth = match u.resolve_token()? {
                Some(token) => {
                    Auth::token(&token).ok_or_else(|| shimmer_config::ConfigError::Invalid {
                        key: format!("upstream.{}.token", u.name),
                        message: "contains characters a header cannot carry".into(),
                    })?
                }
                None => Auth::basic(backend.conn.credentials.clone()),
            };
            let upstream = Upstream::new(backend, auth, u.cache);
            for h in &u.hosts {
                by_host.insert(normalize_registry_host(h), upstream.clone());
            }
        }
        let mut backends = HashMap::new();
        for b in config.backends.iter().filter(|b| b.cache) {
            // Fills use shimmer's own credentials for the backend (the client's request has
            // been authorised by the backend before the cache is consulted).
            let cfg = shimmer_config::BackendConfig {
                repository_prefix: String::new(),
                ..b.clone()
            };
            let backend = Backend::from_config(&cfg)?;
            let auth = Auth::basic(backend.conn.credentials.clone());
            backends.insert(b.name.clone(), Upstream::new(backend, auth, true));
        }
        Ok(Self { by_host, backends })
    }

    /// Whether `name` names a configured upstream or a backend with `cache = true`: the only
    /// names the cache keeps content under.
    pub fn is_cache_name(&self, name: &str) -> bool {
        self.backends.contains_key(name) || self.by_host.values().any(|u| u.backend.name == name)
    }

    /// The cache side of a backend with `cache = true`.
    pub fn backend_cache(&self, backend: &str) -> Option<&Arc<Upstream>> {
        self.backends.get(backend)
    }

    /// The upstream configured for the host `ns` names, if any.
    pub fn get(&self, ns: &str) -> Option<&Arc<Upstream>> {
        if self.by_host.is_empty() {
            return None;
        }
        // Hosts are kept normalized, and normalizing is idempotent: a host already in that
        // form is looked up as it is (every request asks, for the host-in-path form).
        self.by_host
            .get(ns)
            .or_else(|| self.by_host.get(&normalize_registry_host(ns)))
    }
}

/// Whether `host` is Docker Hub under any of its names.
pub fn is_docker_hub(host: &str) -> bool {
    normalize_registry_host(host) == "docker.io"
}

/// Splits the `ns` parameter out of a query string, keeping every other pair verbatim.
pub fn take_ns(query: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(q) = query else {
        return (None, None);
    };
    let mut ns = None;
    let rest: Vec<&str> = q
        .split('&')
        .filter(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if k == "ns" {
                ns = url::form_urlencoded::parse(format!("v={v}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned());
                false
            } else {
                true
            }
        })
        .collect();
    let rest = (!rest.is_empty()).then(|| rest.join("&"));
    (ns, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_is_split_out_and_the_rest_kept_verbatim() {
        assert_eq!(take_ns(None), (None, None));
        assert_eq!(
            take_ns(Some("ns=docker.io")),
            (Some("docker.io".into()), None)
        );
        assert_eq!(
            take_ns(Some("n=10&ns=ghcr.io%3A443&last=a%2Fb")),
            (Some("ghcr.io:443".into()), Some("n=10&last=a%2Fb".into()))
        );
        assert_eq!(
            take_ns(Some("digest=sha256:x")),
            (None, Some("digest=sha256:x".into()))
        );
    }

    #[test]
    fn docker_hub_aliases_are_one_upstream() {
        let config = Config::from_toml(
            r#"
            [[upstream]]
            name = "hub"
            hosts = ["docker.io"]
            url = "http://127.0.0.1:1"
            username = "u"
            password = "p"
            "#,
        )
        .unwrap();
        let ups = Upstreams::from_config(&config).unwrap();
        for alias in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "Docker.IO:443",
        ] {
            assert_eq!(ups.get(alias).unwrap().backend.name, "hub", "{alias}");
        }
        assert!(ups.get("quay.io").is_none());
        assert_eq!(
            ups.get("docker.io")
                .unwrap()
                .client
                .auth()
                .authorization_for("repository:library/x:pull")
                .unwrap(),
            "Basic dTpw"
        );
    }
}
