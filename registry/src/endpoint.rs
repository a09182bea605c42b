//! Where a registry's API lives and how its repository names map onto the shim's: the URL
//! arithmetic every request to it uses. Pure: no I/O.

use url::Url;

/// A registry's base URL and repository prefix, parsed once.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Scheme, host and port, e.g. `https://registry.example.com:5000`.
    origin: String,
    /// Path the API lives under, without a trailing slash (usually empty).
    base_path: String,
    /// The configured URL: [`Endpoint::api_url`] only sets its path and query.
    base_url: Url,
    /// Prepended to shim repository names to get the registry's (`mirror/` stores `acme/x` at
    /// `mirror/acme/x`).
    pub prefix: String,
}

impl Endpoint {
    pub fn new(url: &Url, prefix: &str) -> Self {
        Self {
            origin: url[..url::Position::BeforePath].to_owned(),
            base_path: url.path().trim_end_matches('/').to_owned(),
            base_url: url.clone(),
            prefix: prefix.to_owned(),
        }
    }

    /// The registry's name for a shim repository.
    pub fn backend_repo(&self, shim_name: &str) -> String {
        format!("{}{}", self.prefix, shim_name)
    }

    /// The shim's name for a registry repository, if it is one the shim maps.
    pub fn shim_repo<'a>(&self, backend_name: &'a str) -> Option<&'a str> {
        backend_name.strip_prefix(&self.prefix)
    }

    /// The URL of an API path (`api_path` starts with `/v2/`).
    pub fn url(&self, api_path: &str, query: Option<&str>) -> String {
        let mut u = format!("{}{}{}", self.origin, self.base_path, api_path);
        if let Some(q) = query {
            u.push('?');
            u.push_str(q);
        }
        u
    }

    /// [`Endpoint::url`], built on the parsed configured URL: no parse of its scheme and host
    /// per request. `api_path` must be a path only (validated names, references and digests): a
    /// `?` or `#` in it would be percent-encoded, not taken as a query or fragment.
    pub fn api_url(&self, api_path: &str, query: Option<&str>) -> Url {
        let mut u = self.base_url.clone();
        if self.base_path.is_empty() {
            u.set_path(api_path);
        } else {
            u.set_path(&format!("{}{api_path}", self.base_path));
        }
        u.set_query(query);
        u.set_fragment(None);
        u
    }

    /// The URL of an absolute path on this registry's origin (an upload location outside the
    /// API path), so an encoded session can never point at another host.
    pub fn at_origin(&self, path: &str, query: Option<&str>) -> String {
        let mut u = format!("{}{}", self.origin, path);
        if let Some(q) = query {
            u.push('?');
            u.push_str(q);
        }
        u
    }

    pub fn base_path(&self) -> &str {
        &self.base_path
    }

    /// Whether `url` is on this registry (same scheme, host and port).
    pub fn owns(&self, url: &Url) -> bool {
        url[..url::Position::BeforePath] == self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::Endpoint;

    #[test]
    fn paths_prefixes_and_origins() {
        let e = Endpoint::new(&"https://r.example:5000/registry/".parse().unwrap(), "m/");
        assert_eq!(
            e.url("/v2/m/a/manifests/1", Some("n=1")),
            "https://r.example:5000/registry/v2/m/a/manifests/1?n=1"
        );
        assert_eq!(
            e.api_url("/v2/m/a/tags/list", None).as_str(),
            "https://r.example:5000/registry/v2/m/a/tags/list"
        );
        assert_eq!(e.backend_repo("a"), "m/a");
        assert_eq!(e.shim_repo("m/a"), Some("a"));
        assert_eq!(e.shim_repo("other/a"), None);
        assert!(e.owns(&"https://r.example:5000/elsewhere".parse().unwrap()));
        assert!(!e.owns(&"https://r.example/registry/v2/".parse().unwrap()));
        assert_eq!(e.at_origin("/up/1", None), "https://r.example:5000/up/1");
    }
}
