//! Query strings and path parameters, read and checked the same way for the pages and the JSON
//! API: page numbers and sizes, search parameters, API type lookups and docs addresses. A value
//! out of range is an [`Error::BadRequest`] that says what is allowed; nothing here reads the
//! database or renders.

use axum::{
    extract::{FromRequestParts, Query, rejection::QueryRejection},
    http::request::Parts,
};
use serde::{Deserialize, de::DeserializeOwned};

use crate::error::Error;

/// A `page` parameter: absent or empty is 1; else a number from 1 to 1000.
pub fn check_page(page: Option<&str>) -> Result<i64, Error> {
    match page {
        None | Some("") => Ok(1),
        Some(p) => p
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=1000).contains(p))
            .ok_or_else(|| Error::bad_request("page must be a number from 1 to 1000.")),
    }
}

/// The size of a page of a JSON list, `page_size` in its query string: 1 to 100, `default`
/// when absent. (Pages use `web.page_size`; a browser has no use for choosing.)
pub fn check_page_size(page_size: Option<&str>, default: i64) -> Result<i64, Error> {
    match page_size {
        None | Some("") => Ok(default),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|s| (1..=100).contains(s))
            .ok_or_else(|| Error::bad_request("page_size must be a number from 1 to 100.")),
    }
}

/// A list's query string: its page (and, in the JSON API, the page's size).
#[derive(Debug, Deserialize, Default)]
pub struct PageParams {
    pub page: Option<String>,
    pub page_size: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct SearchParams {
    #[serde(default)]
    pub q: String,
    #[serde(default, rename = "type")]
    pub package_type: String,
    #[serde(default)]
    pub group: String,
    pub page: Option<String>,
    pub page_size: Option<String>,
}

pub const PACKAGE_TYPES: [&str; 3] = ["Provider", "Configuration", "Function"];

/// Search parameters after checking.
pub struct CheckedSearch {
    pub q: String,
    pub package_type: Option<&'static str>,
    pub group: Option<String>,
    pub page: i64,
}

impl CheckedSearch {
    /// The database's query for this search's page, `size` hits a page.
    pub fn query(&self, size: i64) -> crate::db::Query<'_> {
        crate::db::Query {
            q: &self.q,
            package_type: self.package_type,
            group: self.group.as_deref(),
            limit: size,
            offset: (self.page - 1) * size,
        }
    }
}

/// Checked search parameters: query text up to 256 characters, a known package type, a page
/// number from 1 to 1000.
pub fn check_search(params: &SearchParams) -> Result<CheckedSearch, Error> {
    let q = params.q.trim().to_owned();
    if q.chars().count() > 256 {
        return Err(Error::bad_request(
            "The query is longer than 256 characters.",
        ));
    }
    let package_type = match params.package_type.as_str() {
        "" => None,
        t => Some(
            PACKAGE_TYPES
                .iter()
                .find(|p| p.eq_ignore_ascii_case(t))
                .copied()
                .ok_or_else(|| {
                    Error::bad_request(format!("type must be one of {}.", PACKAGE_TYPES.join(", ")))
                })?,
        ),
    };
    let group = Some(params.group.trim().to_owned()).filter(|g| !g.is_empty());
    // The API group field alone is a search for that group (its kinds rank first).
    let q = match (&group, q.is_empty()) {
        (Some(g), true) => g.clone(),
        _ => q,
    };
    let page = check_page(params.page.as_deref())?;
    Ok(CheckedSearch {
        q,
        package_type,
        group,
        page,
    })
}

/// `/api/v1/apis`'s query string.
#[derive(Debug, Deserialize)]
pub struct ApisParams {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub kind: String,
}

/// A `sha256:<64 hex>` digest, and the representation asked for (`html`, `yaml`, `json`).
pub fn parse_docs_id(id: &str) -> Option<(&str, &str)> {
    let (digest, format) = match id.rsplit_once('.') {
        Some((d, f @ ("yaml" | "json"))) => (d, f),
        _ => (id, "html"),
    };
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some((digest, format))
}

/// A handler's query string read as `T`: axum's `Query` with this crate's error, so a string
/// that cannot be read is the 400 below on a page and in the API alike.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let Query(params) = Query::<T>::from_request_parts(parts, state).await?;
        Ok(Self(params))
    }
}

/// A query string axum could not read (a repeated or malformed parameter), as a 400 that says
/// so in words (the pages show it as an error page, the API in its error envelope).
impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Error::bad_request(format!(
            "This address's query string could not be read ({}). Check the parameters and try again.",
            rejection
                .body_text()
                .trim_start_matches("Failed to deserialize query string: ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_ids_are_sha256_digests_with_an_optional_format() {
        let hex = "a".repeat(64);
        let d = format!("sha256:{hex}");
        assert_eq!(parse_docs_id(&d), Some((d.as_str(), "html")));
        assert_eq!(
            parse_docs_id(&format!("{d}.yaml")),
            Some((d.as_str(), "yaml"))
        );
        assert_eq!(
            parse_docs_id(&format!("{d}.json")),
            Some((d.as_str(), "json"))
        );
        assert_eq!(parse_docs_id(&format!("{d}.exe")), None);
        assert_eq!(parse_docs_id("sha256:abc"), None);
        assert_eq!(parse_docs_id(&format!("sha512:{hex}")), None);
        assert_eq!(parse_docs_id(&format!("sha256:{}", "A".repeat(64))), None);
    }

    #[test]
    fn search_parameters_are_checked() {
        let p = |q: &str, t: &str, page: Option<&str>| SearchParams {
            q: q.into(),
            package_type: t.into(),
            group: String::new(),
            page: page.map(str::to_owned),
            page_size: None,
        };
        assert!(check_search(&p("x", "provider", Some("2"))).is_ok());
        assert!(check_search(&p(&"x".repeat(300), "", None)).is_err());
        assert!(check_search(&p("x", "Helm", None)).is_err());
        assert!(check_search(&p("x", "", Some("0"))).is_err());
        assert!(check_search(&p("x", "", Some("abc"))).is_err());
    }
}
