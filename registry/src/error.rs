//! One error type for everything a registry exchange can end in, and the closed set of error
//! codes the distribution spec defines. Classification lives here, once: whether a failure says
//! the content is missing, whether an anonymous refusal proves a repository private.

use http::StatusCode;

/// The distribution spec's error codes (and the few distribution itself adds), as they appear
/// in an error envelope's `code`. Anything else a registry sends is [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// distribution's own: the backend is down or unreachable (the shim answers it too).
    Unavailable,
    /// distribution's own, for a path no endpoint serves.
    NotFound,
    RangeInvalid,
    PaginationNumberInvalid,
    Unknown,
    /// A code outside the spec.
    Other,
}

const CODES: [(ErrorCode, &str); 19] = [
    (ErrorCode::BlobUnknown, "BLOB_UNKNOWN"),
    (ErrorCode::BlobUploadInvalid, "BLOB_UPLOAD_INVALID"),
    (ErrorCode::BlobUploadUnknown, "BLOB_UPLOAD_UNKNOWN"),
    (ErrorCode::DigestInvalid, "DIGEST_INVALID"),
    (ErrorCode::ManifestBlobUnknown, "MANIFEST_BLOB_UNKNOWN"),
    (ErrorCode::ManifestInvalid, "MANIFEST_INVALID"),
    (ErrorCode::ManifestUnknown, "MANIFEST_UNKNOWN"),
    (ErrorCode::NameInvalid, "NAME_INVALID"),
    (ErrorCode::NameUnknown, "NAME_UNKNOWN"),
    (ErrorCode::SizeInvalid, "SIZE_INVALID"),
    (ErrorCode::Unauthorized, "UNAUTHORIZED"),
    (ErrorCode::Denied, "DENIED"),
    (ErrorCode::Unsupported, "UNSUPPORTED"),
    (ErrorCode::TooManyRequests, "TOOMANYREQUESTS"),
    (ErrorCode::Unavailable, "UNAVAILABLE"),
    (ErrorCode::NotFound, "NOT_FOUND"),
    (ErrorCode::RangeInvalid, "RANGE_INVALID"),
    (
        ErrorCode::PaginationNumberInvalid,
        "PAGINATION_NUMBER_INVALID",
    ),
    (ErrorCode::Unknown, "UNKNOWN"),
];

impl ErrorCode {
    /// The code as the envelope writes it.
    pub fn as_str(self) -> &'static str {
        CODES
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("UNKNOWN", |(_, s)| s)
    }

    /// The code an envelope names (case-insensitive: some registries write them in lower case).
    pub fn parse(code: &str) -> Self {
        CODES
            .iter()
            .find(|(_, s)| s.eq_ignore_ascii_case(code))
            .map_or(Self::Other, |(c, _)| *c)
    }

    /// The code a refusal without an envelope stands for.
    pub fn of_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Denied,
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests,
            StatusCode::NOT_FOUND => Self::NotFound,
            _ => Self::Unknown,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Why an exchange with a registry failed. Every variant names the registry or the URL.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A backend or upstream could not be set up (a TLS file unreadable or invalid).
    #[error("backend {registry}: {what}: {message}")]
    Setup {
        registry: String,
        what: &'static str,
        message: String,
    },
    #[error(transparent)]
    Config(#[from] shimmer_config::ConfigError),
    /// No answer: refused connection, timeout, broken TLS, a body cut short.
    #[error("{url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The registry answered with an error status (and the codes of its envelope, if any).
    #[error("{url}: {status}{}", describe(.codes, .message))]
    Status {
        url: String,
        status: StatusCode,
        codes: Vec<ErrorCode>,
        message: String,
    },
    #[error("{url}: content digest is {actual}, not the {expected} asked for")]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url}: more than {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    /// An answer that is not what the spec says it is (bad JSON, a redirect without a location).
    #[error("{url}: {message}")]
    Invalid { url: String, message: String },
    #[error("registry: {0}")]
    Io(#[from] std::io::Error),
}

fn describe(codes: &[ErrorCode], message: &str) -> String {
    let mut out = String::new();
    for c in codes {
        out.push(' ');
        out.push_str(c.as_str());
    }
    if !message.is_empty() {
        out.push_str(": ");
        out.push_str(message);
    }
    out
}

impl RegistryError {
    /// The answer's status, when the registry gave one.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn says(&self, wanted: &[ErrorCode]) -> bool {
        match self {
            Self::Status { status, codes, .. } if codes.is_empty() => {
                *status == StatusCode::NOT_FOUND
            }
            Self::Status { codes, .. } => codes.iter().any(|c| wanted.contains(c)),
            _ => false,
        }
    }

    /// Whether the registry said the blob does not exist (`BLOB_UNKNOWN`, or a bare 404): a
    /// fact about the image, not a failure worth retrying.
    pub fn is_blob_unknown(&self) -> bool {
        self.says(&[ErrorCode::BlobUnknown])
    }

    /// Whether the registry said the manifest (or its repository) does not exist
    /// (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`, or a bare 404): a tag deleted since, say.
    pub fn is_manifest_unknown(&self) -> bool {
        self.says(&[
            ErrorCode::ManifestUnknown,
            ErrorCode::NameUnknown,
            ErrorCode::NotFound,
        ])
    }
}

/// What an anonymous manifest read says about a repository's visibility: `Some(true)` served,
/// `Some(false)` a clean refusal (401, 403, or 404: registries hide private repositories behind
/// either), `None` anything else (a timeout, a 5xx, a 429, a broken connection), which proves
/// nothing either way.
pub fn anonymous_answer<T>(read: &Result<T, RegistryError>) -> Option<bool> {
    use ErrorCode as C;
    let refusal = [
        C::Unauthorized,
        C::Denied,
        C::ManifestUnknown,
        C::NameUnknown,
        C::NotFound,
    ];
    match read {
        Ok(_) => Some(true),
        Err(RegistryError::Status { status, codes, .. }) => {
            let clean_status = matches!(status.as_u16(), 401 | 403 | 404);
            let clean_codes = if codes.is_empty() {
                clean_status
            } else {
                codes.iter().all(|c| refusal.contains(c))
            };
            clean_codes.then_some(false)
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, codes: &[ErrorCode]) -> RegistryError {
        RegistryError::Status {
            url: "http://r/v2/x/manifests/sha256:0".into(),
            status: StatusCode::from_u16(code).unwrap(),
            codes: codes.to_vec(),
            message: String::new(),
        }
    }

    #[test]
    fn codes_round_trip_and_unknown_ones_are_other() {
        for (code, text) in CODES {
            assert_eq!(ErrorCode::parse(text), code);
            assert_eq!(code.as_str(), text);
            assert_eq!(code, text);
        }
        assert_eq!(
            ErrorCode::parse("manifest_unknown"),
            ErrorCode::ManifestUnknown
        );
        assert_eq!(ErrorCode::parse("SOMETHING_ELSE"), ErrorCode::Other);
    }

    #[test]
    fn only_a_clean_refusal_makes_a_package_private() {
        use ErrorCode as C;
        assert_eq!(anonymous_answer::<()>(&Ok(())), Some(true));
        for refusal in [
            status(401, &[]),
            status(403, &[]),
            status(404, &[]),
            status(403, &[C::Denied]),
            status(401, &[C::Unauthorized]),
            status(404, &[C::ManifestUnknown]),
            status(404, &[C::NameUnknown]),
        ] {
            let shown = refusal.to_string();
            assert_eq!(
                anonymous_answer::<()>(&Err(refusal)),
                Some(false),
                "{shown}"
            );
        }
        for unknown in [
            status(500, &[]),
            status(502, &[]),
            status(429, &[]),
            status(429, &[C::TooManyRequests]),
            RegistryError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "read timed out",
            )),
            RegistryError::Invalid {
                url: "u".into(),
                message: "m".into(),
            },
        ] {
            let shown = unknown.to_string();
            assert_eq!(anonymous_answer::<()>(&Err(unknown)), None, "{shown}");
        }
    }

    #[test]
    fn missing_content_is_told_apart_from_failures() {
        use ErrorCode as C;
        assert!(status(404, &[C::BlobUnknown]).is_blob_unknown());
        assert!(status(404, &[]).is_blob_unknown());
        assert!(!status(500, &[]).is_blob_unknown());
        assert!(!status(404, &[C::ManifestUnknown]).is_blob_unknown());
        assert!(status(404, &[C::ManifestUnknown]).is_manifest_unknown());
        assert!(status(404, &[C::NameUnknown]).is_manifest_unknown());
        assert!(!status(401, &[C::Unauthorized]).is_manifest_unknown());
    }
}
