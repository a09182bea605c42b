//! One update of a subject's emulated referrers index at a time (`referrers::update`): within a
//! shim by [`SubjectLocks`], across the shims sharing the database by a lease on the subject
//! there (`store::leases`: asked for again every 50 ms, at most [`LEASE_WAIT`]; no connection held
//! meanwhile). A database that fails or does not answer within [`STATEMENT_WAIT`], or a lease
//! still held after [`LEASE_WAIT`], leaves the update to this shim's lock and the re-reads
//! (logged).

use std::time::Duration;

use crate::{AppState, metrics::Metrics};

/// Longest wait for another shim's lease on a subject: many times an update's length.
const LEASE_WAIT: Duration = Duration::from_secs(10);
/// A lease's length: past it, a lease whose holder died (or hung) is taken over.
const LEASE_TTL: Duration = Duration::from_secs(30);
/// Longest wait for the database to answer one lease statement.
const STATEMENT_WAIT: Duration = Duration::from_secs(1);

/// One update of a subject's fallback index at a time within a shim: 64 stripes of subjects
/// (bounded, whatever the number of subjects).
pub struct SubjectLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for SubjectLocks {
    fn default() -> Self {
        Self((0..64).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl SubjectLocks {
    pub(super) fn stripe(&self, backend: &str, subject: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (backend, subject).hash(&mut h);
        &self.0[(h.finish() % self.0.len() as u64) as usize]
    }
}

/// Takes the lease `key` in the database, asking again every 50 ms while another shim holds
/// it; false (logged) when the database fails or is slow, or the lease stays held past
/// [`LEASE_WAIT`].
pub(super) async fn take_lease(state: &AppState, key: &str) -> bool {
    let deadline = tokio::time::Instant::now() + LEASE_WAIT;
    loop {
        let ask =
            shimmer_store::leases::try_lease(&state.pool, key, &state.lease_holder, LEASE_TTL);
        match tokio::time::timeout(STATEMENT_WAIT, ask).await {
            Ok(Ok(true)) => return true,
            Ok(Ok(false)) => Metrics::inc(&state.metrics.referrers_lease_waits),
            Ok(Err(e)) => {
                tracing::warn!(%key, error = %e, "no referrers lease: the database failed");
                return false;
            }
            Err(_) => {
                tracing::warn!(%key, "no referrers lease: the database did not answer in time");
                return false;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(%key, "a referrers lease still held after {LEASE_WAIT:?}; going on");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Releases the lease `key`; one that cannot be (logged) runs out by itself.
pub(super) async fn give_back(state: &AppState, key: &str) {
    let release = shimmer_store::leases::release(&state.pool, key, &state.lease_holder);
    if let Ok(Err(e)) = tokio::time::timeout(STATEMENT_WAIT, release).await {
        tracing::warn!(%key, error = %e, "a referrers lease was not released; it runs out");
    }
}
