//! Upstream registries chosen by containerd's `?ns=<host>` parameter (pull-through mirrors).
//!
//! `ns` is untrusted: it is only ever a key into the configured upstreams, never a host to dial
//! (no open proxy). It is stripped before forwarding and echoed in `OCI-Namespace`. There is no
//! fallback from one upstream to another (a squatter on one registry must not shadow a name on
//! another), a client's own credentials never go upstream (the upstream's come from
//! configuration), and upstreams are read-only.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use http::{HeaderValue, StatusCode, header};
use shimmer_config::{Config, normalize_registry_host};

use crate::backend::{Backend, BackendError};

pub const OCI_NAMESPACE: &str = "oci-namespace";

/// One configured upstream.
#[derive(Debug)]
pub struct Upstream {
    pub backend: Arc<Backend>,
    /// `Authorization` the shim sends upstream before any challenge, from configuration (a
    /// static token, or Basic credentials).
    pub authorization: Option<HeaderValue>,
    /// Whether pulls from it go through the cache (when one is configured).
    pub cache: bool,
    /// Follows the upstream's blob redirects (object storage, a CDN) during a cache fill: the
    /// upstream's timeouts, no proxy from the environment, no redirects of its own (the cache
    /// follows a bounded number itself), no credentials.
    pub redirect_client: reqwest::Client,
    /// The upstream's `connect_timeout` and `read_timeout`: together they bound how long a
    /// cache fill may wait for an answer's head, redirects included.
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Whether `authorization` is a static token (then no token exchange happens).
    static_token: bool,
    /// The token service the upstream named in its `Bearer` challenge, once it has.
    realm: Mutex<Option<Challenge>>,
    /// Bearer tokens by scope, with when they stop being used.
    tokens: Mutex<HashMap<String, (HeaderValue, Instant)>>,
}

/// A registry's `WWW-Authenticate: Bearer realm="...",service="..."` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub service: Option<String>,
}

impl Challenge {
    /// Parses a `Bearer` challenge; anything else (Basic, malformed) is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let params = bearer_params(value)?;
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let realm = get("realm").filter(|r| is_http_url(r))?;
        Some(Self {
            realm,
            service: get("service"),
        })
    }
}

/// Whether a challenge's `realm` is one the shim may ask: an `http(s)` URL, never a file or other
/// scheme.
pub fn is_http_url(v: &str) -> bool {
    v.starts_with("https://") || v.starts_with("http://")
}

/// The parameters of a `Bearer` challenge (`Bearer realm="...",service="...",scope="..."`), in
/// order, keys in lower case, quoted values unescaped; `None` for any other scheme.
pub fn bearer_params(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value
        .trim()
        .strip_prefix("Bearer ")
        .or_else(|| value.trim().strip_prefix("bearer "))?;
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        params.push((key.trim().to_ascii_lowercase(), value));
    }
    Some(params)
}

/// How long a token is used when the service does not say (the spec's default is 60 s).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

impl Upstream {
    /// The `Authorization` to send for a pull from `repo`: a cached Bearer token for its scope
    /// once the upstream has challenged, else the configured credentials.
    pub fn authorization_for(&self, repo: &str) -> Option<HeaderValue> {
        if !self.static_token && self.realm.lock().expect("realm lock").is_some() {
            let tokens = self.tokens.lock().expect("token lock");
            if let Some((token, until)) = tokens.get(&scope(repo))
                && Instant::now() < *until
            {
                return Some(token.clone());
            }
        }
        self.authorization.clone()
    }

    /// After a 401: when the upstream asked for a Bearer token, fetches one for `repo` from
    /// its token service with the configured credentials (anonymously without any) and returns
    /// the header to retry with. `None`: nothing better to retry with.
    pub async fn authorize_after(
        &self,
        repo: &str,
        challenge: Option<&HeaderValue>,
    ) -> Option<HeaderValue> {
        if self.static_token {
            return None;
        }
        let challenge = Challenge::parse(challenge?.to_str().ok()?)?;
        *self.realm.lock().expect("realm lock") = Some(challenge.clone());
        let scope = scope(repo);
        let mut url = url::Url::parse(&challenge.realm).ok()?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = &challenge.service {
                q.append_pair("service", service);
            }
            q.append_pair("scope", &scope);
        }
        let mut req = self.backend.client.get(url);
        if let Some((user, pass)) = &self.backend.credentials {
            req = req.basic_auth(user, Some(pass.expose()));
        }
        let resp = match req.send().await {
            Ok(r) if r.status() == StatusCode::OK => r,
            Ok(r) => {
                tracing::warn!(upstream = %self.backend.name, status = %r.status(), "token service refused");
                return None;
            }
            Err(error) => {
                tracing::warn!(upstream = %self.backend.name, %error, "token service unreachable");
                return None;
            }
        };
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let body: TokenResponse = resp.json().await.ok()?;
        let token = body.token.or(body.access_token).filter(|t| !t.is_empty())?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
        value.set_sensitive(true);
        // Renew a little early.
        let lifetime = body.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME).max(10);
        let until = Instant::now() + Duration::from_secs(lifetime - lifetime / 10);
        let mut tokens = self.tokens.lock().expect("token lock");
        if tokens.len() > 10_000 {
            tokens.retain(|_, (_, u)| Instant::now() < *u);
        }
        tokens.insert(scope, (value.clone(), until));
        Some(value)
    }

    /// Sends a bodiless request built by `build` with this upstream's credentials; on a 401
    /// with a Bearer challenge, exchanges the credentials for a token and sends it again once.
    pub async fn send(
        &self,
        repo: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        let mut req = build();
        if let Some(auth) = self.authorization_for(repo) {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let resp = req.send().await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        match self
            .authorize_after(repo, resp.headers().get(header::WWW_AUTHENTICATE))
            .await
        {
            Some(auth) => build().header(header::AUTHORIZATION, auth).send().await,
            None => Ok(resp),
        }
    }
}

/// The token scope of a pull from `repo`.
fn scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// Upstreams by normalised host name, and the cache side of backends with `cache = true`.
#[derive(Debug, Default)]
pub struct Upstreams {
    by_host: HashMap<String, Arc<Upstream>>,
    backends: HashMap<String, Arc<Upstream>>,
}

impl Upstreams {
    pub fn from_config(config: &Config) -> Result<Self, BackendError> {
        let mut by_host = HashMap::new();
        for u in &config.upstreams {
            let backend = Backend::from_config(&u.as_backend())?;
            let token = u.resolve_token()?;
            let authorization = match (&token, &backend.credentials) {
                (Some(token), _) => Some(format!("Bearer {}", token.expose())),
                (None, Some((user, pass))) => Some(format!(
                    "Basic {}",
                    STANDARD.encode(format!("{user}:{}", pass.expose()))
                )),
                (None, None) => None,
            }
            .map(|v| {
                let mut v = HeaderValue::from_str(&v).map_err(|_| {
                    shimmer_config::ConfigError::Invalid {
                        key: format!("upstream.{}.token", u.name),
                        message: "contains characters a header cannot carry".into(),
                    }
                })?;
                v.set_sensitive(true);
                Ok::<_, BackendError>(v)
            })
            .transpose()?;
            let cfg = u.as_backend();
            let upstream = Arc::new(Upstream {
                backend,
                authorization,
                cache: u.cache,
                redirect_client: redirect_client(&cfg)?,
                connect_timeout: cfg.connect_timeout,
                read_timeout: cfg.read_timeout,
                static_token: token.is_some(),
                realm: Mutex::new(None),
                tokens: Mutex::new(HashMap::new()),
            });
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
            let authorization = backend.credentials.as_ref().map(|(user, pass)| {
                let mut v = HeaderValue::from_str(&format!(
                    "Basic {}",
                    STANDARD.encode(format!("{user}:{}", pass.expose()))
                ))
                .expect("credentials are header-safe");
                v.set_sensitive(true);
                v
            });
            backends.insert(
                b.name.clone(),
                Arc::new(Upstream {
                    backend,
                    authorization,
                    cache: true,
                    redirect_client: redirect_client(&cfg)?,
                    connect_timeout: cfg.connect_timeout,
                    read_timeout: cfg.read_timeout,
                    static_token: false,
                    realm: Mutex::new(None),
                    tokens: Mutex::new(HashMap::new()),
                }),
            );
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

/// The client that follows an upstream's blob redirects (see [`Upstream::redirect_client`]).
fn redirect_client(cfg: &shimmer_config::BackendConfig) -> Result<reqwest::Client, BackendError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(cfg.connect_timeout)
        .read_timeout(cfg.read_timeout)
        .build()
        .map_err(|e| BackendError::Tls {
            backend: cfg.name.clone(),
            what: "redirect client",
            message: e.to_string(),
        })
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

    #[test]
    fn bearer_challenges_are_parsed_and_others_are_not() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.docker.io/token");
        assert_eq!(c.service.as_deref(), Some("registry.docker.io"));
        let c =
            Challenge::parse(r#"Bearer service="s", realm="http://127.0.0.1:9/token""#).unwrap();
        assert_eq!(c.realm, "http://127.0.0.1:9/token");
        assert_eq!(Challenge::parse(r#"Basic realm="x""#), None);
        assert_eq!(
            Challenge::parse(r#"Bearer realm="file:///etc/passwd""#),
            None
        );
        assert_eq!(Challenge::parse("Bearer"), None);
    }
}
