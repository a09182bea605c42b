//! What every request handler and background loop of the shim shares: the configuration, the
//! routes and upstreams built from it, the cache, the queue writer, metrics and pull counts.

use std::sync::Arc;

use shimmer_config::Config;
use shimmer_store::PgPool;

use crate::{
    Error, cache, enqueue::Enqueuer, metrics::Metrics, pulls, rewrite, routing::Routes,
    upstream::Upstreams,
};

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub routes: Routes,
    pub upstreams: Upstreams,
    /// The pull-through cache of upstream content, with `[cache] path`.
    pub cache: Option<Arc<cache::Cache>>,
    pub pool: PgPool,
    pub enqueuer: Arc<Enqueuer>,
    pub metrics: Arc<Metrics>,
    /// Pull counts, flushed to `package_pulls` in the background.
    pub pulls: Arc<pulls::Pulls>,
    /// Signs the upload sessions that carry a backend path outside `/v2`.
    pub sessions: rewrite::SessionKey,
    /// One update of a subject's emulated referrers at a time in this shim.
    pub referrer_locks: crate::forward::turns::SubjectLocks,
    /// Who this shim is in the database's leases: its process id and a random number.
    pub lease_holder: String,
    public_base: String,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state from configuration; fails on a backend whose TLS files cannot be read,
    /// or a cache directory that cannot be made.
    pub fn new(config: Arc<Config>, pool: PgPool) -> Result<Self, Error> {
        let routes = Routes::from_config(&config)?;
        let upstreams = Upstreams::from_config(&config)?;
        let metrics = Arc::new(Metrics::default());
        let cache = cache::Cache::new(&config.cache, pool.clone(), metrics.clone())?;
        let enqueuer = Enqueuer::new(pool.clone(), config.server.seen_cache_size, metrics.clone());
        let public_base = config
            .server
            .public_url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        let sessions = rewrite::SessionKey::new(
            config
                .server
                .session_secret
                .as_ref()
                .map(shimmer_config::Secret::expose),
        );
        Ok(Self(Arc::new(Inner {
            sessions,
            config,
            routes,
            upstreams,
            cache,
            pool,
            enqueuer,
            metrics,
            pulls: pulls::Pulls::new(),
            referrer_locks: Default::default(),
            lease_holder: lease_holder(),
            public_base,
        })))
    }

    /// Base for rewritten URLs: `public_url` without its trailing slash, or empty.
    pub fn public_base(&self) -> &str {
        &self.public_base
    }
}

/// A name for this shim in the database's leases, unique among the processes sharing it.
fn lease_holder() -> String {
    let mut random = [0; 8];
    getrandom::getrandom(&mut random).expect("the operating system's random source");
    format!(
        "shim {} {:016x}",
        std::process::id(),
        u64::from_le_bytes(random)
    )
}
