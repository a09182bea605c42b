//! Package icons: `/icons/<manifest digest>` serves a version's icon, and only as an image it
//! recognises by its bytes ([`decode_icon`]); pages ask the same function before they link one,
//! so a page never shows a broken `<img>`.

use std::sync::Arc;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use base64::Engine;

use crate::{
    db,
    error::{Error, Result},
    http::{Caching, cached},
    state::AppState,
};

/// `/icons/<manifest digest>`: a version's icon, only as an image: a raster data URI is served
/// with its own type, an SVG with a policy that forbids scripts and everything else.
pub async fn serve(
    State(state): State<Arc<AppState>>,
    Path(digest): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let reader = state.is_reader(&headers);
    let (uri, data, public) = db::icon(&state.pool, reader, &digest)
        .await?
        .ok_or_else(|| Error::not_found("No such icon."))?;
    let (content_type, bytes) = decode_icon(uri.as_deref(), data.as_deref())
        .ok_or_else(|| Error::not_found("This package's icon is not an image shimmer serves."))?;
    let mut resp = cached(
        &headers,
        Caching::Immutable { public },
        Some(&digest),
        content_type,
        bytes,
    );
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
    );
    Ok(resp)
}

/// Bytes of the largest icon served.
const ICON_LIMIT: usize = 1024 * 1024;

/// The image type and bytes of an icon data URI (`data:image/png;base64,...`) or of old
/// packages' bare base64 `iconData`, recognised by its magic bytes. Anything else: `None`.
pub fn decode_icon(uri: Option<&str>, data: Option<&str>) -> Option<(&'static str, Vec<u8>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = if let Some(rest) = uri.and_then(|u| u.strip_prefix("data:")) {
        let (params, payload) = rest.split_once(',')?;
        if params.ends_with(";base64") {
            b64.decode(payload.trim()).ok()?
        } else {
            url::form_urlencoded::parse(payload.as_bytes())
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.into_owned()
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect::<String>()
                .into_bytes()
        }
    } else {
        b64.decode(data?.trim()).ok()?
    };
    if bytes.len() > ICON_LIMIT {
        return None;
    }
    let t = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF8") {
        "image/gif"
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).contains("<svg") {
        "image/svg+xml"
    } else {
        return None;
    };
    Some((t, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_are_served_only_as_images() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nrest");
        let (t, _) = decode_icon(Some(&format!("data:image/png;base64,{png}")), None).unwrap();
        assert_eq!(t, "image/png");
        let (t, _) = decode_icon(None, Some(&png)).unwrap();
        assert_eq!(t, "image/png");
        let svg = base64::engine::general_purpose::STANDARD
            .encode(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>");
        let (t, _) = decode_icon(Some(&format!("data:image/svg+xml;base64,{svg}")), None).unwrap();
        assert_eq!(t, "image/svg+xml");
        let html = base64::engine::general_purpose::STANDARD.encode(b"<html><script>x</script>");
        assert!(decode_icon(Some(&format!("data:text/html;base64,{html}")), None).is_none());
        assert!(decode_icon(Some("https://example.com/icon.png"), None).is_none());
    }
}
