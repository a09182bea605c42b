//! Upstream registries chosen by containerd's `?ns=<host>` parameter (pull-through mirrors).
//!
//! `ns` is untrusted: it is only ever a key into the configured upstreams, never a host to dial
//! (no open proxy). It is stripped before forwarding and echoed in `OCI-Namespace`. There is no
//! fallback from one upstream to another (a squatter on one registry must not shadow a name on
//! another), a client's own credentials never go upstream (the upstream's come from
//! configuration), and upstreams are read-only.

use std::{collections::HashMap, sync::Arc};

use base64::{Engine, engine::general_purpose::STANDARD};
use http::HeaderValue;
use shimmer_config::{Config, normalize_registry_host};

use crate::backend::{Backend, BackendError};

pub const OCI_NAMESPACE: &str = "oci-namespace";

/// One configured upstream.
#[derive(Debug)]
pub struct Upstream {
    pub backend: Arc<Backend>,
    /// `Authorization` the shim sends upstream, from configuration.
    pub authorization: Option<HeaderValue>,
    /// Whether pulls from it go through the cache (when one is configured).
    pub cache: bool,
}

/// Upstreams by normalised host name.
#[derive(Debug, Default)]
pub struct Upstreams {
    by_host: HashMap<String, Arc<Upstream>>,
}

impl Upstreams {
    pub fn from_config(config: &Config) -> Result<Self, BackendError> {
        let mut by_host = HashMap::new();
        for u in &config.upstreams {
            let backend = Backend::from_config(&u.as_backend())?;
            let authorization = match (&u.token, &backend.credentials) {
                (Some(token), _) => Some(format!("Bearer {}", token.expose())),
                (None, Some((user, pass))) => Some(format!(
                    "Basic {}",
                    STANDARD.encode(format!("{user}:{}", pass.expose()))
                )),
                (None, None) => None,
            }
            .map(|v| {
                let mut v = HeaderValue::from_str(&v).expect("credentials are header-safe");
                v.set_sensitive(true);
                v
            });
            let upstream = Arc::new(Upstream {
                backend,
                authorization,
                cache: u.cache,
            });
            for h in &u.hosts {
                by_host.insert(normalize_registry_host(h), upstream.clone());
            }
        }
        Ok(Self { by_host })
    }

    /// The upstream configured for the host `ns` names, if any.
    pub fn get(&self, ns: &str) -> Option<&Arc<Upstream>> {
        self.by_host.get(&normalize_registry_host(ns))
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
                .authorization
                .as_ref()
                .unwrap(),
            "Basic dTpw"
        );
    }
}
