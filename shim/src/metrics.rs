//! Counters exported at `/metrics` in Prometheus' text format.

use std::sync::atomic::{AtomicU64, Ordering};

/// The shim's counters (process-wide, monotonic).
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub backend_errors: AtomicU64,
    pub jobs_enqueued: AtomicU64,
    pub enqueue_failures: AtomicU64,
    pub enqueue_dropped: AtomicU64,
    pub enqueue_pending: AtomicU64,
    pub cache_stale_served: AtomicU64,
    pub referrers_emulated: AtomicU64,
    pub referrers_passed: AtomicU64,
    pub referrers_conflicts: AtomicU64,
    pub referrers_lease_waits: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let rows = [
            (
                "shimmer_requests_total",
                "counter",
                "Requests to /v2",
                &self.requests,
            ),
            (
                "shimmer_backend_errors_total",
                "counter",
                "Requests a backend did not answer",
                &self.backend_errors,
            ),
            (
                "shimmer_jobs_enqueued_total",
                "counter",
                "Index jobs written to the queue",
                &self.jobs_enqueued,
            ),
            (
                "shimmer_enqueue_failures_total",
                "counter",
                "Failed attempts to write an index job",
                &self.enqueue_failures,
            ),
            (
                "shimmer_enqueue_dropped_total",
                "counter",
                "Index jobs dropped because the retry buffer was full",
                &self.enqueue_dropped,
            ),
            (
                "shimmer_enqueue_pending",
                "gauge",
                "Index jobs waiting in memory for the database",
                &self.enqueue_pending,
            ),
            (
                "shimmer_cache_stale_served_total",
                "counter",
                "Cached tags served because the upstream could not revalidate them",
                &self.cache_stale_served,
            ),
            (
                "shimmer_referrers_emulated_total",
                "counter",
                "Referrers requests the shim answered from fallback tags",
                &self.referrers_emulated,
            ),
            (
                "shimmer_referrers_passed_total",
                "counter",
                "Referrers requests passed through to a backend that has the API",
                &self.referrers_passed,
            ),
            (
                "shimmer_referrers_conflicts_total",
                "counter",
                "Fallback index updates read again and retried after a concurrent change",
                &self.referrers_conflicts,
            ),
            (
                "shimmer_referrers_lease_waits_total",
                "counter",
                "Fallback index updates that found another shim's lease on the subject and waited",
                &self.referrers_lease_waits,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}
