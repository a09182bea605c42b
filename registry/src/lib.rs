//! shimmer's one registry client. Everything that talks to a registry sets up its connection
//! here, from a backend's or an upstream's configuration: TLS ([`tls`]), timeouts, credentials
//! and the two transports built on them ([`Connection`]). The shim's `/v2` pass-through drives
//! hyper on the connection's connector; every other read (the indexer, the cache's fills, the
//! CLI) goes through [`Client`], which owns auth ([`Auth`], one token cache per registry),
//! digest-verified and size-capped reads, paging, referrers and redirects ([`redirect`], never
//! with credentials). Failures are one enum, [`RegistryError`], classified once.
//!
//! The routing rule ([`RouteTable`]) is re-exported from the configuration crate, which needs it
//! itself.

pub mod auth;
mod client;
mod connect;
mod endpoint;
mod error;
mod fallback;
pub mod redirect;
pub mod tls;
mod verify;

pub use auth::{Auth, Challenge};
pub use client::{Client, DEFAULT_MAX_MANIFEST_BYTES, MANIFEST_TYPES, read_capped};
pub use connect::{Connection, Connector, install_crypto_provider};
pub use endpoint::Endpoint;
pub use error::{ErrorCode, RegistryError, anonymous_answer};
pub use fallback::{fallback_tag, is_fallback_tag};
pub use shimmer_config::RouteTable;
pub use verify::verified;
