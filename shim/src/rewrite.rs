//! Maps backend URLs in `Location` and `Link` headers onto the shim, and back.
//!
//! A client must send its next request (an upload's `PATCH`, the next page of tags) to the shim,
//! and the shim must turn it back into exactly the URL the backend gave. Three cases:
//! - on the backend, under `/v2/<backend repo>/...`: becomes `/v2/<shim repo>/...`;
//! - on the backend, anywhere else (e.g. an upload endpoint outside `/v2`): the backend path is
//!   carried opaquely as an upload session
//!   `/v2/<shim repo>/blobs/uploads/~<base64url(path)>.<base64url(mac)>`, which only ever maps
//!   back onto the same backend's origin, and only if the shim signed it for that backend and
//!   repository (else a client could write a session naming any path on the backend's host);
//! - on another host (object storage): left alone, the client goes there directly.
//!
//! The query string is never parsed or re-encoded: registries keep upload state in it
//! (`_state=...`), and clients append to it (`&digest=...`).

use std::sync::OnceLock;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use url::Url;

use crate::backend::Backend;

/// Marks an upload session that encodes a backend path outside `/v2`.
const ENCODED_SESSION: char = '~';

/// Signs the encoded upload sessions the shim hands out and checks those clients send back.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

/// Bytes of HMAC-SHA256 a session carries: 128 bits, beyond guessing.
const TAG_BYTES: usize = 16;

impl SessionKey {
    /// The key from `server.session_secret`, or else one drawn at random once per process (so
    /// every serving thread's state shares it).
    pub fn new(secret: Option<&str>) -> Self {
        static RANDOM: OnceLock<[u8; 32]> = OnceLock::new();
        match secret {
            Some(s) => Self(Sha256::digest(s.as_bytes()).into()),
            None => Self(*RANDOM.get_or_init(|| {
                let mut key = [0; 32];
                getrandom::getrandom(&mut key).expect("the operating system's random source");
                key
            })),
        }
    }

    fn mac(&self, backend: &str, repo: &str, path: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        for part in [backend, repo, path] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// The session that carries `path` for `repo` (by its shim name) on `backend`.
    fn encode(&self, backend: &str, repo: &str, path: &str) -> String {
        let tag = self.mac(backend, repo, path).finalize().into_bytes();
        format!(
            "{ENCODED_SESSION}{}.{}",
            URL_SAFE_NO_PAD.encode(path),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        )
    }

    /// Where an upload session the shim handed out lives on `backend`: the backend path
    /// (starting with `/`) for an encoded session signed for this backend and repository, an
    /// error for any other encoded session, `None` for an ordinary session id.
    pub fn decode(&self, backend: &str, repo: &str, session: &str) -> Option<Result<String, ()>> {
        let encoded = session.strip_prefix(ENCODED_SESSION)?;
        let checked = || {
            let (path, tag) = encoded.split_once('.')?;
            let path = String::from_utf8(URL_SAFE_NO_PAD.decode(path).ok()?).ok()?;
            let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
            (tag.len() == TAG_BYTES).then_some(())?;
            self.mac(backend, repo, &path)
                .verify_truncated_left(&tag)
                .ok()?;
            Some(path).filter(|p| p.starts_with('/') && !p.starts_with("//"))
        };
        Some(checked().ok_or(()))
    }
}

/// What the shim knows about the request whose response is being rewritten.
pub struct Context<'a> {
    pub backend: &'a Backend,
    /// Signs the sessions that carry backend paths outside `/v2`.
    pub sessions: &'a SessionKey,
    /// The backend URL the shim requested (relative `Location`s resolve against it).
    pub request_url: &'a Url,
    /// The repository, by its shim and backend names, if the endpoint has one.
    pub repo: Option<(&'a str, &'a str)>,
    /// `public_url` without its trailing slash, or empty for relative URLs.
    pub public_base: &'a str,
    /// The upstream (`ns`) the request went to: the client's next request must name it too, or
    /// it would go to whichever backend routes the name.
    pub ns: Option<&'a str>,
}

impl Context<'_> {
    /// Rewrites one URL from a backend header; `None` leaves it unchanged.
    pub fn url(&self, value: &str) -> Option<String> {
        let abs = self.request_url.join(value).ok()?;
        if !self.backend.endpoint().owns(&abs) {
            return None;
        }
        let query = raw_query(value);
        let path = abs.path();
        let in_api = path
            .strip_prefix(self.backend.endpoint().base_path())
            .and_then(|p| p.strip_prefix("/v2/"));
        let shim_path = match in_api.and_then(|rest| self.map_api_path(rest)) {
            Some(p) => p,
            None => {
                // Outside the API namespace the shim maps: carry the path opaquely.
                let (shim_repo, _) = self.repo?;
                let session = self.sessions.encode(&self.backend.name, shim_repo, path);
                format!("/v2/{shim_repo}/blobs/uploads/{session}")
            }
        };
        let mut out = format!("{}{}", self.public_base, shim_path);
        if let Some(q) = query {
            out.push('?');
            out.push_str(q);
        }
        if let Some(ns) = self.ns {
            out.push(if query.is_some() { '&' } else { '?' });
            out.push_str("ns=");
            out.extend(url::form_urlencoded::byte_serialize(ns.as_bytes()));
        }
        Some(out)
    }

    /// `rest` is a backend path after `/v2/`; returns the shim path, if the repository in it is
    /// one the shim can name.
    fn map_api_path(&self, rest: &str) -> Option<String> {
        if rest.is_empty() || rest.starts_with("_catalog") {
            return Some(format!("/v2/{rest}"));
        }
        match self.repo {
            Some((shim_repo, backend_repo)) => {
                // Another repository's path would become a shim name that may route to another
                // backend: that is left to an encoded session, which maps back onto this one.
                let tail = rest
                    .strip_prefix(backend_repo)
                    .filter(|t| t.starts_with('/'))?;
                Some(format!("/v2/{shim_repo}{tail}"))
            }
            None => {
                let shim_rest = self.backend.endpoint().shim_repo(rest)?;
                Some(format!("/v2/{shim_rest}"))
            }
        }
    }

    /// Rewrites every `<url>` of a `Link` header value.
    pub fn link(&self, value: &str) -> Option<String> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        let mut changed = false;
        while let Some(start) = rest.find('<') {
            let end = start + rest[start..].find('>')?;
            out.push_str(&rest[..=start]);
            let target = &rest[start + 1..end];
            match self.url(target) {
                Some(new) => {
                    out.push_str(&new);
                    changed = true;
                }
                None => out.push_str(target),
            }
            rest = &rest[end..];
        }
        out.push_str(rest);
        changed.then_some(out)
    }
}

/// The query of a URL exactly as written (without `?` and any fragment).
fn raw_query(value: &str) -> Option<&str> {
    let q = value.split_once('?')?.1;
    Some(q.split_once('#').map_or(q, |(q, _)| q))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::test_backend as backend;

    fn key() -> &'static SessionKey {
        static KEY: OnceLock<SessionKey> = OnceLock::new();
        KEY.get_or_init(|| SessionKey::new(Some("0123456789abcdef0123456789abcdef")))
    }

    fn ctx<'a>(b: &'a Backend, req: &'a Url, public: &'a str) -> Context<'a> {
        Context {
            backend: b,
            sessions: key(),
            ns: None,
            request_url: req,
            repo: Some(("acme/x", "mirror/acme/x")),
            public_base: public,
        }
    }

    #[test]
    fn absolute_and_relative_locations_map_to_the_shim_keeping_the_query() {
        let b = backend("http://127.0.0.1:5001", "mirror/");
        let req: Url = "http://127.0.0.1:5001/v2/mirror/acme/x/blobs/uploads/"
            .parse()
            .unwrap();
        let c = ctx(&b, &req, "");
        let q = "_state=AbC%2B%3D%3D&x=1";
        assert_eq!(
            c.url(&format!(
                "http://127.0.0.1:5001/v2/mirror/acme/x/blobs/uploads/u-1?{q}"
            )),
            Some(format!("/v2/acme/x/blobs/uploads/u-1?{q}"))
        );
        assert_eq!(
            c.url(&format!("/v2/mirror/acme/x/blobs/uploads/u-1?{q}")),
            Some(format!("/v2/acme/x/blobs/uploads/u-1?{q}"))
        );
        let c = ctx(&b, &req, "https://shim.example.com");
        assert_eq!(
            c.url("/v2/mirror/acme/x/manifests/sha256:ab"),
            Some("https://shim.example.com/v2/acme/x/manifests/sha256:ab".into())
        );
    }

    #[test]
    fn foreign_hosts_are_left_alone() {
        let b = backend("http://127.0.0.1:5001", "");
        let req: Url = "http://127.0.0.1:5001/v2/acme/x/blobs/sha256:ab"
            .parse()
            .unwrap();
        let c = ctx(&b, &req, "");
        assert_eq!(c.url("https://s3.example.com/bucket/blob?sig=1"), None);
    }

    #[test]
    fn paths_outside_v2_round_trip_through_an_encoded_session() {
        let b = backend("http://127.0.0.1:5001", "mirror/");
        let req: Url = "http://127.0.0.1:5001/v2/mirror/acme/x/blobs/uploads/"
            .parse()
            .unwrap();
        let c = ctx(&b, &req, "");
        let shim = c.url("/upload/area/77?state=q").unwrap();
        let (path, query) = shim.split_once('?').unwrap();
        assert_eq!(query, "state=q");
        let session = path.strip_prefix("/v2/acme/x/blobs/uploads/").unwrap();
        let name = &b.name;
        let decode = |repo: &str, session: &str| key().decode(name, repo, session);
        assert_eq!(
            decode("acme/x", session),
            Some(Ok("/upload/area/77".into()))
        );
        assert_eq!(decode("acme/x", "plain-uuid"), None);
        assert_eq!(decode("acme/x", "~!!!"), Some(Err(())));
        // Signed for this backend and repository only, by this key only.
        assert_eq!(decode("acme/y", session), Some(Err(())));
        assert_eq!(key().decode("other", "acme/x", session), Some(Err(())));
        let other_key = SessionKey::new(Some("another secret, 32 characters long"));
        assert_eq!(other_key.decode(name, "acme/x", session), Some(Err(())));
        // A session a client writes itself, naming any path, is refused: without a tag, with
        // a tag of another path, or with a truncated one.
        let forged = |path: &str| format!("~{}", URL_SAFE_NO_PAD.encode(path));
        assert_eq!(decode("acme/x", &forged("/admin/users")), Some(Err(())));
        let tag = session.split_once('.').unwrap().1;
        let swapped = format!("{}.{tag}", forged("/v2/secret/repo/manifests/latest"));
        assert_eq!(decode("acme/x", &swapped), Some(Err(())));
        let short = &session[..session.len() - 2];
        assert_eq!(decode("acme/x", short), Some(Err(())));
        // Even signed, `//host/path` would change the origin; it is refused.
        let evil = key().encode(name, "acme/x", "//evil.example.com/x");
        assert_eq!(decode("acme/x", &evil), Some(Err(())));
        // Without a configured secret, one random key per process: every thread's state agrees.
        assert_eq!(SessionKey::new(None).0, SessionKey::new(None).0);
        assert_ne!(SessionKey::new(None).0, key().0);
    }

    #[test]
    fn another_repositorys_path_stays_on_this_backend() {
        // A shim name for `mirror/other` could route to another backend (and the client's next
        // request, credentials and all, with it): the path is carried in a session instead.
        let b = backend("http://127.0.0.1:5001", "mirror/");
        let req: Url = "http://127.0.0.1:5001/v2/mirror/acme/x/blobs/uploads/"
            .parse()
            .unwrap();
        let c = ctx(&b, &req, "");
        let shim = c.url("/v2/mirror/other/blobs/uploads/u-1?s=1").unwrap();
        let (path, query) = shim.split_once('?').unwrap();
        assert_eq!(query, "s=1");
        let session = path.strip_prefix("/v2/acme/x/blobs/uploads/").unwrap();
        assert_eq!(
            key().decode(&b.name, "acme/x", session),
            Some(Ok("/v2/mirror/other/blobs/uploads/u-1".into()))
        );
    }

    #[test]
    fn answers_of_an_upstream_keep_naming_it() {
        let b = backend("https://registry-1.docker.io", "");
        let req: Url = "https://registry-1.docker.io/v2/library/busybox/tags/list?n=1"
            .parse()
            .unwrap();
        let c = Context {
            repo: Some(("library/busybox", "library/busybox")),
            ns: Some("docker.io"),
            ..ctx(&b, &req, "")
        };
        assert_eq!(
            c.link(r#"</v2/library/busybox/tags/list?last=a&n=1>; rel="next""#),
            Some(r#"</v2/library/busybox/tags/list?last=a&n=1&ns=docker.io>; rel="next""#.into())
        );
        assert_eq!(
            c.url("/v2/library/busybox/manifests/sha256:ab"),
            Some("/v2/library/busybox/manifests/sha256:ab?ns=docker.io".into())
        );
    }

    #[test]
    fn link_headers_point_at_the_shim() {
        let b = backend("http://127.0.0.1:5001", "mirror/");
        let req: Url = "http://127.0.0.1:5001/v2/mirror/acme/x/tags/list?n=2"
            .parse()
            .unwrap();
        let c = ctx(&b, &req, "");
        assert_eq!(
            c.link(r#"</v2/mirror/acme/x/tags/list?last=b&n=2>; rel="next""#),
            Some(r#"</v2/acme/x/tags/list?last=b&n=2>; rel="next""#.into())
        );
        assert_eq!(
            c.link(r#"</v2/_catalog?last=mirror%2Facme%2Fx&n=2>; rel="next""#),
            Some(r#"</v2/_catalog?last=mirror%2Facme%2Fx&n=2>; rel="next""#.into())
        );
    }
}
