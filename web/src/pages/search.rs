//! `/search`: packages and API types in one ranked list (see [`crate::db::search_page`]), a page
//! of `web.page_size` hits at a time; an empty query shows the form alone.

use std::sync::Arc;

use askama::Template;
use axum::{extract::State, http::HeaderMap, response::Response};

use crate::{
    db,
    error::Result,
    http::html,
    layout::Layout,
    params::{CheckedSearch, PACKAGE_TYPES, Params, SearchParams, check_search},
    state::AppState,
    text::{package_url, summary, urlencode, version_url},
};

/// A search hit as the page lists it.
pub struct HitView {
    pub hit_type: String,
    pub repository: String,
    pub version: Option<String>,
    pub package_type: Option<String>,
    pub description: Option<String>,
    pub group: String,
    pub kind: String,
    pub docs_url: String,
    pub package_url: String,
    /// An API hit's served versions, joined (`v1beta1, v1beta2`).
    pub versions: String,
    /// A package hit's newest rejected push, in short.
    pub rejection: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    q: String,
    package_type: String,
    group: String,
    types: [&'static str; 3],
    total: i64,
    first: i64,
    hits: Vec<HitView>,
    prev: Option<String>,
    next: Option<String>,
}

impl HitView {
    fn new(state: &AppState, h: db::SearchHit) -> Self {
        HitView {
            package_url: match &h.version {
                Some(v) => version_url(&h.repository, v),
                None => package_url(&h.repository),
            },
            docs_url: h
                .object_digest
                .as_deref()
                .map(|d| state.docs_url(d))
                .unwrap_or_default(),
            hit_type: h.hit_type,
            repository: h.repository,
            version: h.version,
            package_type: h.package_type,
            description: h.description.as_deref().map(summary),
            group: h.group.unwrap_or_default(),
            kind: h.kind.unwrap_or_default(),
            versions: h.versions.unwrap_or_default().join(", "),
            rejection: h.rejection.as_deref().map(summary),
        }
    }
}

/// `/search?q=&type=&group=&page=`.
pub async fn search(
    State(state): State<Arc<AppState>>,
    Params(params): Params<SearchParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let search = check_search(&params)?;
    let reader = state.is_reader(&headers);
    let size = i64::from(state.page_size);
    let (hits, total) = if search.q.is_empty() {
        (vec![], 0)
    } else {
        db::search_page(&state.pool, reader, search.query(size)).await?
    };
    let CheckedSearch {
        q,
        package_type,
        group,
        page,
    } = search;
    let link = |p: i64| {
        format!(
            "/search?q={}&type={}&group={}&page={p}",
            urlencode(&q),
            urlencode(package_type.unwrap_or_default()),
            urlencode(group.as_deref().unwrap_or_default())
        )
    };
    let body = SearchPage {
        layout: Layout::without_search(&state),
        prev: (page > 1).then(|| link(page - 1)),
        next: (page * size < total).then(|| link(page + 1)),
        q: q.clone(),
        package_type: package_type.unwrap_or_default().to_owned(),
        group: group.clone().unwrap_or_default(),
        types: PACKAGE_TYPES,
        total,
        first: (page - 1) * size + 1,
        hits: hits.into_iter().map(|h| HitView::new(&state, h)).collect(),
    }
    .render()?;
    Ok(html(&headers, state.page_caching(reader), None, body))
}
