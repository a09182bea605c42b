//! Registry token auth relayed by the shim: for a backend that stores the shim's repositories
//! under a `repository_prefix`, and for one with `relay_tokens`.
//!
//! A client that meets a `Bearer` challenge asks the challenge's `realm` for a token scoped to the
//! repository *it* names (`repository:acme/x:pull`), but the backend only accepts a token for the
//! repository it stores (`repository:mirror/acme/x:pull`). So, for a prefixed backend, the shim
//! points each challenge's realm at its own `/token/<backend>` and names the scopes in it by the
//! shim's names. A backend with `relay_tokens` gets the same without the renaming: for a token
//! service on a network the shim reaches and its clients do not. A token request there goes on to the realm the backend named, each
//! repository scope renamed to the backend's name, with the client's `Authorization` (which so
//! reaches the token service of the backend the client's request routed to, and no other); the
//! token service's answer comes back unchanged.
//!
//! The realm a token request goes to is only ever one the backend itself named in a challenge
//! (learnt from its answers, or by asking its `GET /v2/`), never a URL from the client. Any other
//! backend is left alone: its challenges reach the client unchanged and the client asks its realm
//! directly.

use std::sync::Arc;

use axum::{
    body::{Body, Bytes},
    extract::{Path, RawQuery, State},
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use url::form_urlencoded;

use shimmer_registry::auth::{bearer_params, is_http_url};

use crate::{AppState, backend::Backend, error::OciError};

/// Largest token request body (an OAuth2 form: grant, credentials, scopes) the shim sends on.
pub const FORM_LIMIT: usize = 64 * 1024;
/// Largest token service answer the shim relays (a token is a few KiB).
const ANSWER_LIMIT: usize = 1024 * 1024;

/// Request headers a token request keeps on its way to the token service.
const SENT_ON: [header::HeaderName; 4] = [
    header::AUTHORIZATION,
    header::ACCEPT,
    header::USER_AGENT,
    header::CONTENT_TYPE,
];
/// Answer headers the client gets back from the token service.
const SENT_BACK: [header::HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::WWW_AUTHENTICATE,
    header::CACHE_CONTROL,
    header::PRAGMA,
];

/// The shim's token endpoint for `backend`, as a client reaching the shim with `headers` can use
/// it: on `public_url` when configured, else on the `Host` the client named (`https` when a load
/// balancer in front says it terminated TLS).
pub fn endpoint_url(public_base: &str, headers: &HeaderMap, backend: &Backend) -> Option<String> {
    let base = if public_base.is_empty() {
        let host = headers.get(header::HOST)?.to_str().ok()?;
        host.parse::<http::uri::Authority>().ok()?;
        let tls = headers
            .get("x-forwarded-proto")
            .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
        format!("{}://{host}", if tls { "https" } else { "http" })
    } else {
        public_base.to_owned()
    };
    let name: String =
        percent_encoding::utf8_percent_encode(&backend.name, percent_encoding::NON_ALPHANUMERIC)
            .collect();
    Some(format!("{base}/token/{name}"))
}

/// Points the `Bearer` challenges in a relayed backend's answer at `token_url` (the shim's
/// endpoint for the backend), their scopes named by the shim's names, and remembers the realm
/// they named. Other challenges (`Basic`) are left as they are.
pub fn rewrite_challenges(headers: &mut HeaderMap, backend: &Backend, token_url: &str) {
    let header::Entry::Occupied(mut entry) = headers.entry(header::WWW_AUTHENTICATE) else {
        return;
    };
    for value in entry.iter_mut() {
        let Some(params) = value.to_str().ok().and_then(bearer_params) else {
            continue;
        };
        let Some(realm) = http_realm(&params) else {
            continue;
        };
        backend.token_realm.learn(realm);
        let rewritten = params
            .iter()
            .map(|(k, v)| {
                let v = match k.as_str() {
                    "realm" => token_url.to_owned(),
                    "scope" => {
                        let to_shim = |name: &str| {
                            name.strip_prefix(backend.endpoint().prefix.as_str())
                                .map(str::to_owned)
                        };
                        map_scopes(v, to_shim, true)
                    }
                    _ => v.clone(),
                };
                format!("{k}={}", quote(&v))
            })
            .collect::<Vec<_>>()
            .join(",");
        if let Ok(v) = HeaderValue::from_str(&format!("Bearer {rewritten}")) {
            *value = v;
        }
    }
}

/// `GET` or `POST /token/<backend>`: a client's token request for a relayed backend, sent on
/// to the backend's token service (see the module docs).
pub async fn handle(
    State(state): State<AppState>,
    Path(name): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    relay(&state, &name, method, query.as_deref(), &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Kept whole: one token exchange: checked, renamed, sent and answered in order.
async fn relay(
    state: &AppState,
    name: &str,
    method: Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, OciError> {
    let no_service = || {
        OciError::not_found(format!(
            "no token service is relayed for {name:?}: only a backend with a repository_prefix \
             or relay_tokens, whose registry asks for tokens, has one here"
        ))
    };
    let backend = state
        .routes
        .backend(name)
        .filter(|b| b.relay_tokens)
        .ok_or_else(no_service)?;
    let realm = match backend.token_realm.get() {
        Some(realm) => realm,
        None => ask_realm(backend).await?.ok_or_else(no_service)?,
    };
    let mut url = url::Url::parse(&realm).map_err(|_| no_service())?;
    // Only repositories the shim routes to this backend are asked for, by the backend's names;
    // any other repository scope is left out.
    let to_backend = |scopes: &str| {
        let rename = |name: &str| {
            let routed = state.routes.route(name)?;
            Arc::ptr_eq(routed, backend).then(|| backend.endpoint().backend_repo(name))
        };
        Some(map_scopes(scopes, rename, false)).filter(|s| !s.is_empty())
    };
    if let Some(q) = query {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            match &*k {
                "scope" => to_backend(&v).map(|v| pairs.append_pair(&k, &v)),
                _ => Some(pairs.append_pair(&k, &v)),
            };
        }
    }
    let mut req = backend.conn.http.request(method.clone(), url);
    for name in &SENT_ON {
        for v in headers.get_all(name) {
            req = req.header(name, v);
        }
    }
    if method == Method::POST {
        // An OAuth2 token request (`grant_type=password` or `refresh_token`): its scopes are in
        // the form.
        let form: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(
                form_urlencoded::parse(&body).filter_map(|(k, v)| match &*k {
                    "scope" => to_backend(&v).map(|v| (k.clone(), v.into())),
                    _ => Some((k, v)),
                }),
            )
            .finish();
        req = req.body(form);
    }
    let mut answer = req.send().await.map_err(|error| {
        tracing::warn!(backend = %backend.name, %error, "token service unreachable");
        OciError::backend_unavailable(&backend.name)
    })?;
    let mut out = Response::builder().status(answer.status());
    for name in &SENT_BACK {
        for v in answer.headers().get_all(name) {
            out = out.header(name, v);
        }
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|error| {
        tracing::warn!(backend = %backend.name, %error, "token service failed mid-answer");
        OciError::backend_unavailable(&backend.name)
    })? {
        if bytes.len() + chunk.len() > ANSWER_LIMIT {
            tracing::warn!(backend = %backend.name, "token service answer over {ANSWER_LIMIT} bytes");
            return Err(OciError::backend_unavailable(&backend.name));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(out
        .body(Body::from(bytes))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response()))
}

/// The realm `backend` names in the challenge of its `GET /v2/`, remembered; `None` if it asks
/// for no token (also remembered, for [`crate::realm::NO_REALM_MEMORY`]). For a token request
/// that reaches a shim before any challenge from the backend has (another process of a
/// deployment handed out the challenge).
async fn ask_realm(backend: &Arc<Backend>) -> Result<Option<String>, OciError> {
    if backend.token_realm.lately_none() {
        return Ok(None);
    }
    let answer = backend
        .conn
        .http
        .get(backend.endpoint().url("/v2/", None))
        .send()
        .await
        .map_err(|error| {
            tracing::warn!(backend = %backend.name, %error, "backend unreachable");
            OciError::backend_unavailable(&backend.name)
        })?;
    let realm = answer
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok().and_then(bearer_params))
        .find_map(|params| http_realm(&params).map(str::to_owned));
    match &realm {
        Some(realm) => backend.token_realm.learn(realm),
        None => backend.token_realm.learn_none(),
    }
    Ok(realm)
}

/// The `realm` of a `Bearer` challenge's parameters, if it is an `http(s)` URL.
fn http_realm(params: &[(String, String)]) -> Option<&str> {
    params
        .iter()
        .find(|(k, v)| k == "realm" && is_http_url(v))
        .map(|(_, realm)| realm.as_str())
}

/// Renames the repository in each space-separated scope (`repository:<name>:<actions>`, or
/// `repository(<class>):...`) with `rename`. A scope `rename` declines (or a repository scope
/// that does not parse) stays as it is with `keep_declined`, else is left out; other scopes stay.
fn map_scopes(
    scopes: &str,
    rename: impl Fn(&str) -> Option<String>,
    keep_declined: bool,
) -> String {
    scopes
        .split(' ')
        .filter(|scope| !scope.is_empty())
        .filter_map(|scope| {
            let (kind, rest) = scope.split_once(':').unwrap_or((scope, ""));
            if kind != "repository" && !kind.starts_with("repository(") {
                return Some(scope.to_owned());
            }
            let renamed = rest
                .rsplit_once(':')
                .and_then(|(name, actions)| Some(format!("{kind}:{}:{actions}", rename(name)?)));
            renamed.or_else(|| keep_declined.then(|| scope.to_owned()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `v` as an RFC 9110 quoted string.
fn quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::test_backend;

    #[test]
    fn scopes_are_renamed_for_repositories_only() {
        let prefix = |n: &str| (!n.starts_with("other")).then(|| format!("mirror/{n}"));
        assert_eq!(
            map_scopes("repository:acme/x:pull,push", prefix, false),
            "repository:mirror/acme/x:pull,push"
        );
        assert_eq!(
            map_scopes("repository:a:pull repository(plugin):b:pull", prefix, false),
            "repository:mirror/a:pull repository(plugin):mirror/b:pull"
        );
        assert_eq!(
            map_scopes("registry:catalog:*", prefix, false),
            "registry:catalog:*"
        );
        // Declined and malformed repository scopes are left out, or kept as they are.
        assert_eq!(
            map_scopes(
                "repository:other/b:pull repository:a repository:c:pull",
                prefix,
                false
            ),
            "repository:mirror/c:pull"
        );
        assert_eq!(
            map_scopes("repository:other/b:pull repository:a", prefix, true),
            "repository:other/b:pull repository:a"
        );
        let strip = |n: &str| n.strip_prefix("mirror/").map(str::to_owned);
        assert_eq!(
            map_scopes(
                "repository:mirror/a:pull repository:other:pull",
                strip,
                true
            ),
            "repository:a:pull repository:other:pull"
        );
    }

    #[test]
    fn bearer_challenges_are_pointed_at_the_shim_and_basic_ones_left() {
        let backend = test_backend("http://127.0.0.1:9", "mirror/");
        let mut headers = HeaderMap::new();
        headers.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:mirror/acme/x:pull",error="insufficient_scope""#,
            ),
        );
        headers.append(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="x""#),
        );
        rewrite_challenges(&mut headers, &backend, "http://shim:5000/token/b");
        let got: Vec<_> = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            got,
            [
                r#"Bearer realm="http://shim:5000/token/b",service="reg",scope="repository:acme/x:pull",error="insufficient_scope""#,
                r#"Basic realm="x""#
            ]
        );
        assert_eq!(
            backend.token_realm.get().as_deref(),
            Some("https://auth.example/token")
        );
    }

    #[test]
    fn the_endpoint_is_on_public_url_or_the_clients_host() {
        let backend = test_backend("http://127.0.0.1:9", "mirror/");
        let mut headers = HeaderMap::new();
        assert_eq!(endpoint_url("", &headers, &backend), None);
        headers.insert(header::HOST, HeaderValue::from_static("shim.example:5000"));
        assert_eq!(
            endpoint_url("", &headers, &backend).unwrap(),
            "http://shim.example:5000/token/b"
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert_eq!(
            endpoint_url("", &headers, &backend).unwrap(),
            "https://shim.example:5000/token/b"
        );
        assert_eq!(
            endpoint_url("https://reg.example/base", &headers, &backend).unwrap(),
            "https://reg.example/base/token/b"
        );
        headers.insert(header::HOST, HeaderValue::from_static("evil/path"));
        assert_eq!(endpoint_url("", &headers, &backend), None);
    }

    #[test]
    fn quoted_strings_escape_quotes_and_backslashes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
    }
}
