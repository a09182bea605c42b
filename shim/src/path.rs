//! Parses the part of a `/v2/` URL after the prefix into the endpoint it names.
//!
//! Repository names contain `/`, so one catch-all route feeds this parser, which looks at the
//! path from its end (`manifests/<ref>`, `blobs/<digest>`, `blobs/uploads/...`, `tags/list`,
//! `referrers/<digest>`) and validates every part with the distribution spec's grammar before
//! anything is sent to a backend.

use crate::error::OciError;
use shimmer_registry::ErrorCode;

/// A `/v2/...` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    Tags {
        name: String,
    },
    Manifest {
        name: String,
        reference: Reference,
    },
    Blob {
        name: String,
        digest: String,
    },
    /// `POST /v2/<name>/blobs/uploads/`
    UploadStart {
        name: String,
    },
    /// `/v2/<name>/blobs/uploads/<session>`: the session part is opaque (the backend's, or the
    /// shim's encoding of a backend URL outside `/v2`).
    UploadSession {
        name: String,
        session: String,
    },
    Referrers {
        name: String,
        digest: String,
    },
}

impl Endpoint {
    /// The repository the endpoint is about, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Self::Base | Self::Catalog => None,
            Self::Tags { name }
            | Self::Manifest { name, .. }
            | Self::Blob { name, .. }
            | Self::UploadStart { name }
            | Self::UploadSession { name, .. }
            | Self::Referrers { name, .. } => Some(name),
        }
    }

    /// The same endpoint for another repository name.
    pub fn renamed(&self, new: String) -> Endpoint {
        let mut e = self.clone();
        match &mut e {
            Self::Base | Self::Catalog => {}
            Self::Tags { name }
            | Self::Manifest { name, .. }
            | Self::Blob { name, .. }
            | Self::UploadStart { name }
            | Self::UploadSession { name, .. }
            | Self::Referrers { name, .. } => *name = new,
        }
        e
    }

    /// A low-cardinality label for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Catalog => "catalog",
            Self::Tags { .. } => "tags",
            Self::Manifest { .. } => "manifest",
            Self::Blob { .. } => "blob",
            Self::UploadStart { .. } | Self::UploadSession { .. } => "upload",
            Self::Referrers { .. } => "referrers",
        }
    }
}

/// The kind of endpoint a raw `/v2` path is for ([`Endpoint::kind`]'s names, `other` for a
/// path no endpoint serves), told from its last marker without validating it: for a request's
/// span, which must not carry the path (an upload session is a signed secret).
pub fn endpoint_kind(raw_path: &str) -> &'static str {
    let rest = raw_path.strip_prefix("/v2").unwrap_or(raw_path);
    if rest.is_empty() || rest == "/" {
        return "base";
    }
    if rest == "/_catalog" {
        return "catalog";
    }
    if rest.ends_with("/tags/list") {
        return "tags";
    }
    let markers = [
        ("/blobs/uploads", "upload"),
        ("/manifests/", "manifest"),
        ("/blobs/", "blob"),
        ("/referrers/", "referrers"),
    ];
    markers
        .iter()
        .filter_map(|(m, kind)| rest.rfind(m).map(|i| (i, *kind)))
        // The last marker wins; of two at one place (`/blobs/uploads`), the first listed.
        .max_by_key(|(i, kind)| (*i, *kind == "upload"))
        .map_or("other", |(_, kind)| kind)
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Tag(s) | Self::Digest(s) => s,
        }
    }
}

/// Parses `rest`, the path after `/v2/` (no leading slash).
///
/// Kept whole: one grammar, read from the path's end, as names may contain any endpoint word.
pub fn parse(rest: &str) -> Result<Endpoint, OciError> {
    if rest.is_empty() {
        return Ok(Endpoint::Base);
    }
    if rest == "_catalog" {
        return Ok(Endpoint::Catalog);
    }
    let segs: Vec<&str> = rest.split('/').collect();
    let n = segs.len();
    let unknown = || OciError::not_found(format!("no OCI distribution endpoint at /v2/{rest}"));
    if n < 2 {
        return Err(unknown());
    }
    let name_of = |end: usize| -> Result<String, OciError> {
        let name = segs[..end].join("/");
        if is_valid_name(&name) {
            Ok(name)
        } else {
            Err(OciError::name_invalid(&name))
        }
    };
    let (last, second) = (segs[n - 1], segs[n - 2]);
    if n >= 3 && second == "tags" && last == "list" {
        return Ok(Endpoint::Tags {
            name: name_of(n - 2)?,
        });
    }
    if n >= 3 && second == "manifests" {
        let name = name_of(n - 2)?;
        let reference = if last.contains(':') {
            check_digest(last)?;
            Reference::Digest(last.to_owned())
        } else if is_valid_tag(last) {
            Reference::Tag(last.to_owned())
        } else {
            return Err(OciError::new(
                http::StatusCode::BAD_REQUEST,
                ErrorCode::ManifestInvalid,
                format!("invalid tag {last:?}"),
            ));
        };
        return Ok(Endpoint::Manifest { name, reference });
    }
    // `<name>/blobs/uploads/` splits into [.., "blobs", "uploads", ""].
    if n >= 4 && segs[n - 3] == "blobs" && second == "uploads" && last.is_empty() {
        return Ok(Endpoint::UploadStart {
            name: name_of(n - 3)?,
        });
    }
    if n >= 3 && second == "blobs" && last == "uploads" {
        return Ok(Endpoint::UploadStart {
            name: name_of(n - 2)?,
        });
    }
    if n >= 3 && second == "blobs" {
        let name = name_of(n - 2)?;
        check_digest(last)?;
        return Ok(Endpoint::Blob {
            name,
            digest: last.to_owned(),
        });
    }
    if n >= 3 && second == "referrers" {
        let name = name_of(n - 2)?;
        check_digest(last)?;
        return Ok(Endpoint::Referrers {
            name,
            digest: last.to_owned(),
        });
    }
    // An upload session: the last `blobs/uploads/` pair followed by a non-empty session.
    if let Some(i) = (1..n.saturating_sub(2))
        .rev()
        .find(|&i| segs[i] == "blobs" && segs[i + 1] == "uploads")
    {
        let session = segs[i + 2..].join("/");
        // A session goes back into the backend's URL: nothing in it may climb out of the
        // upload's path (dot segments; `\`, which URL parsers take for `/`) or end the path
        // (`?`, `#`), and no registry writes spaces or control characters into one.
        let climbs = session.split('/').any(|s| s == ".." || s == ".");
        let breaks_out = session
            .chars()
            .any(|c| matches!(c, '\\' | '?' | '#') || c.is_whitespace() || c.is_control());
        if session.is_empty() || climbs || breaks_out {
            return Err(upload_unknown(&session));
        }
        return Ok(Endpoint::UploadSession {
            name: name_of(i)?,
            session,
        });
    }
    Err(unknown())
}

fn upload_unknown(session: &str) -> OciError {
    OciError::new(
        http::StatusCode::NOT_FOUND,
        ErrorCode::BlobUploadUnknown,
        format!("invalid upload session {session:?}"),
    )
}

/// The spec's repository name grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, at most 255 bytes.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(is_valid_component)
}

fn is_valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Tags: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
}

/// Digests: `algorithm:encoded` with a registered algorithm and its exact encoding (sha256: 64
/// lowercase hex, sha512: 128). The spec's grammar admits other algorithms, but no registry
/// implements them (docker-registry answers 500), so they are refused here as `DIGEST_INVALID`.
pub fn check_digest(d: &str) -> Result<(), OciError> {
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|x| x.is_ascii_digit() || (b'a'..=b'f').contains(&x))
    };
    let ok = match d.split_once(':') {
        Some(("sha256", enc)) => hex(enc, 64),
        Some(("sha512", enc)) => hex(enc, 128),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(OciError::digest_invalid(d))
    }
}

#[cfg(test)]
mod tests;
