//! A registry token service (the `realm` of a `WWW-Authenticate: Bearer` challenge), for a real
//! docker-registry run with `auth.token`. Hand-written because no token server is packaged
//! here (Docker Hub's, Harbor's and docker_auth are not): it implements only what the
//! distribution token spec asks — `GET /token?service=&scope=` with optional Basic
//! credentials, answering `{"token", "access_token", "expires_in"}` with an RS256 JWT whose
//! `x5c` header carries the signing certificate the registry trusts; and its OAuth2 form,
//! `POST /token` with `grant_type=password` (containerd's first try when it has credentials). Keys and signatures come
//! from the `openssl` command. Every request is recorded, so tests can see who asked with what.

use std::{
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::registry::TokenAuth;

pub const SERVICE: &str = "testkit-registry";
pub const ISSUER: &str = "testkit-token-issuer";

/// One token request as received.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The first `scope` parameter.
    pub scope: Option<String>,
    /// Every `scope` parameter (clients ask for several at once, e.g. for a cross-repository
    /// mount: push on the target, pull on the source).
    pub scopes: Vec<String>,
    pub service: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// `GET`, or `POST` for the OAuth2 form.
    pub method: String,
    /// The OAuth2 form's `username` (its password is checked, not kept).
    pub username: Option<String>,
}

struct Inner {
    dir: TempDir,
    cert_der_b64: String,
    user: String,
    password: String,
    requests: Mutex<Vec<TokenRequest>>,
}

/// A running token service on a free loopback port.
pub struct TokenServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `openssl` with `args` (split at spaces) in `dir` and returns what it printed; panics
/// if it fails.
pub async fn openssl(dir: &Path, args: &str) -> Vec<u8> {
    let args: Vec<&str> = args.split_whitespace().collect();
    crate::daemon::tool_output("openssl", &args, dir).await
}

impl TokenServer {
    /// Grants pull and push on any repository to `user`:`password`; anonymous requests get a
    /// token with no access (as public registries do for private repositories).
    pub async fn start(user: &str, password: &str) -> TokenServer {
        let dir = tempfile::tempdir().expect("token server dir");
        let signer = "-subj /CN=testkit-token-signer -keyout key.pem -out cert.pem";
        openssl(
            dir.path(),
            &format!("req -x509 -newkey rsa:2048 -nodes -days 2 {signer}"),
        )
        .await;
        let der = openssl(dir.path(), "x509 -in cert.pem -outform DER").await;
        let inner = Arc::new(Inner {
            dir,
            cert_der_b64: STANDARD.encode(der),
            user: user.to_owned(),
            password: password.to_owned(),
            requests: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind token server");
        let addr = listener.local_addr().expect("token server address");
        let app = Router::new()
            .route("/token", get(token).post(oauth_token))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TokenServer { addr, inner, task }
    }

    /// The registry's `auth.token` settings for this service.
    pub fn registry_auth(&self) -> TokenAuth {
        TokenAuth {
            realm: format!("http://{}/token", self.addr),
            service: SERVICE.to_owned(),
            issuer: ISSUER.to_owned(),
            root_cert_bundle: self.cert_path(),
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.inner.dir.path().join("cert.pem")
    }

    /// Every token request so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.inner.requests.lock().expect("requests lock").clone()
    }
}

async fn token(
    State(inner): State<Arc<Inner>>,
    Query(params): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let scopes: Vec<String> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone());
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let credentials = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .map(|b64| STANDARD.decode(b64).unwrap_or_default());
    inner.record(TokenRequest {
        scope: scopes.first().cloned(),
        scopes: scopes.clone(),
        service,
        authorization,
        method: "GET".into(),
        username: None,
    });
    match issue(&inner, &scopes, credentials.as_deref()).await {
        Ok(jwt) => Json(serde_json::json!({"token": jwt, "access_token": jwt, "expires_in": 300}))
            .into_response(),
        Err(refused) => refused,
    }
}

/// The OAuth2 form (`grant_type=password`, `username`, `password`, space-separated `scope`).
async fn oauth_token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let scopes: Vec<String> = field("scope")
        .map(|s| {
            s.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let username = field("username");
    inner.record(TokenRequest {
        scope: scopes.first().cloned(),
        scopes: scopes.clone(),
        service: field("service"),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        method: "POST".into(),
        username: username.clone(),
    });
    if field("grant_type").as_deref() != Some("password") {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    let credentials = format!(
        "{}:{}",
        username.unwrap_or_default(),
        field("password").unwrap_or_default()
    );
    match issue(&inner, &scopes, Some(credentials.as_bytes())).await {
        Ok(jwt) => Json(serde_json::json!({
            "access_token": jwt, "expires_in": 300, "scope": scopes.join(" "),
        }))
        .into_response(),
        Err(refused) => refused,
    }
}

impl Inner {
    fn record(&self, request: TokenRequest) {
        self.requests.lock().expect("requests lock").push(request);
    }
}

/// A signed token granting `scopes` to the holder of `credentials` (`user:password`), or with no
/// access without any; wrong credentials are refused with a `401`.
async fn issue(
    inner: &Inner,
    scopes: &[String],
    credentials: Option<&[u8]>,
) -> Result<String, Response> {
    let granted = match credentials {
        None => false,
        Some(given) => {
            let expected = format!("{}:{}", inner.user, inner.password);
            if given != expected.as_bytes() {
                return Err((StatusCode::UNAUTHORIZED, "wrong credentials").into_response());
            }
            true
        }
    };
    // scope = repository:<name>:<actions>
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter(|_| granted)
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({
                "type": kind, "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [inner.cert_der_b64]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": if granted { inner.user.as_str() } else { "" }, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_id()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let input = format!("input-{}", rand_id());
    let input_path = inner.dir.path().join(&input);
    std::fs::write(&input_path, &signing_input).expect("write signing input");
    let signature = openssl(
        inner.dir.path(),
        &format!("dgst -sha256 -sign key.pem {input}"),
    )
    .await;
    let _ = std::fs::remove_file(&input_path);
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}
