//! Integration tests of the shim against real parts: PostgreSQL, docker-registry, skopeo,
//! containerd, oras-py, helm.

mod auth;
mod bad_input;
mod cache;
mod confinement;
mod docker_hub;
mod enqueue;
mod harness;
mod helm;
mod mirror;
mod oras;
mod passthrough;
mod push_pull;
mod redirects;
mod referrers;
mod referrers_emulated;
mod routing;
mod shutdown;
mod slow_clients;
mod timeouts;
mod tls;
mod token_relay;
mod uploads;
