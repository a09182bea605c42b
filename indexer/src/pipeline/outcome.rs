//! What the pipeline is asked (its [`Options`]) and what it answers: an [`Outcome`], or an
//! [`IndexError`] worth retrying.

use serde::Serialize;

use shimmer_registry::RegistryError;

use crate::xpkg::Limits;

/// Knobs of the pipeline.
#[derive(Debug, Clone)]
pub struct Options {
    pub limits: Limits,
    /// Most layer bytes downloaded to look for `package.yaml` in an image with no layer roles.
    pub flatten_limit: u64,
    /// Index again a manifest already stored (the CLI's `shimmer index`); the worker does not.
    pub force: bool,
    /// The configured visibility of the repository; `None`: public only if the backend serves
    /// the manifest without credentials.
    pub visibility: Option<shimmer_config::Visibility>,
    /// Bytes of a manifest (an index's platform manifest too) the indexer parses: the shim's
    /// `server.max_manifest_bytes`, so what could not be pushed through the shim is not read
    /// either. Larger ones are rejected unparsed.
    pub max_manifest_bytes: u64,
    /// A job whose worker stopped mid-job before (its lease expired: the process may have
    /// died on it): read under [`Limits::guarded`] and only what a package needs (no examples,
    /// no extension files), so the same package cannot take the process down again.
    pub guarded: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            flatten_limit: 64 * 1024 * 1024,
            force: false,
            visibility: None,
            max_manifest_bytes: 4 * 1024 * 1024,
            guarded: false,
        }
    }
}

/// A failure worth retrying.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("layer read task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One API in an [`Outcome`].
#[derive(Debug, Clone, Serialize)]
pub struct ApiSummary {
    pub group: String,
    pub kind: String,
    pub versions: Vec<String>,
}

/// What indexing one reference did (`shimmer index --json` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub repository: String,
    pub reference: String,
    pub manifest_digest: String,
    pub index_digest: Option<String>,
    /// What the manifest is (as stored before, when `already_indexed`).
    pub kind: shimmer_store::VersionKind,
    pub package_type: Option<String>,
    pub name: Option<String>,
    pub apis: Vec<ApiSummary>,
    /// Distinct objects of the version, package objects and examples alike.
    pub objects: usize,
    /// How many of `objects` this run stored (the rest were already there).
    pub objects_new: u64,
    pub examples: usize,
    pub lint: usize,
    pub rejection: Option<String>,
    pub bytes_downloaded: u64,
    pub image_bytes: u64,
    /// The manifest was stored before and not read again.
    pub already_indexed: bool,
    pub note: Option<String>,
}

/// What `shimmer index` prints: the reference, what it is, and what was stored.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} {} ({})",
            self.repository, self.reference, self.manifest_digest
        )?;
        writeln!(f, "  kind: {}", self.kind)?;
        if let Some(t) = &self.package_type {
            writeln!(f, "  package: {t} {}", self.name.as_deref().unwrap_or("?"))?;
        }
        if let Some(r) = &self.rejection {
            writeln!(f, "  rejected: {r}")?;
        }
        writeln!(f, "  apis: {}", self.apis.len())?;
        for a in &self.apis {
            writeln!(f, "    {}.{} {}", a.kind, a.group, a.versions.join(","))?;
        }
        writeln!(f, "  objects: {} ({} new)", self.objects, self.objects_new)?;
        write!(
            f,
            "  downloaded {} of {} image bytes",
            self.bytes_downloaded, self.image_bytes
        )
    }
}
