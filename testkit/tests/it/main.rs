//! testkit's own tests: every helper against the real programs it drives.

mod pg;
mod push;
mod recorder;
mod registry;

pub use testkit::http::client as http;
