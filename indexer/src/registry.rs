//! Reads from a backend registry with shimmer's own credentials (never a client's), through
//! `oci-client`, which handles Basic and registry Bearer token auth.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use oci_client::{
    Client, Reference,
    client::{ClientConfig, ClientProtocol},
    secrets::RegistryAuth,
};
use shimmer_config::BackendConfig;

use crate::mtls::MtlsBridge;

/// Every manifest media type the indexer reads.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Why a read from a backend failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("backend {0}: {1}")]
    Config(String, String),
    #[error("registry: {0}")]
    Oci(#[from] oci_client::errors::OciDistributionError),
    #[error("registry: {0}")]
    Io(#[from] std::io::Error),
}

impl RegistryError {
    /// Whether the registry said the blob does not exist (`BLOB_UNKNOWN`, or a bare 404): a
    /// fact about the image, not a failure worth retrying.
    pub fn is_blob_unknown(&self) -> bool {
        match self {
            Self::Oci(oci_client::errors::OciDistributionError::RegistryError {
                envelope, ..
            }) => envelope
                .errors
                .iter()
                .any(|e| e.code == oci_client::errors::OciErrorCode::BlobUnknown),
            Self::Oci(oci_client::errors::OciDistributionError::ServerError { code, .. }) => {
                *code == 404
            }
            _ => false,
        }
    }

    /// Whether the registry said the manifest (or its repository) does not exist
    /// (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, or a bare 404): a tag deleted since, say.
    pub fn is_manifest_unknown(&self) -> bool {
        use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
        match self {
            Self::Oci(E::RegistryError { envelope, .. }) => envelope
                .errors
                .iter()
                .any(|e| matches!(e.code, C::ManifestUnknown | C::NameUnknown | C::NotFound)),
            Self::Oci(E::ServerError { code, .. }) => *code == 404,
            Self::Oci(E::ImageManifestNotFoundError(_)) => true,
            _ => false,
        }
    }
}

/// What an anonymous manifest read says about a repository's visibility: `Some(true)` served,
/// `Some(false)` a clean refusal (401, 403, or 404: registries hide private repositories behind
/// either), `None` anything else (a timeout, a 5xx, a 429, a broken connection), which proves
/// nothing either way.
pub fn anonymous_answer<T>(
    read: &Result<T, oci_client::errors::OciDistributionError>,
) -> Option<bool> {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    match read {
        Ok(_) => Some(true),
        Err(E::UnauthorizedError { .. } | E::AuthenticationFailure(_)) => Some(false),
        Err(E::ImageManifestNotFoundError(_)) => Some(false),
        Err(E::ServerError {
            code: 401 | 403 | 404,
            ..
        }) => Some(false),
        Err(E::RegistryError { envelope, .. })
            if !envelope.errors.is_empty()
                && envelope.errors.iter().all(|e| {
                    matches!(
                        e.code,
                        C::Unauthorized
                            | C::Denied
                            | C::ManifestUnknown
                            | C::NameUnknown
                            | C::NotFound
                    )
                }) =>
        {
            Some(false)
        }
        Err(_) => None,
    }
}

/// A backend as the indexer reads it.
#[derive(Clone)]
pub struct BackendReader {
    pub name: String,
    /// `host:port` as oci-client names registries, and the backend's path if it has one
    /// (`host:port/registry`).
    registry: String,
    prefix: String,
    auth: RegistryAuth,
    client: Arc<Client>,
    /// The same TLS and timeouts as `client`, without credentials: `client` keeps the tokens
    /// its credentials earned, which would make every private repository look public.
    anonymous: Arc<Client>,
    /// Names asked for per catalog or tag-list page.
    page_size: usize,
    /// The mutual TLS bridge both clients go through, for a backend that asks for a client
    /// certificate; it runs while a reader holds it.
    _bridge: Option<Arc<MtlsBridge>>,
}

impl std::fmt::Debug for BackendReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendReader")
            .field("name", &self.name)
            .field("registry", &self.registry)
            .finish()
    }
}

impl BackendReader {
    pub fn from_config(cfg: &BackendConfig) -> Result<Self, RegistryError> {
        let err = |m: &str| RegistryError::Config(cfg.name.clone(), m.to_owned());
        // oci-client 0.18's configuration has no client identity (and its reqwest client is
        // private): such a backend is read through a loopback bridge that presents it.
        let bridge = match cfg.client_cert {
            Some(_) => Some(Arc::new(MtlsBridge::start(cfg)?)),
            None => None,
        };
        let host = cfg.url.host_str().ok_or_else(|| err("url has no host"))?;
        let mut registry = match cfg.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        // A backend under a path (`https://host/registry/`, its API at `/registry/v2/`): oci-client
        // writes every URL as `{scheme}://{registry}/v2/…`, so the path goes into the registry's
        // name (its credentials check compares only host and port). `path_backends_are_indexed`
        // in the tests holds it to that.
        registry.push_str(cfg.url.path().trim_end_matches('/'));
        let ca = match &cfg.ca_file {
            Some(ca) => Some(std::fs::read(ca).map_err(|e| err(&format!("ca_file: {e}")))?),
            None => None,
        };
        // oci-client's configuration is not `Clone`: both clients are built from the backend's.
        let client_config = || ClientConfig {
            protocol: if cfg.url.scheme() == "http" || bridge.is_some() {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            http_proxy: bridge.as_ref().map(|b| b.proxy_url.clone()),
            accept_invalid_certificates: cfg.insecure_skip_verify,
            connect_timeout: Some(cfg.connect_timeout),
            read_timeout: Some(cfg.read_timeout),
            extra_root_certificates: ca
                .iter()
                .map(|pem| oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            ..Default::default()
        };
        let password = cfg
            .resolve_password()
            .map_err(|e| err(&e.to_string()))?
            .map(|s| s.expose().to_owned())
            .unwrap_or_default();
        let auth = match &cfg.username {
            Some(user) => RegistryAuth::Basic(user.clone(), password),
            None => RegistryAuth::Anonymous,
        };
        Ok(Self {
            name: cfg.name.clone(),
            registry,
            prefix: cfg.repository_prefix.clone(),
            auth,
            anonymous: Arc::new(Client::new(client_config())),
            client: Arc::new(Client::new(client_config())),
            page_size: 1000,
            _bridge: bridge,
        })
    }

    fn reference(&self, repository: &str, reference: &str) -> Reference {
        let repo = format!("{}{repository}", self.prefix);
        if reference.contains(':') {
            Reference::with_digest(self.registry.clone(), repo, reference.to_owned())
        } else {
            Reference::with_tag(self.registry.clone(), repo, reference.to_owned())
        }
    }

    /// A manifest's bytes and digest (by tag or digest).
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<(Bytes, String), RegistryError> {
        let r = self.reference(repository, reference);
        Ok(self
            .client
            .pull_manifest_raw(&r, &self.auth, MANIFEST_TYPES)
            .await?)
    }

    /// Whether the backend serves this manifest to anyone, without credentials; `None` when the
    /// read failed in a way that says nothing (see [`anonymous_answer`]).
    pub async fn anonymous_can_read(&self, repository: &str, digest: &str) -> Option<bool> {
        let read = self
            .anonymous
            .pull_manifest_raw(
                &self.reference(repository, digest),
                &RegistryAuth::Anonymous,
                MANIFEST_TYPES,
            )
            .await;
        let answer = anonymous_answer(&read);
        if let (None, Err(error)) = (answer, &read) {
            tracing::warn!(backend = %self.name, repository, %error, "cannot tell whether anonymous clients may read; visibility unchanged");
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
        let r = self.reference(repository, digest);
        self.client
            .auth(&r, &self.auth, oci_client::RegistryOperation::Pull)
            .await?;
        let sized = self.client.pull_blob_stream(&r, digest).await?;
        Ok(sized.stream.map_err(std::io::Error::other))
    }

    /// Sets how many names a catalog or tag-list page asks for (default 1,000).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Every repository of the backend that the shim names (the prefix stripped).
    pub async fn catalog(&self) -> Result<Vec<String>, RegistryError> {
        let probe = self.reference("_", "latest");
        let all = self
            .paged(|last| {
                let probe = &probe;
                async move {
                    Ok(self
                        .client
                        .catalog(probe, &self.auth, Some(self.page_size), last.as_deref())
                        .await?
                        .repositories)
                }
            })
            .await?;
        Ok(all
            .into_iter()
            .filter_map(|r| r.strip_prefix(&self.prefix).map(str::to_owned))
            .collect())
    }

    /// Every tag of a repository, page by page.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        let r = self.reference(repository, "latest");
        self.paged(|last| {
            let r = &r;
            async move {
                Ok(self
                    .client
                    .list_tags(r, &self.auth, Some(self.page_size), last.as_deref())
                    .await?
                    .tags)
            }
        })
        .await
    }

    /// Follows `n`/`last` pagination (what a `Link: <…?n=…&last=…>; rel="next"` header says)
    /// until a page comes back empty or with nothing new: a server may cap `n` below what was
    /// asked, so a short page does not prove it was the last.
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

#[cfg(test)]
mod tests {
    use oci_client::errors::{OciDistributionError as E, OciEnvelope, OciError, OciErrorCode};

    use super::anonymous_answer;

    fn envelope(code: OciErrorCode) -> E {
        E::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: String::new(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://r/v2/x/manifests/sha256:0".into(),
        }
    }

    fn status(code: u16) -> E {
        E::ServerError {
            code,
            url: "http://r/v2/x/manifests/sha256:0".into(),
            message: String::new(),
        }
    }

    #[test]
    fn only_a_clean_refusal_makes_a_package_private() {
        assert_eq!(anonymous_answer::<()>(&Ok(())), Some(true));
        for refusal in [
            E::UnauthorizedError { url: "u".into() },
            E::AuthenticationFailure("denied".into()),
            status(401),
            status(403),
            status(404),
            envelope(OciErrorCode::Denied),
            envelope(OciErrorCode::Unauthorized),
            envelope(OciErrorCode::ManifestUnknown),
            envelope(OciErrorCode::NameUnknown),
        ] {
            let shown = refusal.to_string();
            assert_eq!(
                anonymous_answer::<()>(&Err(refusal)),
                Some(false),
                "{shown}"
            );
        }
        for unknown in [
            status(500),
            status(502),
            status(429),
            envelope(OciErrorCode::Toomanyrequests),
            E::IoError(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "read timed out",
            )),
            E::GenericError(None),
        ] {
            let shown = unknown.to_string();
            assert_eq!(anonymous_answer::<()>(&Err(unknown)), None, "{shown}");
        }
    }
}
