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
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use shimmer_registry::{Client, RegistryError};

use crate::pipeline::{self, IndexError, Options};

/// A job or command named a backend this process has no configuration for.
#[derive(Debug, thiserror::Error)]
#[error("no backend named {0:?} is configured")]
pub struct UnknownBackend(pub String);

/// Why a job failed (its text is what the job records).
#[derive(Debug, thiserror::Error)]
enum JobError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    UnknownBackend(#[from] UnknownBackend),
    #[error("timed out after {0:?} (indexer.job_timeout)")]
    Timeout(Duration),
}

/// What workers share.
pub struct Indexer {
    pool: PgPool,
    config: Arc<Config>,
    backends: HashMap<String, Client>,
    options: Options,
    wake: Notify,
}

impl Indexer {
    pub fn new(config: Arc<Config>, pool: PgPool) -> Result<Arc<Self>, RegistryError> {
        let mut backends = HashMap::new();
        for b in &config.backends {
            backends.insert(b.name.clone(), Client::from_config(b)?);
        }
        let options = Options {
            flatten_limit: config.indexer.flatten_limit_bytes,
            max_manifest_bytes: config.server.max_manifest_bytes,
            ..Options::default()
        };
        Ok(Arc::new(Self {
            pool,
            config,
            backends,
            options,
            wake: Notify::new(),
        }))
    }

    /// The reader of a configured backend.
    pub fn backend(&self, name: &str) -> Result<&Client, UnknownBackend> {
        self.backends
            .get(name)
            .ok_or_else(|| UnknownBackend(name.to_owned()))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Runs `workers` workers, a notification listener and the deleter of old `done` jobs until
    /// `shutdown` is cancelled. A job in hand at shutdown is released back to the queue. A worker
    /// that panics is logged and started again (its job's lease runs out and counts).
    pub async fn run(self: Arc<Self>, workers: usize, shutdown: CancellationToken) {
        let listener = tokio::spawn(self.clone().listen(shutdown.clone()));
        let janitor = tokio::spawn(self.clone().delete_old_jobs(shutdown.clone()));
        let mut tasks = Vec::new();
        for n in 0..workers.max(1) {
            let this = self.clone();
            let rx = shutdown.clone();
            tasks.push(tokio::spawn(supervise(
                format!("index worker {n}"),
                shutdown.clone(),
                RESTART_DELAY,
                move || this.clone().work(n, rx.clone()),
            )));
        }
        for t in tasks {
            let _ = t.await;
        }
        listener.abort();
        janitor.abort();
    }

    /// Deletes `done` jobs older than `keep_done_jobs`, now and every ten minutes, so the queue
    /// table holds what is open plus a bounded history.
    async fn delete_old_jobs(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            match jobs::delete_done(&self.pool, self.config.indexer.keep_done_jobs).await {
                Ok(0) => {}
                Ok(count) => tracing::info!(jobs = count, "deleted old done jobs"),
                Err(error) => tracing::warn!(%error, "cannot delete old done jobs"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(600)) => {},
                _ = shutdown.cancelled() => return,
            }
        }
    }

    async fn listen(self: Arc<Self>, shutdown: CancellationToken) {
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
                                _ = shutdown.cancelled() => return,
                            }
                        }
                    }
                }
                Err(error) => tracing::debug!(%error, "cannot listen for jobs; polling"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {},
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Kept whole: one worker's loop, whose `select!` arms share its job, lease and heartbeat.
    async fn work(self: Arc<Self>, n: usize, shutdown: CancellationToken) {
        let lease = self.config.indexer.lease;
        // Every configured backend: a job for a backend this process does not know is left to a
        // process that does.
        let backends: Vec<String> = self
            .config
            .backends
            .iter()
            .map(|b| b.name.clone())
            .collect();
        let retry = jobs::Retry {
            max_attempts: self.config.indexer.max_attempts,
            base: self.config.indexer.retry_base,
        };
        loop {
            if shutdown.is_cancelled() {
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
            let claimed = match jobs::claim(&self.pool, lease, &backends).await {
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
                    _ = shutdown.cancelled() => return,
                }
                continue;
            };
            let span = tracing::info_span!("index_job", id = job.id, repository = %job.repository, reference = %job.reference, attempt = job.attempt);
            let run = tracing::Instrument::instrument(self.run_job_within_deadline(&job), span);
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
                    _ = shutdown.cancelled() => {
                        let _ = jobs::release(&self.pool, &job, retry).await;
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

    /// [`Self::run_job`], failed past `job_timeout`: the heartbeat keeps a live worker's lease,
    /// so without a deadline a read that never ends (a backend that stops answering mid-stream
    /// slower than its `read_timeout`) would hold the job for ever.
    async fn run_job_within_deadline(
        &self,
        job: &ClaimedJob,
    ) -> Result<pipeline::Outcome, JobError> {
        let limit = self.config.indexer.job_timeout;
        match tokio::time::timeout(limit, self.run_job(job)).await {
            Ok(result) => result,
            Err(_) => Err(JobError::Timeout(limit)),
        }
    }

    async fn run_job(&self, job: &ClaimedJob) -> Result<pipeline::Outcome, JobError> {
        let backend = self.backend(&job.backend)?;
        let options = Options {
            visibility: self.config.visibility(&job.backend, &job.repository),
            guarded: job.lease_expiries > 0,
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
            match pipeline::index(
                &self.pool,
                backend,
                &job.repository,
                &job.reference,
                &tagged,
            )
            .await
            {
                Ok(_) => {}
                // Deleted since it was pushed: the digest is indexed, and there is no tag to
                // record; retrying would only end `failed`.
                Err(IndexError::Registry(error)) if error.is_manifest_unknown() => {
                    tracing::info!(id = job.id, tag = %job.reference, %error, "the tag is gone from the backend; not recorded");
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(outcome)
    }
}

/// How long a panicked task waits before it is started again, so one that panics at once
/// cannot spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);

/// Runs the task `start` makes until it returns; one that panics is logged and started again
/// after `delay`, unless shutdown has begun. A panic in a worker (a bug the pipeline hits on
/// some package) must not silently leave the process with fewer workers, or none.
async fn supervise<F, Fut>(name: String, shutdown: CancellationToken, delay: Duration, mut start: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        match tokio::spawn(start()).await {
            Ok(()) => return,
            Err(error) if error.is_panic() => {
                let panic = error.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(task = %name, panic = %message, "panicked; starting it again");
            }
            Err(_) => return,
        }
        if shutdown.is_cancelled() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_is_started_again_until_it_returns() {
        let starts = Arc::new(AtomicUsize::new(0));
        let rx = CancellationToken::new();
        let counter = starts.clone();
        supervise("test".into(), rx, Duration::from_millis(10), move || {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    panic!("panic number {n}");
                }
            }
        })
        .await;
        assert_eq!(
            starts.load(Ordering::SeqCst),
            3,
            "two panics, then a return"
        );
    }

    #[tokio::test]
    async fn a_panic_after_shutdown_began_is_not_restarted() {
        let starts = Arc::new(AtomicUsize::new(0));
        let rx = CancellationToken::new();
        rx.cancel();
        let counter = starts.clone();
        supervise("test".into(), rx, Duration::from_millis(10), move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { panic!("always") }
        })
        .await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
    }
}
