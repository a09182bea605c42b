//! The indexer (see issue 3).
//!
//! [`xpkg`] is the pure, database-free core: it turns a package's layer blobs into the objects,
//! APIs, examples and metadata that the queue worker stores.

pub mod pipeline;
pub mod reconcile;
pub mod worker;
pub mod xpkg;
