//! Headers both ways: what of a client's request goes to the backend (never hop-by-hop headers,
//! credentials only when the backend's `client_auth` allows), and what of the backend's answer
//! reaches the client (its URLs rewritten onto the shim).

use axum::{
    body::Body,
    http::{HeaderMap, HeaderName, HeaderValue, Method, header},
};
use url::Url;

use crate::{error::OciError, rewrite};

/// A request for the pass-through client.
pub(super) fn backend_request(
    method: &Method,
    url: &Url,
    headers: HeaderMap,
    body: Body,
) -> Result<http::Request<Body>, OciError> {
    let mut req = http::Request::new(body);
    *req.method_mut() = method.clone();
    *req.uri_mut() = url
        .as_str()
        .parse()
        .map_err(|_| OciError::not_found("invalid URL"))?;
    *req.headers_mut() = headers;
    Ok(req)
}

pub(super) fn has_body(headers: &HeaderMap) -> bool {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    declared.is_some_and(|n| n > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

/// Headers that describe one connection (RFC 9110 §7.6.1), never forwarded either way.
pub(super) const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether a header is hop-by-hop: one of [`HOP_BY_HOP`] or named by the message's
/// `Connection` header.
pub(super) fn is_hop_by_hop(name: &HeaderName, connection_listed: &[String]) -> bool {
    HOP_BY_HOP.contains(name) || connection_listed.iter().any(|c| c == name.as_str())
}

pub(super) fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Headers a load balancer in front of the shim adds that describe how the client reached the
/// shim. docker-registry builds its absolute `Location`s from them (the `https` of the balancer,
/// its host) and the shim could no longer recognise and rewrite them: they must not reach a
/// backend, which the shim reaches by its own URL. `X-Forwarded-For` (the client's address, for
/// the backend's logs) goes on.
pub(super) fn describes_the_clients_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "forwarded" | "x-forwarded-proto" | "x-forwarded-host" | "x-forwarded-port"
    )
}

/// The client's headers as the backend gets them: every value of repeated headers (skopeo sends
/// several `Accept` lines), without hop-by-hop headers, `Host` (the backend's own), the load
/// balancer's description of the client's hop, `Expect`, `Content-Length` (set from the body),
/// cookies (a browser sends the shim's host's cookies, the marketplace's among them when both
/// share a host name; registry clients keep none) and, unless the backend asked for them,
/// credentials.
pub(super) fn request_headers(headers: &HeaderMap, forward_auth: bool) -> HeaderMap {
    let listed = connection_listed(headers);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let skip = is_hop_by_hop(name, &listed)
            || describes_the_clients_hop(name)
            || *name == header::HOST
            || *name == header::EXPECT
            || *name == header::CONTENT_LENGTH
            || *name == header::COOKIE
            || (*name == header::AUTHORIZATION && !forward_auth);
        if !skip {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// The backend's headers as the client gets them, edited in place: hop-by-hop headers and
/// cookies dropped (a backend or upstream must not set cookies on the shim's host name, which the
/// marketplace may share), `Location` and `Link` pointed at the shim.
pub(super) fn rewrite_response_headers(headers: &mut HeaderMap, ctx: &rewrite::Context<'_>) {
    for name in connection_listed(headers) {
        headers.remove(name.as_str());
    }
    for name in HOP_BY_HOP.iter().chain([&header::SET_COOKIE]) {
        headers.remove(name);
    }
    for name in [header::LOCATION, header::LINK] {
        let http::header::Entry::Occupied(mut entry) = headers.entry(&name) else {
            continue;
        };
        // Each value in its place: several `Link`s keep their order.
        for value in entry.iter_mut() {
            let rewritten = match value.to_str() {
                Ok(v) if name == header::LOCATION => ctx.url(v),
                Ok(v) => ctx.link(v),
                Err(_) => None,
            };
            if let Some(v) = rewritten.and_then(|v| HeaderValue::from_str(&v).ok()) {
                *value = v;
            }
        }
    }
}
