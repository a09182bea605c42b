//! Eviction: the least recently used entries go once the cache holds more than its limit.

use std::{sync::Arc, time::Duration};

use super::Cache;

/// What one eviction pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Evicted {
    pub entries: usize,
    pub bytes: u64,
}

impl Cache {
    /// Runs [`Cache::evict_once`] every `interval`, forever.
    pub fn spawn_eviction(
        self: &Arc<Self>,
        max_bytes: u64,
        max_age: Option<Duration>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tick.tick().await;
                match this.evict_once(max_bytes, max_age).await {
                    Ok(e) if e.entries > 0 => {
                        tracing::info!(entries = e.entries, bytes = e.bytes, "cache evicted")
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "cache eviction failed"),
                }
            }
        })
    }

    /// Removes what is older than `max_age`, then the least recently used content until the
    /// cache holds at most `max_bytes` (0: no limit), in last-use order. Removing a manifest
    /// removes the blobs only it needed; a blob a kept manifest refers to is never removed.
    pub async fn evict_once(
        &self,
        max_bytes: u64,
        max_age: Option<Duration>,
    ) -> Result<Evicted, sqlx::Error> {
        use std::collections::{HashMap, HashSet};
        let entries = shimmer_store::cache::entries(&self.pool).await?;
        let key = |e: &shimmer_store::cache::Entry| (e.upstream.clone(), e.digest.clone());
        let by_key: HashMap<_, _> = entries.iter().map(|e| (key(e), e)).collect();
        let size = |k: &(String, String)| by_key[k].size_bytes.max(0) as u64;
        // What each cached manifest refers to, and how many kept manifests need each blob.
        let mut refs: HashMap<(String, String), Vec<(String, String)>> = HashMap::new();
        for e in &entries {
            if let Some(r) = self.references(e).await {
                refs.insert(key(e), r);
            }
        }
        let mut needed: HashMap<(String, String), usize> = HashMap::new();
        for r in refs.values().flatten() {
            *needed.entry(r.clone()).or_default() += 1;
        }
        let mut total: u64 = by_key.keys().map(size).sum();
        let mut gone: HashSet<(String, String)> = HashSet::new();
        for e in &entries {
            let k = key(e);
            if gone.contains(&k) {
                continue;
            }
            let too_old = max_age.is_some_and(|age| e.idle_secs > age.as_secs_f64());
            let over = max_bytes > 0 && total > max_bytes;
            if !(too_old || over) || needed.get(&k).copied().unwrap_or(0) > 0 {
                continue;
            }
            gone.insert(k.clone());
            total = total.saturating_sub(size(&k));
            for blob in refs.get(&k).into_iter().flatten() {
                let n = needed.entry(blob.clone()).or_default();
                *n = n.saturating_sub(1);
                if *n == 0 && by_key.contains_key(blob) && gone.insert(blob.clone()) {
                    total = total.saturating_sub(size(blob));
                }
            }
        }
        let mut evicted = Evicted::default();
        for k in gone {
            let (upstream, digest) = (&k.0, &k.1);
            // The record goes first, and only if nobody used the entry since it was read (a
            // hit, another shim's eviction): the files go only with it.
            let seen = by_key[&k].last_access_us;
            if !shimmer_store::cache::forget(&self.pool, upstream, digest, seen).await? {
                continue;
            }
            for kind in ["manifests", "blobs"] {
                if let Some(p) = self.path(upstream, kind, digest) {
                    let _ = tokio::fs::remove_file(p.with_extension("type")).await;
                    let _ = tokio::fs::remove_file(&p).await;
                }
            }
            evicted.entries += 1;
            evicted.bytes += size(&k);
        }
        Ok(evicted)
    }

    /// The (upstream, digest) pairs a cached manifest refers to; `None` if `e` is no manifest.
    async fn references(&self, e: &shimmer_store::cache::Entry) -> Option<Vec<(String, String)>> {
        let path = self.path(&e.upstream, "manifests", &e.digest)?;
        let bytes = tokio::fs::read(&path).await.ok()?;
        let v = serde_json::from_slice::<serde_json::Value>(&bytes).ok()?;
        let descriptors = std::iter::once(&v["config"])
            .chain(v["layers"].as_array().into_iter().flatten())
            .chain(v["manifests"].as_array().into_iter().flatten());
        Some(
            descriptors
                .filter_map(|d| Some((e.upstream.clone(), d["digest"].as_str()?.to_owned())))
                .collect(),
        )
    }
}
