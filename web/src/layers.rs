//! What every request of the marketplace passes through, around its handler: a request id and a
//! span ([`request_span`]), the refusal of addresses no handler can read, the deadline, the
//! answer to methods other than `GET`, the security and `Vary` headers, and the body of every
//! error ([`render_errors`]): a handler's and these layers' own alike.

use std::sync::Arc;

use askama::Template;
use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    assets,
    error::{Error, Failure},
    layout::Layout,
    state::AppState,
};

/// The header that carries a request's id, the client's own or a new one, back to the client.
pub const X_REQUEST_ID: &str = "x-request-id";

/// The span a request is served in: its method, the route it matched (`/packages/{*path}`, not
/// the address, which may be long and is the client's to choose; empty for an address no route
/// matched) and its `x-request-id`, which every log event of the request then carries.
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    tracing::info_span!(
        "web",
        method = %request.method(),
        route,
        request_id = request
            .headers()
            .get(X_REQUEST_ID)
            .and_then(|id| id.to_str().ok())
            .unwrap_or(""),
    )
}

/// The content security policy of every response: nothing but this origin's (or the CDN's)
/// styles, scripts and images, no plugins, frames, forms elsewhere or inline code.
pub fn content_security_policy(public_base: &str) -> HeaderValue {
    let cdn = if public_base.is_empty() {
        String::new()
    } else {
        format!(" {public_base}")
    };
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'self'{cdn}; script-src 'self'{cdn}; img-src 'self'{cdn}; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ))
    .expect("policy is ASCII")
}

/// Answers a request that outlasts `web.request_timeout` with a 503 (a page, or the API's JSON
/// error under `/api/v1`) and drops its handler, so a stalled database holds no client forever.
/// PostgreSQL cancels the query it was waiting on a second later (the pool of
/// [`crate::connect`]).
pub async fn deadline(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    // Cloning the parsed URI shares its bytes (a reference count) instead of copying the path of
    // every request; the path is only read if the deadline passes.
    let uri = request.uri().clone();
    match tokio::time::timeout(state.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let path = uri.path();
            tracing::warn!(%path, timeout = ?state.request_timeout, "web request timed out");
            Error::Timeout.into_response()
        }
    }
}

/// Every route answers `GET` (and `HEAD`) only: anything else is a 405 that says so, in the
/// `Allow` header RFC 9110 requires and as a page or JSON like every other error.
pub async fn method_not_allowed(method: Method) -> Error {
    Error::MethodNotAllowed(method)
}

/// Refuses an address no handler can use, before any does: a NUL (`%00`), which PostgreSQL
/// cannot take in text (it failed the query: a 503 and an error in the log), and a path that
/// does not decode to UTF-8 (axum's own rejection is plain text, neither page nor JSON).
pub async fn refuse_unreadable_addresses(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00")) {
        return Error::bad_request("The address contains a NUL character (%00).").into_response();
    }
    if percent_encoding::percent_decode_str(uri.path())
        .decode_utf8()
        .is_err()
    {
        return Error::bad_request("The address is not valid UTF-8.").into_response();
    }
    next.run(request).await
}

/// `Vary` on every response: `vary` (the request's credentials, and its `Host` unless install
/// lines name a fixed registry host), or `Accept-Encoding` alone on a response that is the same
/// for everyone ([`assets::SameForEveryone`]).
pub fn vary(
    fixed_registry_host: bool,
) -> impl Fn(Response) -> std::future::Ready<Response> + Clone {
    // Without `[server] public_url`, install lines name the host a request was addressed to: a
    // cache that keys on its own upstream host instead must not serve one host's page for
    // another (set `public_url` wherever the marketplace is cached).
    let vary = HeaderValue::from_static(if fixed_registry_host {
        "Accept-Encoding, Authorization, Cookie"
    } else {
        "Accept-Encoding, Authorization, Cookie, Host"
    });
    move |mut response: Response| {
        let vary = match response.extensions().get::<assets::SameForEveryone>() {
            Some(_) => HeaderValue::from_static("Accept-Encoding"),
            None => vary.clone(),
        };
        response.headers_mut().insert(header::VARY, vary);
        std::future::ready(response)
    }
}

/// Whether `path` is the JSON API's (its errors are JSON).
fn is_api(path: &str) -> bool {
    path == "/api/v1" || path.starts_with("/api/v1/")
}

/// A response made from an [`Error`] gets its body here, the API's JSON envelope
/// under `/api/v1` and the HTML error page elsewhere; other responses pass untouched.
pub async fn render_errors(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let api = is_api(request.uri().path());
    let response = next.run(request).await;
    let Some(Failure { message }) = response.extensions().get::<Failure>().cloned() else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    let status = parts.status.as_u16();
    let (content_type, body) = if api {
        let envelope = json!({"error": {"status": status, "message": message}});
        ("application/json", envelope.to_string())
    } else {
        (
            "text/html; charset=utf-8",
            page(&state, parts.status, &message),
        )
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Response::from_parts(parts, Body::from(body))
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: String,
    message: String,
}

/// The error page's HTML (or, should its template fail, the status and message as text).
fn page(state: &AppState, status: StatusCode, message: &str) -> String {
    ErrorPage {
        layout: Layout::new(state),
        status: format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        ),
        message: message.to_owned(),
    }
    .render()
    .unwrap_or_else(|_| format!("{} {message}", status.as_u16()))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use shimmer_config::Config;
    use tower::ServiceExt;
    use tracing::{
        Event, Id, Metadata, Subscriber,
        field::{Field, Visit},
        span,
    };

    use super::*;

    #[test]
    fn errors_under_the_api_are_json() {
        assert!(is_api("/api/v1") && is_api("/api/v1/x") && !is_api("/api/v10"));
    }

    /// Every span opened: its name, `route` and `request_id`.
    #[derive(Clone, Default)]
    struct Spans(Arc<Mutex<Vec<[String; 3]>>>);

    struct Fields<'a>(&'a mut [String; 3]);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            match field.name() {
                "route" => self.0[1] = value.to_owned(),
                "request_id" => self.0[2] = value.to_owned(),
                _ => {}
            }
        }

        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    impl Subscriber for Spans {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }

        fn new_span(&self, span: &span::Attributes<'_>) -> Id {
            let mut fields = [
                span.metadata().name().to_owned(),
                String::new(),
                String::new(),
            ];
            span.record(&mut Fields(&mut fields));
            let mut spans = self.0.lock().unwrap();
            spans.push(fields);
            Id::from_u64(spans.len() as u64)
        }

        fn record(&self, _: &Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_requests_span_names_its_route_and_request_id_not_its_address() {
        let config = Config::from_toml(
            "[database]\nurl = \"postgres://nobody@127.0.0.1:1/none\"\n\
             [[backend]]\nname = \"b\"\nurl = \"http://127.0.0.1:1\"\n\
             [[route]]\nprefix = \"\"\nbackend = \"b\"\n",
        )
        .unwrap();
        let pool = shimmer_store::connect_lazy(&config.database).unwrap();
        let app = crate::router(Arc::new(AppState::new(&config, pool)));
        let spans = Spans::default();
        let _guard = tracing::subscriber::set_default(spans.clone());
        for (path, id) in [
            ("/static/secret-name.css", "id-1"),
            ("/no/such/place", "id-2"),
        ] {
            let request = axum::http::Request::get(path)
                .header(X_REQUEST_ID, id)
                .body(Body::empty())
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(response.headers()[X_REQUEST_ID], id, "{path}");
        }
        let spans = spans.0.lock().unwrap().clone();
        let web: Vec<_> = spans.iter().filter(|s| s[0] == "web").collect();
        assert_eq!(
            web,
            [
                &[
                    "web".to_owned(),
                    "/static/{name}".to_owned(),
                    "id-1".to_owned()
                ],
                &["web".to_owned(), String::new(), "id-2".to_owned()],
            ],
            "{spans:?}"
        );
    }
}
