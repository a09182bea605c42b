//! Puts manifests on the index queue without ever making a client wait or fail.
//!
//! Every write happens in a spawned task. If PostgreSQL is unreachable the job goes into a
//! bounded in-memory retry buffer that a background task flushes every few seconds, so an outage
//! loses nothing while the process lives. What a crash or a full buffer still loses is found
//! again by the indexer's reconcile step (`shimmer reconcile` walks each backend's catalog and
//! tags and queues every manifest the store does not know).

use std::{
    collections::{HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use shimmer_store::{
    PgPool,
    jobs::{self, NewJob},
};

use crate::metrics::Metrics;

/// Most jobs held in memory while the database is away.
const RETRY_CAPACITY: usize = 100_000;
const RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// The shim's writer to the `index_jobs` queue.
pub struct Enqueuer {
    pool: PgPool,
    seen: Mutex<SeenSet>,
    retry: Mutex<VecDeque<Pending>>,
    metrics: Arc<Metrics>,
}

#[derive(Debug, Clone)]
enum Pending {
    /// A push: always queued.
    Push(NewJob),
    /// A pull: queued only if the digest was never seen.
    Pull(NewJob),
}

impl Enqueuer {
    pub fn new(pool: PgPool, seen_capacity: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            pool,
            seen: Mutex::new(SeenSet::new(seen_capacity)),
            retry: Mutex::new(VecDeque::new()),
            metrics,
        })
    }

    /// A manifest was pushed (the backend answered 2xx).
    pub fn pushed(self: &Arc<Self>, job: NewJob) {
        self.remember(&job);
        let this = self.clone();
        tokio::spawn(async move { this.write(Pending::Push(job)).await });
    }

    /// A manifest was pulled. Costs nothing once this process has seen the digest, and one
    /// read the first time it sees a digest the store already knows.
    pub fn pulled(self: &Arc<Self>, job: NewJob) {
        if !self.remember(&job) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move { this.write(Pending::Pull(job)).await });
    }

    /// Marks the job's (backend, repository, digest) as seen; returns whether it was new.
    fn remember(&self, job: &NewJob) -> bool {
        self.seen.lock().expect("seen set poisoned").insert(format!(
            "{}\0{}\0{}",
            job.backend, job.repository, job.digest
        ))
    }

    async fn write(&self, pending: Pending) {
        let result = match &pending {
            Pending::Push(job) => jobs::enqueue(&self.pool, job).await.map(|_| true),
            Pending::Pull(job) => {
                match jobs::is_seen(&self.pool, &job.backend, &job.repository, &job.digest).await {
                    Ok(true) => Ok(false),
                    Ok(false) => jobs::enqueue_if_unseen(&self.pool, job).await,
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(true) => Metrics::inc(&self.metrics.jobs_enqueued),
            Ok(false) => {}
            Err(error) => {
                Metrics::inc(&self.metrics.enqueue_failures);
                tracing::warn!(%error, job = ?pending, "could not queue index job; will retry");
                self.hold(pending);
            }
        }
    }

    fn hold(&self, pending: Pending) {
        let mut retry = self.retry.lock().expect("retry buffer poisoned");
        if retry.len() >= RETRY_CAPACITY {
            Metrics::inc(&self.metrics.enqueue_dropped);
            tracing::error!(job = ?pending, "retry buffer full: job dropped (reconcile will find it)");
            return;
        }
        retry.push_back(pending);
        // While a batch is being retried its jobs are out of the buffer but still waiting: never
        // lower the gauge here (the retry loop sets it once the batch is done).
        self.metrics
            .enqueue_pending
            .fetch_max(retry.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Flushes the retry buffer every couple of seconds, forever.
    pub fn spawn_retry_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RETRY_INTERVAL);
            loop {
                tick.tick().await;
                let batch: Vec<Pending> = {
                    let mut retry = this.retry.lock().expect("retry buffer poisoned");
                    retry.drain(..).collect()
                };
                // `write` puts a job back if the database is still away.
                for pending in batch {
                    this.write(pending).await;
                }
                let retry = this.retry.lock().expect("retry buffer poisoned");
                this.metrics
                    .enqueue_pending
                    .store(retry.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
        })
    }

    /// Jobs waiting in memory for the database (those being retried right now included).
    pub fn pending(&self) -> usize {
        self.metrics
            .enqueue_pending
            .load(std::sync::atomic::Ordering::Relaxed) as usize
    }
}

/// A bounded "have I seen this" set with two generations: when the young one fills, it
/// becomes the old one and the previous old one is forgotten. Approximates LRU at the cost of
/// two hash lookups; forgetting only costs one database read later.
struct SeenSet {
    young: HashSet<String>,
    old: HashSet<String>,
    half: usize,
}

impl SeenSet {
    fn new(capacity: usize) -> Self {
        Self {
            young: HashSet::new(),
            old: HashSet::new(),
            half: (capacity / 2).max(1),
        }
    }

    /// Returns whether the key was new.
    fn insert(&mut self, key: String) -> bool {
        if self.young.contains(&key) {
            return false;
        }
        let known = self.old.remove(&key);
        if self.young.len() >= self.half {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(key);
        !known
    }
}

#[cfg(test)]
mod tests {
    use super::SeenSet;

    #[test]
    fn seen_set_remembers_recent_keys_within_its_bound() {
        let mut s = SeenSet::new(4);
        assert!(s.insert("a".into()));
        assert!(!s.insert("a".into()));
        assert!(s.insert("b".into()));
        assert!(s.insert("c".into()));
        // "a" survived one generation change and is refreshed by the lookup.
        assert!(!s.insert("a".into()));
        for k in ["d", "e", "f", "g"] {
            s.insert(k.into());
        }
        assert!(s.insert("b".into()), "old keys are forgotten");
        assert!(s.young.len() + s.old.len() <= 4);
    }
}
