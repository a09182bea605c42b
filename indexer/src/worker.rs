//! Queue workers: claim a job (`for update skip locked`), hold it under a lease that a
//! heartbeat renews, run the pipeline, then mark it done or schedule a retry with exponential
//! backoff. Idle workers wake on `LISTEN index_jobs` and also poll, so a lost notification
//! only delays work. Many processes may run workers against one database.

use std::{collections::HashMap, sync::Arc, time::Duration};

use shimmer_config::Config;
use shimmer_store::{
    PgPool,
    jobs::{self, ClaimedJob},
};
use tokio::sync::{Notify, watch};

use crate::{
    pipeline::{self, Options},
    registry::BackendReader,
};

/// What workers share.
pub struct Indexer {
    pool: PgPool,
    config: Arc<Config>,
    backends: HashMap<String, BackendReader>,
    /// Backends the indexer cannot read, and why: the shim forwards to a backend URL with a path,
    /// but oci-client names a registry by its host alone.
    unreadable: HashMap<String, String>,
    options: Options,
    wake: Notify,
}

impl Indexer {
    pub fn new(config: Arc<Config>, pool: PgPool) -> anyhow::Result<Arc<Self>> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut backends = HashMap::new();
        let mut unreadable = HashMap::new();
        for b in &config.backends {
            if !matches!(b.url.path(), "" | "/") {
                let why = format!(
                    "backend {}: its url has a path, and the indexer reads backends at the root \
                     of their host only; its packages are not indexed",
                    b.name
                );
                tracing::warn!("{why}");
                unreadable.insert(b.name.clone(), why);
                continue;
            }
            backends.insert(b.name.clone(), BackendReader::from_config(b)?);
        }
        let options = Options {
            flatten_limit: config.indexer.flatten_limit_bytes,
            ..Options::default()
        };
        Ok(Arc::new(Self {
            pool,
            config,
            backends,
            unreadable,
            options,
            wake: Notify::new(),
        }))
    }

    /// The reader of a configured backend, or why there is none.
    pub fn backend(&self, name: &str) -> anyhow::Result<&BackendReader> {
        if let Some(reader) = self.backends.get(name) {
            return Ok(reader);
        }
        match self.unreadable.get(name) {
            Some(why) => Err(anyhow::anyhow!("{why}")),
            None => Err(anyhow::anyhow!("no backend named {name:?} is configured")),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Runs `workers` workers and a notification listener until `shutdown` turns true. A job in
    /// hand at shutdown is released back to the queue.
    pub async fn run(self: Arc<Self>, workers: usize, shutdown: watch::Receiver<bool>) {
        let listener = tokio::spawn(self.clone().listen(shutdown.clone()));
        let mut tasks = Vec::new();
        for n in 0..workers.max(1) {
            tasks.push(tokio::spawn(self.clone().work(n, shutdown.clone())));
        }
        for t in tasks {
            let _ = t.await;
        }
        listener.abort();
    }

    async fn listen(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            match sqlx::postgres::PgListener::connect_with(&self.pool).await {
                Ok(mut l) => {
                    if l.listen("index_jobs").await.is_ok() {
                        loop {
                            tokio::select! {
                                n = l.recv() => match n {
                                    Ok(_) => self.wake.notify_waiters(),
                                    Err(_) => break,
                                },
                                _ = shutdown.changed() => return,
                            }
                        }
                    }
                }
                Err(error) => tracing::debug!(%error, "cannot listen for jobs; polling"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {},
                _ = shutdown.changed() => return,
            }
        }
    }

    async fn work(self: Arc<Self>, n: usize, mut shutdown: watch::Receiver<bool>) {
        let lease = self.config.indexer.lease;
        let retry = jobs::Retry {
            max_attempts: self.config.indexer.max_attempts,
            base: self.config.indexer.retry_base,
        };
        loop {
            if *shutdown.borrow() {
                return;
            }
            // Listen before looking, so a job queued between the claim and the wait still wakes
            // this worker.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            // A dead worker's job counts that attempt and waits out its backoff, like a failure.
            match jobs::expire_leases(&self.pool, retry).await {
                Ok(0) => {}
                Ok(count) => tracing::warn!(
                    worker = n,
                    jobs = count,
                    "leases expired; jobs requeued or failed"
                ),
                Err(error) => tracing::warn!(worker = n, %error, "cannot expire leases"),
            }
            let claimed = match jobs::claim(&self.pool, lease).await {
                Ok(c) => c,
                Err(error) => {
                    tracing::warn!(worker = n, %error, "cannot claim jobs");
                    None
                }
            };
            let Some(job) = claimed else {
                tokio::select! {
                    _ = woken => {},
                    _ = tokio::time::sleep(self.config.indexer.poll_interval) => {},
                    _ = shutdown.changed() => return,
                }
                continue;
            };
            let span = tracing::info_span!("index_job", id = job.id, repository = %job.repository, reference = %job.reference, attempt = job.attempt);
            let run = tracing::Instrument::instrument(self.run_job(&job), span);
            tokio::pin!(run);
            let heartbeat =
                tokio::time::interval_at(tokio::time::Instant::now() + lease / 3, lease / 3);
            tokio::pin!(heartbeat);
            let result = loop {
                tokio::select! {
                    r = &mut run => break Some(r),
                    _ = heartbeat.tick() => {
                        if !matches!(jobs::extend_lease(&self.pool, &job, lease).await, Ok(true)) {
                            tracing::warn!(id = job.id, "lost the lease; abandoning the job");
                            break None;
                        }
                    }
                    _ = shutdown.changed() => {
                        let _ = jobs::release(&self.pool, &job).await;
                        return;
                    }
                }
            };
            match result {
                Some(Ok(outcome)) => {
                    tracing::info!(id = job.id, kind = %outcome.kind, objects = outcome.objects, objects_new = outcome.objects_new, bytes = outcome.bytes_downloaded, "indexed");
                    if let Err(error) = jobs::complete(&self.pool, &job).await {
                        tracing::warn!(id = job.id, %error, "could not mark job done");
                    }
                }
                Some(Err(error)) => {
                    tracing::warn!(id = job.id, %error, "index job failed");
                    let _ = jobs::fail(&self.pool, &job, &error.to_string(), retry).await;
                }
                None => {}
            }
        }
    }

    async fn run_job(&self, job: &ClaimedJob) -> Result<pipeline::Outcome, anyhow::Error> {
        let backend = self.backend(&job.backend)?;
        let options = Options {
            visibility: self.config.visibility(&job.backend, &job.repository),
            ..self.options.clone()
        };
        // Index the digest the shim saw; record the tag it came by.
        let outcome =
            pipeline::index(&self.pool, backend, &job.repository, &job.digest, &options).await?;
        if !job.reference.contains(':') {
            let tagged = Options {
                force: false,
                ..options
            };
            pipeline::index(
                &self.pool,
                backend,
                &job.repository,
                &job.reference,
                &tagged,
            )
            .await?;
        }
        Ok(outcome)
    }
}
