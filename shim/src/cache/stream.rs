//! Blob bytes out of the cache: a download streamed to its readers as it grows (resumed straight
//! from the upstream when the cache cannot keep it), cached files with `Range`, and upstream
//! refusals passed on.

use shimmer_registry::ErrorCode;
use std::{
    io::SeekFrom,
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::{
    io::{AsyncReadExt, AsyncSeekExt},
    sync::watch,
};

use shimmer_registry::redirect;

use super::{Fill, READ_CHUNK};
use crate::{error::OciError, forward::DOCKER_CONTENT_DIGEST, upstream::Upstream};

/// What a reader of a download needs to go on straight from the upstream when the cache
/// cannot keep the blob (a disk that fills up mid-download).
pub(super) struct Resume {
    pub(super) up: Arc<Upstream>,
    pub(super) repo: String,
    pub(super) digest: String,
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Streams a download as it grows: reads what has been written, waits for more, ends when it is
/// done, and fails (aborting the client's transfer) if the download fails. If the cache could
/// not write the download, the rest comes straight from the upstream (a `Range` from where the
/// client is), uncached.
///
/// Kept whole: one stream's states (read what is written, wait for more, resume from the upstream) share its locals.
pub(super) fn tail(
    tmp: PathBuf,
    done_path: PathBuf,
    progress: watch::Receiver<Fill>,
    resume: Resume,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    struct State {
        tmp: PathBuf,
        done_path: PathBuf,
        progress: watch::Receiver<Fill>,
        file: Option<tokio::fs::File>,
        pos: u64,
        finished: bool,
        resume: Resume,
        direct: Option<ByteStream>,
    }
    let state = State {
        tmp,
        done_path,
        progress,
        file: None,
        pos: 0,
        finished: false,
        resume,
        direct: None,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        if let Some(direct) = st.direct.as_mut() {
            let next = direct.next().await;
            st.finished = !matches!(next, Some(Ok(_)));
            return next.map(|item| (item, st));
        }
        loop {
            let fill = st.progress.borrow_and_update().clone();
            let available = match &fill {
                // The last byte is held back until the digest is checked, so a client that
                // counts bytes against Content-Length cannot mistake a corrupt blob for a whole one.
                Fill::Streaming { written, .. } => written.saturating_sub(1),
                Fill::Done { total } => *total,
                Fill::Failed {
                    local: true,
                    message,
                    ..
                } => {
                    tracing::warn!(upstream = %st.resume.up.backend.name, digest = %st.resume.digest,
                        %message, "blob not cached; sending the rest straight from the upstream");
                    match resume_direct(&st.resume, st.pos).await {
                        Ok(mut direct) => {
                            let next = direct.next().await;
                            st.finished = !matches!(next, Some(Ok(_)));
                            st.direct = Some(direct);
                            return next.map(|item| (item, st));
                        }
                        Err(message) => {
                            st.finished = true;
                            return Some((Err(std::io::Error::other(message)), st));
                        }
                    }
                }
                Fill::Failed { message, .. } => {
                    st.finished = true;
                    return Some((Err(std::io::Error::other(message.clone())), st));
                }
                Fill::Connecting => 0,
            };
            if st.pos < available {
                if st.file.is_none() {
                    // The download may have been renamed into place already.
                    let opened = match tokio::fs::File::open(&st.tmp).await {
                        Ok(f) => Ok(f),
                        Err(_) => tokio::fs::File::open(&st.done_path).await,
                    };
                    match opened {
                        Ok(mut f) => {
                            if let Err(e) = f.seek(SeekFrom::Start(st.pos)).await {
                                st.finished = true;
                                return Some((Err(e), st));
                            }
                            st.file = Some(f);
                        }
                        Err(e) => {
                            st.finished = true;
                            return Some((Err(e), st));
                        }
                    }
                }
                let want = (available - st.pos).min(READ_CHUNK as u64) as usize;
                let mut buf = vec![0u8; want];
                let file = st.file.as_mut().expect("opened above");
                match file.read(&mut buf).await {
                    Ok(0) => {}
                    Ok(n) => {
                        buf.truncate(n);
                        st.pos += n as u64;
                        return Some((Ok(Bytes::from(buf)), st));
                    }
                    Err(e) => {
                        st.finished = true;
                        return Some((Err(e), st));
                    }
                }
            }
            if matches!(fill, Fill::Done { .. }) && st.pos >= available {
                return None;
            }
            if st.progress.changed().await.is_err() {
                // The download task ended; its last state decides (a local failure resumes).
                let last = st.progress.borrow().clone();
                if !matches!(last, Fill::Done { .. } | Fill::Failed { local: true, .. }) {
                    st.finished = true;
                    return Some((Err(std::io::Error::other("download ended early")), st));
                }
            }
        }
    })
}

/// The blob from byte `from` on, straight from the upstream (asked with a `Range`; an upstream
/// that ignores it has the bytes before `from` skipped).
pub(super) async fn resume_direct(r: &Resume, from: u64) -> Result<ByteStream, String> {
    let resp = tokio::time::timeout(
        r.up.client.conn().connect_timeout + r.up.client.conn().read_timeout,
        open_blob(&r.up, &r.repo, &r.digest, from),
    )
    .await
    .map_err(|_| "no answer from the upstream in time".to_owned())??;
    let mut skip = match resp.status() {
        StatusCode::PARTIAL_CONTENT if from > 0 => 0,
        StatusCode::OK => from,
        s => return Err(format!("upstream answered {s} to the rest of the blob")),
    };
    Ok(Box::pin(resp.bytes_stream().filter_map(move |chunk| {
        let out = match chunk {
            Ok(b) if skip >= b.len() as u64 => {
                skip -= b.len() as u64;
                None
            }
            Ok(b) => {
                let rest = b.slice(skip as usize..);
                skip = 0;
                Some(Ok(rest))
            }
            Err(e) => Some(Err(std::io::Error::other(e))),
        };
        std::future::ready(out)
    })))
}

/// Sends a blob `GET` upstream (with a `Range` from `from` when it is not 0) and follows its
/// redirects ([`shimmer_registry::redirect`]: bounded, object storage gets no credentials).
pub(super) async fn open_blob(
    up: &Upstream,
    repo: &str,
    digest: &str,
    from: u64,
) -> Result<reqwest::Response, String> {
    let mut headers = HeaderMap::new();
    if from > 0 {
        let range = HeaderValue::from_str(&format!("bytes={from}-")).expect("a number");
        headers.insert(header::RANGE, range);
    }
    let url = up
        .backend
        .endpoint()
        .api_url(&format!("/v2/{repo}/blobs/{digest}"), None);
    let resp = up
        .client
        .send(repo, |http| http.get(url.clone()).headers(headers.clone()))
        .await
        .map_err(|e| e.to_string())?;
    match redirect::location(resp.status(), resp.headers(), &url) {
        Some(next) => redirect::follow(up.client.conn(), &Method::GET, next, &headers)
            .await
            .map_err(|e| e.to_string()),
        None => Ok(resp),
    }
}

/// At most `limit` bytes of an answer's body (an upstream's error envelope).
pub(super) async fn bounded_body(resp: reqwest::Response, limit: usize) -> Bytes {
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(Ok(chunk)) = body.next().await {
        out.extend_from_slice(&chunk[..chunk.len().min(limit - out.len())]);
        if out.len() >= limit {
            break;
        }
    }
    Bytes::from(out)
}

/// The OCI error code of an upstream's refusal.
pub(super) fn refusal_code(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::TooManyRequests,
        _ => ErrorCode::Denied,
    }
}

/// An upstream's refusal of a blob (401, 403, 429) passed on as it came, its OCI error body
/// included, so a client sees `TOOMANYREQUESTS` or `DENIED` rather than a gateway error. No
/// `WWW-Authenticate` goes along: the client cannot answer a challenge meant for the shim.
pub(super) fn upstream_refusal(
    status: StatusCode,
    content_type: Option<HeaderValue>,
    body: Bytes,
) -> Response {
    if body.is_empty() {
        return OciError::new(
            status,
            refusal_code(status),
            format!("upstream answered {status}"),
        )
        .into_response();
    }
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    if let Some(v) = content_type {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

/// Serves a cached file, honouring one `Range: bytes=a-b` (or `a-`, `-n`); any other `Range`
/// is ignored and the whole file sent (RFC 9110, 14.2).
pub(super) async fn serve_file(
    path: &Path,
    size: u64,
    headers: &HeaderMap,
    method: &Method,
    digest: &str,
    content_type: &'static str,
) -> Result<Response, OciError> {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Range::Ignored, |r| parse_range(r, size));
    let (status, start, len) = match range {
        Range::Ignored => (StatusCode::OK, 0, size),
        Range::Bytes(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Range::Unsatisfiable => {
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            resp.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
            );
            return Ok(resp);
        }
    };
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|_| OciError::not_found("cached blob vanished"))?;
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|_| OciError::not_found("cached blob vanished"))?;
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(len),
            READ_CHUNK,
        ))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(digest) {
        h.insert(DOCKER_CONTENT_DIGEST, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", start + len - 1))
                .expect("ascii"),
        );
    }
    Ok(resp)
}

/// What a `Range` header asks of a file.
#[derive(Debug, PartialEq, Eq)]
enum Range {
    /// First and last byte, inclusive.
    Bytes(u64, u64),
    /// One byte range that starts past the end: 416.
    Unsatisfiable,
    /// Several ranges, another unit, or not parseable: the whole file is sent (200), as RFC
    /// 9110 lets a server that does not support them do.
    Ignored,
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against `size`.
fn parse_range(value: &str, size: u64) -> Range {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Range::Ignored;
    };
    let Some((a, b)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return Range::Ignored;
    };
    let number = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => match number(n) {
            Some(0) => return Range::Unsatisfiable,
            Some(n) if size > 0 => (size.saturating_sub(n), size - 1),
            Some(_) => return Range::Unsatisfiable,
            None => return Range::Ignored,
        },
        (a, "") => match number(a) {
            Some(a) => (a, u64::MAX),
            None => return Range::Ignored,
        },
        (a, b) => match (number(a), number(b)) {
            (Some(a), Some(b)) if a <= b => (a, b),
            _ => return Range::Ignored,
        },
    };
    if start >= size {
        return Range::Unsatisfiable;
    }
    Range::Bytes(start, end.min(size - 1))
}

#[cfg(test)]
mod tests {
    use super::{Range, parse_range};

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Range::Bytes(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), Range::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), Range::Bytes(90, 99));
        assert_eq!(parse_range("bytes=95-200", 100), Range::Bytes(95, 99));
        assert_eq!(parse_range("bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(parse_range("bytes=100-200", 100), Range::Unsatisfiable);
        // Several ranges, other units and nonsense are ignored (200 with the whole file).
        assert_eq!(parse_range("bytes=5-2", 100), Range::Ignored);
        assert_eq!(parse_range("bytes=0-1,4-5", 100), Range::Ignored);
        assert_eq!(parse_range("items=0-1", 100), Range::Ignored);
        assert_eq!(parse_range("bytes=x-", 100), Range::Ignored);
    }
}
