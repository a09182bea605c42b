//! The shim: an OCI Distribution endpoint that forwards every request to the backend registry
//! its repository routes to, streaming bodies both ways, storing nothing itself, and queueing
//! every manifest it sees pushed (or pulled for the first time) for the indexer.
//!
//! Layers: `path` parses and validates, `routing` picks the backend, `forward` talks to it and
//! `rewrite` maps its URLs back onto the shim. The shim writes to the database only through the
//! store, and never while a client waits: `enqueue` (the index queue), `pulls` (pull counts,
//! flushed in the background) and `cache` (its records of cached content); the one exception
//! is an emulated referrer push, which takes its subject's lease (`forward::referrers`, each
//! statement bounded to a second, skipped when the database fails).

pub mod backend;
pub mod cache;
pub mod enqueue;
pub mod error;
pub mod forward;
pub mod health;
pub mod metrics;
pub mod path;
pub mod preload;
pub mod pulls;
pub mod realm;
pub mod request_id;
pub mod rewrite;
pub mod routing;
pub mod token;
pub mod upstream;

mod server;
mod state;

pub use error::Error;
pub use server::{run, run_threaded, service};
pub use state::AppState;
