//! Request ids for the shim's spans and the `x-request-id` response header.
//!
//! A UUID per request costs a `getrandom` system call, one of the five the shim otherwise makes
//! for a proxied manifest request. This is a random per-process prefix and a counter: unique
//! across the shims of a deployment as long as their prefixes differ (64 random bits), and an
//! atomic add per request.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hasher},
    io::Write,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use http::{HeaderName, HeaderValue, Request};
use tower_http::request_id::{MakeRequestId, RequestId};

/// The header that carries a request's id, to the backend and back to the client.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Makes `<16 hex digits of process prefix>-<counter in hex>` ids.
#[derive(Clone)]
pub struct ProcessCounter {
    prefix: u64,
    next: Arc<AtomicU64>,
}

impl ProcessCounter {
    pub fn new() -> Self {
        // RandomState is seeded from the operating system's random source once per process.
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        Self {
            prefix: h.finish(),
            next: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl Default for ProcessCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessCounter {
    /// The next id.
    pub fn next_id(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // 16 + 1 + at most 16 hex digits, written without a heap string.
        let mut buf = [0u8; 33];
        let len = {
            let mut w = &mut buf[..];
            let _ = write!(w, "{:016x}-{n:x}", self.prefix);
            33 - w.len()
        };
        HeaderValue::from_bytes(&buf[..len])
            .expect("hex digits and a dash are a valid header value")
    }
}

impl MakeRequestId for ProcessCounter {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        Some(RequestId::new(self.next_id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(m: &mut ProcessCounter) -> String {
        let req = Request::new(());
        let id = m.make_request_id(&req).unwrap();
        id.header_value().to_str().unwrap().to_owned()
    }

    #[test]
    fn ids_are_distinct_within_and_across_makers() {
        let mut a = ProcessCounter::new();
        let mut b = ProcessCounter::new();
        let (a1, a2, b1) = (id(&mut a), id(&mut a), id(&mut b));
        assert_ne!(a1, a2);
        assert_ne!(a1, b1, "two makers draw different prefixes");
        assert!(a1.ends_with("-0") && a2.ends_with("-1"), "{a1} {a2}");
        // Clones share the counter, as the layer clones its maker per connection.
        let mut c = a.clone();
        assert!(id(&mut c).ends_with("-2"));
    }
}
