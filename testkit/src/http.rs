//! One way tests make hand-made HTTP requests: [`client`] (no redirects followed, no proxy) and
//! [`Sent::sent`], which sends and panics only when no answer came at all (a status, even 5xx,
//! is the test's to assert).

use std::future::Future;

/// A plain reqwest client for poking at registries and the shim directly: redirects are
/// answers to assert, not to follow.
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("build reqwest client")
}

/// Sending a request a test built, where failing to get any answer fails the test.
pub trait Sent {
    /// Sends the request; panics naming the error when no response arrived.
    fn sent(self) -> impl Future<Output = reqwest::Response> + Send;
}

impl Sent for reqwest::RequestBuilder {
    async fn sent(self) -> reqwest::Response {
        match self.send().await {
            Ok(response) => response,
            Err(e) => panic!("request failed: {e}"),
        }
    }
}
