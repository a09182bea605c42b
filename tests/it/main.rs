//! The `shimmer` binary itself, run as a process: configuration errors, `migrate_on_start`,
//! `index --json`, indexer workers, `reconcile`, the cache commands, and the shim's shutdown
//! and logs. One test binary, a module per concern; what they share is in `helpers`.

mod cache;
mod config;
mod diff;
mod helpers;
mod index;
mod indexer;
mod reconcile;
mod shim;
