//! Integration tests of the indexer: real packages pushed with skopeo (charts with helm, artifacts
//! with oras-py) through a real shim to a real docker-registry, indexed into a real PostgreSQL.

mod bad_packages;
mod budgets;
mod clients;
mod harness;
mod lifecycle;
mod packages;
mod queue;
mod reconcile;
mod store_writes;
