//! Puts manifests on the index queue without ever making a client wait or fail.
//!
//! Every write happens in a spawned task. If PostgreSQL is unreachable the job goes into a
//! bounded in-memory retry buffer that a background task flushes every few seconds, so an outage
//! loses nothing while the process lives; a graceful stop tries the buffer once more (and waits
//! for writes in flight) and logs and counts what it could not write. What a crash, a full
//! buffer or an outage outlasting the process still loses is found again by the indexer's
//! reconcile step (`shimmer reconcile` walks each backend's catalog and
//! tags and queues every manifest the store does not know).

use std::{
    collections::{HashSet, VecDeque},
    hash::{BuildHasher, RandomState},
    sync::{Arc, Mutex},
    time::Duration,
};

use shimmer_store::{
    PgPool,
    jobs::{self, NewJob},
};
use tokio_util::task::TaskTracker;

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
    /// The writes in flight, so a graceful stop can wait for them.
    writes: TaskTracker,
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
            writes: TaskTracker::new(),
        })
    }

    /// A manifest was pushed (the backend answered 2xx).
    pub fn pushed(self: &Arc<Self>, job: NewJob) {
        self.remember(&job.backend, &job.repository, &job.digest);
        let this = self.clone();
        self.writes
            .spawn(async move { this.write(Pending::Push(job)).await });
    }

    /// A manifest `digest` of `repository` on `backend` was pulled. Costs no allocation and no
    /// database work once this process has seen it (`job` is only built for a new one), and
    /// one read the first time it sees a digest the store already knows.
    pub fn pulled(
        self: &Arc<Self>,
        backend: &str,
        repository: &str,
        digest: &str,
        job: impl FnOnce() -> NewJob,
    ) {
        if !self.remember(backend, repository, digest) {
            return;
        }
        let job = job();
        let this = self.clone();
        self.writes
            .spawn(async move { this.write(Pending::Pull(job)).await });
    }

    /// Marks (backend, repository, digest) as seen; returns whether it was new.
    fn remember(&self, backend: &str, repository: &str, digest: &str) -> bool {
        let mut seen = self.seen.lock().expect("seen set poisoned");
        let key = seen.key(backend, repository, digest);
        seen.insert(key)
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
                let batch = this.take_retry();
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

    /// At a graceful stop (the retry loop already stopped): waits for the writes in flight and
    /// tries the retry buffer once more, all within `deadline`; what is still not written is
    /// logged and counted as dropped (`shimmer reconcile` finds tagged pushes again).
    pub async fn drain(&self, deadline: Duration) {
        let attempt = async {
            self.writes.close();
            self.writes.wait().await;
            let batch: Vec<Pending> = self.take_retry();
            for pending in batch {
                self.write(pending).await;
            }
        };
        let timed_out = tokio::time::timeout(deadline, attempt).await.is_err();
        let lost = self.take_retry().len() + if timed_out { self.writes.len() } else { 0 };
        if lost > 0 {
            self.metrics
                .enqueue_dropped
                .fetch_add(lost as u64, std::sync::atomic::Ordering::Relaxed);
            tracing::error!(
                jobs = lost,
                "index jobs not queued at shutdown (database unreachable); `shimmer reconcile` finds tagged pushes again"
            );
        }
    }

    fn take_retry(&self) -> Vec<Pending> {
        let mut retry = self.retry.lock().expect("retry buffer poisoned");
        retry.drain(..).collect()
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
///
/// Keys are 64-bit hashes of (backend, repository, digest) under a per-process random key, so
/// a lookup allocates nothing. Two triples sharing a hash (about one chance in 10^9 with
/// 100,000 remembered) would make one pull skip the queue; `shimmer reconcile` finds it.
struct SeenSet {
    young: HashSet<u64>,
    old: HashSet<u64>,
    half: usize,
    hasher: RandomState,
}

impl SeenSet {
    fn new(capacity: usize) -> Self {
        Self {
            young: HashSet::new(),
            old: HashSet::new(),
            half: (capacity / 2).max(1),
            hasher: RandomState::new(),
        }
    }

    fn key(&self, backend: &str, repository: &str, digest: &str) -> u64 {
        self.hasher.hash_one((backend, repository, digest))
    }

    /// Returns whether the key was new.
    fn insert(&mut self, key: u64) -> bool {
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
        let k = |s: &SeenSet, repo: &str| s.key("b", repo, "sha256:0");
        let (a, b, c) = (k(&s, "a"), k(&s, "b"), k(&s, "c"));
        assert!(s.insert(a));
        assert!(!s.insert(a));
        assert!(s.insert(b));
        assert!(s.insert(c));
        // "a" survived one generation change and is refreshed by the lookup.
        assert!(!s.insert(a));
        for repo in ["d", "e", "f", "g"] {
            let key = k(&s, repo);
            s.insert(key);
        }
        assert!(s.insert(b), "old keys are forgotten");
        assert!(s.young.len() + s.old.len() <= 4);
        // The triple's parts stay apart: moving text between them is another key.
        assert_ne!(s.key("ab", "c", "d"), s.key("a", "bc", "d"));
        assert_ne!(s.key("b", "a", "sha256:0"), s.key("b", "a", "sha256:1"));
    }
}
