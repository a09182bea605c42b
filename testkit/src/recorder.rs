//! A logging reverse proxy in front of a real registry: proves which request headers reached it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderName};
use http::{StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinHandle;

/// One request as the recorder received it (before forwarding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path_and_query: String,
    /// Every header in arrival order (names lowercase), `Host` included.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Edits the head of an upstream response before the recorder returns it, given the request
/// that produced it: lets a real registry behind the recorder stand in for a behaviour
/// docker-registry 2.8 lacks (e.g. a `Link` header on tag lists, which newer registries send).
pub type ResponseHook = Arc<dyn Fn(&RecordedRequest, &mut http::response::Parts) + Send + Sync>;

/// An HTTP reverse proxy on a free loopback port that records each request and forwards it
/// verbatim (Host included, bodies streamed both ways), returning the upstream response
/// unchanged: no redirect following, no decompression, no added headers (unless started with a
/// [`ResponseHook`]).
pub struct Recorder {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    server: JoinHandle<()>,
}

struct Shared {
    upstream: String,
    client: Client<HttpConnector, Body>,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    hook: Option<ResponseHook>,
}

impl Recorder {
    /// Starts recording and forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Recorder {
        Self::start_inner(upstream, None).await
    }

    /// The same, with `hook` editing each upstream response head on its way back.
    pub async fn start_with_hook(upstream: &str, hook: ResponseHook) -> Recorder {
        Self::start_inner(upstream, Some(hook)).await
    }

    async fn start_inner(upstream: &str, hook: Option<ResponseHook>) -> Recorder {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: http_client(),
            requests: requests.clone(),
            hook,
        });
        let app = Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind recorder");
        let addr = listener.local_addr().expect("recorder address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("recorder server");
        });
        Recorder {
            addr,
            requests,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("recorder lock").clone()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A plain HTTP/1.1 client that sends exactly the headers it is given (only `Host` is added when
/// missing), never follows redirects and never decompresses.
pub(crate) fn http_client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path_and_query: path_and_query.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), value)
            })
            .collect(),
    };
    shared
        .requests
        .lock()
        .expect("recorder lock")
        .push(recorded.clone());
    let uri: Uri = match format!("{}{path_and_query}", shared.upstream).parse() {
        Ok(uri) => uri,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("recorder: {e}")).into_response(),
    };
    parts.uri = uri;
    parts.version = Version::HTTP_11;
    remove_hop_by_hop(&mut parts.headers);
    match shared
        .client
        .request(Request::from_parts(parts, body))
        .await
    {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            remove_hop_by_hop(&mut parts.headers);
            if let Some(hook) = &shared.hook {
                hook(&recorded, &mut parts);
            }
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("recorder: upstream: {e}")).into_response(),
    }
}

/// Connection-level headers describe one hop; the HTTP stack of each hop sets its own.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| name.trim().parse().ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}
