//! testkit's own tests: every helper against the real programs it drives.

mod pg;
mod push;
mod recorder;
mod registry;

/// A plain reqwest client (no redirects) for poking at registries directly.
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("build reqwest client")
}
