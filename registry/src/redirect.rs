//! Following a registry's redirects (a blob served from object storage or a CDN), bounded, and
//! never with credentials: a hop back to the registry's own origin goes through its connection
//! (its TLS), any other through the connection's plain redirect client. The caller decides which
//! of its headers shape the answer (`Range`, `Accept`...); `Authorization` is dropped whatever
//! it passes.

use http::{HeaderMap, Method, header};
use url::Url;

use crate::{Connection, RegistryError};

/// Hops followed before giving up.
pub const MAX_REDIRECTS: usize = 5;

/// The target of a redirect answer, resolved against the URL that was asked; `None` when the
/// answer is not a redirect or names no usable location.
pub fn location(status: http::StatusCode, headers: &HeaderMap, asked: &Url) -> Option<Url> {
    if !status.is_redirection() {
        return None;
    }
    headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| asked.join(l).ok())
}

/// Sends `method` to `next` and on through further redirects, at most [`MAX_REDIRECTS`] hops in
/// all, returning the first answer that is not a redirect (or the last one, when a redirect
/// names no location).
pub async fn follow(
    conn: &Connection,
    method: &Method,
    mut next: Url,
    headers: &HeaderMap,
) -> Result<reqwest::Response, RegistryError> {
    let mut headers = headers.clone();
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::COOKIE);
    for _ in 0..MAX_REDIRECTS {
        let http = if conn.endpoint.owns(&next) {
            &conn.http
        } else {
            &conn.redirects
        };
        let resp = http
            .request(method.clone(), next.clone())
            .headers(headers.clone())
            .send()
            .await
            .map_err(|source| RegistryError::Transport {
                url: next.to_string(),
                source,
            })?;
        match location(resp.status(), resp.headers(), &next) {
            Some(to) => next = to,
            None => return Ok(resp),
        }
    }
    Err(RegistryError::Invalid {
        url: next.to_string(),
        message: format!("more than {MAX_REDIRECTS} redirects"),
    })
}
