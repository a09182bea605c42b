//! Tag lists paged by the shim where the backend does not: docker-registry 2.8 ignores `n` and
//! `last` and lists tags in no order. With `n` or `last` in the query, the backend's list is
//! sorted lexically (the order the distribution spec pages in), the tags after `last` kept, the
//! first `n` answered, and a `Link` to the next page added when more remain. A backend that
//! pages (it has sent a `Link`; remembered per backend) is passed through untouched.

use axum::http::StatusCode;
use shimmer_registry::ErrorCode;

use crate::error::OciError;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Page {
    pub n: Option<usize>,
    pub last: Option<String>,
}

/// The paging a tag list request asks for, if any; a `n` that is not a count is the spec's
/// `PAGINATION_NUMBER_INVALID`.
pub(super) fn requested(query: Option<&str>) -> Result<Option<Page>, OciError> {
    let pairs = url::form_urlencoded::parse(query.unwrap_or("").as_bytes());
    let mut page = Page {
        n: None,
        last: None,
    };
    for (k, v) in pairs {
        match &*k {
            "n" => {
                let n = v.parse::<usize>().map_err(|_| {
                    OciError::new(
                        StatusCode::BAD_REQUEST,
                        ErrorCode::PaginationNumberInvalid,
                        format!("n must be a count of tags, not {v:?}"),
                    )
                })?;
                page.n = Some(n);
            }
            "last" if !v.is_empty() => page.last = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok((page.n.is_some() || page.last.is_some()).then_some(page))
}

/// The page of `tags` asked for, and whether more tags follow it.
pub(super) fn page(mut tags: Vec<String>, page: &Page) -> (Vec<String>, bool) {
    tags.sort();
    tags.dedup();
    if let Some(last) = &page.last {
        tags.retain(|t| t > last);
    }
    match page.n {
        Some(n) if tags.len() > n => {
            tags.truncate(n);
            (tags, true)
        }
        _ => (tags, false),
    }
}

/// The `Link` to the page after one ending at `last`: the client's own path and query with
/// `last` replaced (`ns` and the rest kept).
pub(super) fn next_link(path: &str, query: Option<&str>, last: &str) -> String {
    let pairs = url::form_urlencoded::parse(query.unwrap_or("").as_bytes());
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.filter(|(k, _)| k != "last"))
        .append_pair("last", last)
        .finish();
    format!("<{path}?{query}>; rel=\"next\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_list_is_sorted_cut_after_last_and_to_n() {
        let all = tags(&["b", "c", "a", "d"]);
        let p = |n, last: Option<&str>| Page {
            n,
            last: last.map(str::to_owned),
        };
        assert_eq!(
            page(all.clone(), &p(Some(2), None)),
            (tags(&["a", "b"]), true)
        );
        assert_eq!(
            page(all.clone(), &p(Some(2), Some("b"))),
            (tags(&["c", "d"]), false)
        );
        assert_eq!(
            page(all.clone(), &p(None, Some("c"))),
            (tags(&["d"]), false)
        );
        assert_eq!(page(all.clone(), &p(Some(0), None)), (tags(&[]), true));
        // A backend that paged already: left as it was.
        assert_eq!(
            page(tags(&["c", "d"]), &p(Some(2), Some("b"))),
            (tags(&["c", "d"]), false)
        );
    }

    #[test]
    fn the_query_is_read_and_a_bad_n_refused() {
        assert_eq!(requested(None).unwrap(), None);
        assert_eq!(requested(Some("ns=docker.io")).unwrap(), None);
        assert_eq!(
            requested(Some("n=2&last=b")).unwrap(),
            Some(Page {
                n: Some(2),
                last: Some("b".into())
            })
        );
        let e = requested(Some("n=two")).unwrap_err();
        assert_eq!(e.code, ErrorCode::PaginationNumberInvalid);
        assert_eq!(
            next_link("/v2/a/b/tags/list", Some("n=2&ns=docker.io&last=a"), "b"),
            "</v2/a/b/tags/list?n=2&ns=docker.io&last=b>; rel=\"next\""
        );
    }
}
