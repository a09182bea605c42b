//! How shimmer authenticates to a registry with its own credentials (never a client's): a
//! static token or Basic credentials sent up front, and, once the registry answers with a
//! `Bearer` challenge, tokens from its token service, cached per scope until shortly before
//! they expire. One cache per registry, shared by every reader of it.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use http::{HeaderValue, StatusCode};
use shimmer_config::Secret;

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

/// Whether a challenge's `realm` is one shimmer may ask: an `http(s)` URL, never a file or
/// other scheme.
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

/// The token scope of a pull from `repo`.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The token scope of the catalog.
pub const CATALOG_SCOPE: &str = "registry:catalog:*";

/// How long a token is used when the service does not say (the spec's default is 60 s).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;
/// Scopes kept before expired tokens are swept.
const MAX_TOKENS: usize = 10_000;

/// A registry's credentials and the tokens they earned.
#[derive(Debug, Default)]
pub struct Auth {
    /// Sent before any challenge: a static token, or Basic credentials.
    initial: Option<HeaderValue>,
    /// Whether `initial` is a static token (then no token exchange happens).
    static_token: bool,
    /// Basic credentials for the token service.
    basic: Option<(String, Secret)>,
    /// The token service the registry named in its `Bearer` challenge, once it has.
    realm: Mutex<Option<Challenge>>,
    /// Bearer tokens by scope, with when they stop being used.
    tokens: Mutex<HashMap<String, (HeaderValue, Instant)>>,
}

/// A header value that is never logged.
fn sensitive(v: &str) -> Option<HeaderValue> {
    let mut v = HeaderValue::from_str(v).ok()?;
    v.set_sensitive(true);
    Some(v)
}

impl Auth {
    /// No credentials at all (tokens are still fetched anonymously when challenged).
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Basic credentials, sent up front and exchanged for tokens when the registry challenges.
    pub fn basic(credentials: Option<(String, Secret)>) -> Self {
        let initial = credentials.as_ref().and_then(|(user, pass)| {
            sensitive(&format!(
                "Basic {}",
                STANDARD.encode(format!("{user}:{}", pass.expose()))
            ))
        });
        Self {
            initial,
            basic: credentials,
            ..Self::default()
        }
    }

    /// A static bearer token; `None` when it holds characters a header cannot carry.
    pub fn token(token: &Secret) -> Option<Self> {
        Some(Self {
            initial: Some(sensitive(&format!("Bearer {}", token.expose()))?),
            static_token: true,
            ..Self::default()
        })
    }

    /// The `Authorization` to send for `scope`: a cached Bearer token once the registry has
    /// challenged, else the configured credentials.
    pub fn authorization_for(&self, scope: &str) -> Option<HeaderValue> {
        if !self.static_token && self.realm.lock().expect("realm lock").is_some() {
            let tokens = self.tokens.lock().expect("token lock");
            if let Some((token, until)) = tokens.get(scope)
                && Instant::now() < *until
            {
                return Some(token.clone());
            }
        }
        self.initial.clone()
    }

    /// After a 401: when the registry asked for a Bearer token, fetches one for `scope` from
    /// its token service with the configured credentials (anonymously without any) and returns
    /// the header to retry with. `None`: nothing better to retry with.
    pub async fn authorize_after(
        &self,
        http: &reqwest::Client,
        registry: &str,
        scope: &str,
        challenge: Option<&HeaderValue>,
    ) -> Option<HeaderValue> {
        if self.static_token {
            return None;
        }
        let challenge = Challenge::parse(challenge?.to_str().ok()?)?;
        *self.realm.lock().expect("realm lock") = Some(challenge.clone());
        let mut url = url::Url::parse(&challenge.realm).ok()?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(service) = &challenge.service {
                q.append_pair("service", service);
            }
            q.append_pair("scope", scope);
        }
        let mut req = http.get(url);
        if let Some((user, pass)) = &self.basic {
            req = req.basic_auth(user, Some(pass.expose()));
        }
        let resp = match req.send().await {
            Ok(r) if r.status() == StatusCode::OK => r,
            Ok(r) => {
                tracing::warn!(registry, status = %r.status(), "token service refused");
                return None;
            }
            Err(error) => {
                tracing::warn!(registry, %error, "token service unreachable");
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
        let value = sensitive(&format!("Bearer {token}"))?;
        // Renew a little early.
        let lifetime = body.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME).max(10);
        let until = Instant::now() + Duration::from_secs(lifetime - lifetime / 10);
        let mut tokens = self.tokens.lock().expect("token lock");
        if tokens.len() > MAX_TOKENS {
            tokens.retain(|_, (_, u)| Instant::now() < *u);
        }
        tokens.insert(scope.to_owned(), (value.clone(), until));
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn credentials_go_up_front_until_a_challenge() {
        let auth = Auth::basic(Some(("u".into(), Secret::new("p"))));
        assert_eq!(auth.authorization_for("s").unwrap(), "Basic dTpw");
        assert!(Auth::anonymous().authorization_for("s").is_none());
        let auth = Auth::token(&Secret::new("t")).unwrap();
        assert_eq!(auth.authorization_for("s").unwrap(), "Bearer t");
        assert!(Auth::token(&Secret::new("bad\ntoken")).is_none());
    }
}
