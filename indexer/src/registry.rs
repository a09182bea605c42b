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
}

/// A backend as the indexer reads it.
#[derive(Clone)]
pub struct BackendReader {
    pub name: String,
    /// `host:port` as oci-client names registries.
    registry: String,
    prefix: String,
    http: bool,
    auth: RegistryAuth,
    client: Arc<Client>,
    /// Names asked for per catalog or tag-list page.
    page_size: usize,
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
        if !matches!(cfg.url.path(), "" | "/") {
            return Err(err(
                "the indexer reads backends at the root of their host only (url has a path)",
            ));
        }
        let host = cfg.url.host_str().ok_or_else(|| err("url has no host"))?;
        let registry = match cfg.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        let http = cfg.url.scheme() == "http";
        let mut config = ClientConfig {
            protocol: if http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: cfg.insecure_skip_verify,
            connect_timeout: Some(cfg.connect_timeout),
            read_timeout: Some(cfg.read_timeout),
            ..Default::default()
        };
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca).map_err(|e| err(&format!("ca_file: {e}")))?;
            config
                .extra_root_certificates
                .push(oci_client::client::Certificate {
                    encoding: oci_client::client::CertificateEncoding::Pem,
                    data: pem,
                });
        }
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
            http,
            auth,
            client: Arc::new(Client::new(config)),
            page_size: 1000,
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

    /// Whether the backend serves this manifest to anyone, without credentials (a fresh
    /// client: the configured one keeps the tokens its credentials earned).
    pub async fn anonymous_can_read(&self, repository: &str, digest: &str) -> bool {
        let client = Client::new(ClientConfig {
            protocol: self.protocol(),
            ..Default::default()
        });
        client
            .pull_manifest_raw(
                &self.reference(repository, digest),
                &RegistryAuth::Anonymous,
                MANIFEST_TYPES,
            )
            .await
            .is_ok()
    }

    fn protocol(&self) -> ClientProtocol {
        if self.http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        }
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
