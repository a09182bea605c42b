//! Expensive rendering (markdown, schema trees, large YAML) off the async runtime, once per input.
//!
//! Rules, for every handler:
//! - CPU work whose cost grows with publisher content never runs on a runtime thread: it runs in
//!   [`Renderer::html`], on a blocking thread, holding one of [`Renderer::permits`] (the machine's
//!   parallelism), so however many such pages are asked for at once, runtime threads stay free
//!   for every other request (`/healthz`, the home page) and `web.request_timeout` still answers
//!   a request that waits too long: waiting for a permit is cancelled with the request.
//! - Its result is kept in a cache keyed by what it was made from (a digest of the source text,
//!   or an object digest and what was rendered of it), weighed in bytes and bounded by
//!   [`CACHE_BYTES`], so a page's next view costs a lookup.
//! - The work itself is bounded by its input (see [`crate::markdown`] and [`crate::schema`]):
//!   the deadline is not what stops it.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Bytes of rendered HTML kept in memory, summed over entries.
pub const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// What a cached rendering was made from: a sha256 over a label and the inputs.
pub type Key = [u8; 32];

/// Weighs a cache entry by its bytes.
#[derive(Clone)]
struct Bytes;

impl quick_cache::Weighter<Key, Arc<str>> for Bytes {
    fn weight(&self, _key: &Key, value: &Arc<str>) -> u64 {
        value.len() as u64 + 64
    }
}

/// The renderer every handler shares (one per [`crate::state::AppState`]).
pub struct Renderer {
    cache: quick_cache::sync::Cache<Key, Arc<str>, Bytes>,
    permits: Arc<Semaphore>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new(CACHE_BYTES)
    }
}

impl Renderer {
    /// A renderer keeping at most `cache_bytes` of results.
    pub fn new(cache_bytes: u64) -> Self {
        let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            cache: quick_cache::sync::Cache::with_weighter(10_000, cache_bytes.max(1), Bytes),
            permits: Arc::new(Semaphore::new(parallelism)),
        }
    }

    /// The key of a rendering labelled `label` (what is rendered, and how) of `parts`.
    pub fn key(label: &str, parts: &[&[u8]]) -> Key {
        let mut h = Sha256::new();
        h.update(label.as_bytes());
        for p in parts {
            h.update((p.len() as u64).to_le_bytes());
            h.update(p);
        }
        h.finalize().into()
    }

    /// `render()` for `key`: from the cache, or run on a blocking thread under a permit and kept.
    pub async fn html(
        &self,
        key: Key,
        render: impl FnOnce() -> String + Send + 'static,
    ) -> Result<Arc<str>> {
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::RendererClosed)?;
        // Another request may have rendered it while this one waited.
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        // A panic in `render` is an [`Error::Render`], logged when it is answered.
        let html: Arc<str> = tokio::task::spawn_blocking(render).await?.into();
        self.cache.insert(key, html.clone());
        Ok(html)
    }

    /// Publisher markdown as safe HTML ([`crate::markdown::render`]).
    pub async fn markdown(&self, source: &str) -> Result<Arc<str>> {
        let key = Self::key("markdown", &[source.as_bytes()]);
        // A hit costs the digest only: the source is copied for a rendering, not for a lookup.
        if let Some(hit) = self.cache.get(&key) {
            return Ok(hit);
        }
        let source = source.to_owned();
        self.html(key, move || crate::markdown::render(&source))
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_rendering_runs_once_per_key() {
        let renderer = Renderer::default();
        let runs = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let runs = runs.clone();
            let html = renderer
                .html(Renderer::key("t", &[b"a"]), move || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    "<p>a</p>".into()
                })
                .await
                .unwrap();
            assert_eq!(&*html, "<p>a</p>");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_ne!(
            Renderer::key("t", &[b"ab"]),
            Renderer::key("t", &[b"a", b"b"])
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn rendering_leaves_the_runtime_thread_free() {
        // On a one-thread runtime, a slow rendering must not stop another task from running.
        let renderer = Arc::new(Renderer::default());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let slow = tokio::spawn({
            let renderer = renderer.clone();
            async move {
                renderer
                    .html(Renderer::key("slow", &[]), move || {
                        rx.recv().unwrap();
                        String::new()
                    })
                    .await
            }
        });
        tokio::task::yield_now().await;
        // The runtime thread is free: this task runs and releases the rendering.
        tokio::spawn(async move { tx.send(()).unwrap() })
            .await
            .unwrap();
        slow.await.unwrap().unwrap();
    }
}
