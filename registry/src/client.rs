//! The registry reader: every request shimmer makes on its own account (the indexer's reads,
//! the cache's fills from upstreams, the CLI) goes through [`Client::send`], which attaches the
//! registry's credentials and answers one `Bearer` challenge. On top of it, the reads: manifests
//! and blobs verified against their digests and capped in size, tag and catalog paging, and
//! referrers with the spec's `sha256-<hex>` tag fallback.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use sha2::{Digest, Sha256};

use crate::{
    Auth, Connection, ErrorCode, RegistryError,
    auth::{CATALOG_SCOPE, pull_scope},
    fallback_tag, redirect, verify,
};

/// Every manifest media type shimmer reads.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The largest manifest read by default (the distribution spec lets registries refuse above
/// 4 MiB, and the shim's `server.max_manifest_bytes` defaults to it).
pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// The most of an error answer's body read for its envelope.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A registry with the credentials to read it: cheap to clone, shared token cache.
#[derive(Clone, Debug)]
pub struct Client {
    conn: Arc<Connection>,
    auth: Arc<Auth>,
    /// The token cache of anonymous reads ([`Client::anonymous`]), kept apart from `auth`'s:
    /// tokens earned with credentials would make every private repository look public.
    anonymous: Arc<Auth>,
    page_size: usize,
    max_manifest_bytes: u64,
}

impl Client {
    pub fn new(conn: Arc<Connection>, auth: Arc<Auth>) -> Self {
        Self {
            conn,
            auth,
            anonymous: Arc::new(Auth::anonymous()),
            page_size: 1000,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
        }
    }

    /// A connection set up from `cfg`, read with its own credentials.
    pub fn from_config(cfg: &shimmer_config::BackendConfig) -> Result<Self, RegistryError> {
        Ok(Self::with_own_credentials(Arc::new(
            Connection::from_config(cfg)?,
        )))
    }

    /// The registry's own credentials from its configuration (Basic, exchanged for tokens).
    pub fn with_own_credentials(conn: Arc<Connection>) -> Self {
        let auth = Arc::new(Auth::basic(conn.credentials.clone()));
        Self::new(conn, auth)
    }

    /// The same registry read without any credentials, with the anonymous token cache every
    /// clone of this client shares.
    pub fn anonymous(&self) -> Self {
        Self {
            auth: self.anonymous.clone(),
            ..self.clone()
        }
    }

    /// Sets how many names a catalog or tag-list page asks for (default 1,000).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn name(&self) -> &str {
        &self.conn.name
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Sends a bodiless request built by `build` with this registry's credentials for `scope`;
    /// on a 401 with a Bearer challenge, exchanges them for a token and sends it again once.
    pub async fn send_scoped(
        &self,
        scope: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        let http = &self.conn.http;
        let mut req = build(http);
        if let Some(auth) = self.auth.authorization_for(scope) {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let resp = req.send().await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp.headers().get(header::WWW_AUTHENTICATE);
        match self
            .auth
            .authorize_after(http, &self.conn.name, scope, challenge)
            .await
        {
            Some(auth) => build(http).header(header::AUTHORIZATION, auth).send().await,
            None => Ok(resp),
        }
    }

    /// [`Client::send_scoped`] for a pull from `repo` (a name as the registry knows it).
    pub async fn send(
        &self,
        repo: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> reqwest::Result<reqwest::Response> {
        self.send_scoped(&pull_scope(repo), build).await
    }

    /// A `GET` of an API path that must succeed: a non-2xx answer is a [`RegistryError::Status`]
    /// with its envelope's codes; redirects are followed (without credentials).
    async fn get(
        &self,
        scope: &str,
        api_path: &str,
        query: Option<&str>,
        accept: &[&'static str],
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self.conn.endpoint.api_url(api_path, query);
        let transport = |source| RegistryError::Transport {
            url: url.to_string(),
            source,
        };
        let mut headers = HeaderMap::new();
        for a in accept {
            headers.append(header::ACCEPT, HeaderValue::from_static(a));
        }
        let resp = self
            .send_scoped(scope, |http| http.get(url.clone()).headers(headers.clone()))
            .await
            .map_err(transport)?;
        let resp = match redirect::location(resp.status(), resp.headers(), &url) {
            Some(next) => redirect::follow(&self.conn, &Method::GET, next, &headers).await?,
            None => resp,
        };
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(status_error(resp).await)
        }
    }

    /// A manifest's bytes and digest (by tag or digest), at most the manifest limit; a read by
    /// digest is checked against it.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(Bytes, String), RegistryError> {
        let repo = self.conn.endpoint.backend_repo(repository);
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = self
            .get(&pull_scope(&repo), &path, None, MANIFEST_TYPES)
            .await?;
        let url = resp.url().to_string();
        let bytes = read_capped(resp, self.max_manifest_bytes).await?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if reference.contains(':') && reference != digest {
            return Err(RegistryError::DigestMismatch {
                url,
                expected: reference.to_owned(),
                actual: digest,
            });
        }
        Ok((bytes, digest))
    }

    /// Whether the registry serves this manifest to anyone, without credentials; `None` when the
    /// read failed in a way that says nothing (see [`crate::anonymous_answer`]).
    pub async fn anonymous_can_read(&self, repository: &str, digest: &str) -> Option<bool> {
        let read = self.anonymous().manifest(repository, digest).await;
        let answer = crate::anonymous_answer(&read);
        if let (None, Err(error)) = (answer, &read) {
            tracing::warn!(registry = %self.conn.name, repository, %error, "cannot tell whether anonymous clients may read; visibility unchanged");
        }
        answer
    }

    /// A blob as a stream of bytes whose digest is verified when it ends (a mismatch is an error
    /// on the last read).
    pub async fn blob(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + use<>, RegistryError>
    {
        let repo = self.conn.endpoint.backend_repo(repository);
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self.get(&pull_scope(&repo), &path, None, &[]).await?;
        let body = resp
            .bytes_stream()
            .map(|c| c.map_err(std::io::Error::other));
        verify::verified(body, digest)
    }

    /// Every repository of the registry that the shim names (the prefix stripped).
    pub async fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Vec<String>,
        }
        let all = self
            .paged(|last| async move {
                let query = self.page_query(last.as_deref());
                let resp = self
                    .get(CATALOG_SCOPE, "/v2/_catalog", Some(&query), &[])
                    .await?;
                Ok(json::<Catalog>(resp).await?.repositories)
            })
            .await?;
        let endpoint = &self.conn.endpoint;
        Ok(all
            .iter()
            .filter_map(|r| endpoint.shim_repo(r).map(str::to_owned))
            .collect())
    }

    /// Every tag of a repository, page by page.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let repo = self.conn.endpoint.backend_repo(repository);
        let path = format!("/v2/{repo}/tags/list");
        let scope = pull_scope(&repo);
        self.paged(|last| {
            let (path, scope) = (&path, &scope);
            async move {
                let query = self.page_query(last.as_deref());
                let resp = self.get(scope, path, Some(&query), &[]).await?;
                Ok(json::<Tags>(resp).await?.tags.unwrap_or_default())
            }
        })
        .await
    }

    /// The referrers of `digest` in `repository`: the registry's referrers API, or where it has
    /// none (a 404), the `sha256-<hex>` tag the spec's fallback keeps; an empty list for a
    /// subject without either.
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Vec<serde_json::Value>, RegistryError> {
        let repo = self.conn.endpoint.backend_repo(repository);
        let scope = pull_scope(&repo);
        let accept = ["application/vnd.oci.image.index.v1+json"];
        let path = format!("/v2/{repo}/referrers/{digest}");
        let index = match self.get(&scope, &path, None, &accept).await {
            Ok(resp) => json::<serde_json::Value>(resp).await?,
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {
                match self.manifest(repository, &fallback_tag(digest)).await {
                    Ok((bytes, _)) => {
                        serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
                            url: path.clone(),
                            message: e.to_string(),
                        })?
                    }
                    Err(e) if e.is_manifest_unknown() => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        Ok(index["manifests"].as_array().cloned().unwrap_or_default())
    }

    fn page_query(&self, last: Option<&str>) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("n", &self.page_size.to_string());
        if let Some(last) = last {
            q.append_pair("last", last);
        }
        q.finish()
    }

    /// Follows `n`/`last` pagination until a page comes back empty or with nothing new: a
    /// server may cap `n` below what was asked (so a short page does not prove it was the last)
    /// or ignore `last` (docker-registry 2.8 on tag lists: the same page again ends the walk).
    async fn paged<F, Fut>(&self, mut page: F) -> Result<Vec<String>, RegistryError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<String>, RegistryError>>,
    {
        let mut out: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut last: Option<String> = None;
        loop {
            let names = page(last.clone()).await?;
            last = names.last().cloned();
            let before = out.len();
            out.extend(names.into_iter().filter(|n| seen.insert(n.clone())));
            if out.len() == before {
                return Ok(out);
            }
        }
    }
}

/// An answer's body, failing past `limit` bytes (by `Content-Length` before reading, or by
/// what arrives).
pub async fn read_capped(resp: reqwest::Response, limit: u64) -> Result<Bytes, RegistryError> {
    let url = resp.url().to_string();
    let too_large = || RegistryError::TooLarge {
        url: url.clone(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| RegistryError::Transport {
            url: url.clone(),
            source,
        })?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, RegistryError> {
    let url = resp.url().to_string();
    let bytes = read_capped(resp, DEFAULT_MAX_MANIFEST_BYTES * 4).await?;
    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Invalid {
        url,
        message: e.to_string(),
    })
}

/// A failed answer as an error, with the codes of its envelope (at most [`MAX_ERROR_BODY`]
/// bytes of it read).
async fn status_error(resp: reqwest::Response) -> RegistryError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: String,
        #[serde(default)]
        message: String,
    }
    let url = resp.url().to_string();
    let status = resp.status();
    let body = read_capped(resp, MAX_ERROR_BODY as u64)
        .await
        .unwrap_or_default();
    let (codes, message) = match serde_json::from_slice::<Envelope>(&body) {
        Ok(e) => (
            e.errors.iter().map(|e| ErrorCode::parse(&e.code)).collect(),
            e.errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
        ),
        Err(_) => (Vec::new(), String::new()),
    };
    RegistryError::Status {
        url,
        status,
        codes,
        message,
    }
}
