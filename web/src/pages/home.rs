//! The home page (counts and the recently indexed packages) and `/packages` (every package a
//! request may see, by repository name, a page at a time): lists of package cards.

use std::sync::Arc;

use askama::Template;
use axum::{extract::State, http::HeaderMap, response::Response};

use crate::{
    db,
    error::Result,
    http::html,
    layout::Layout,
    params::{PageParams, Params, check_page},
    state::AppState,
    text::{package_url, plain_text, summary},
};

/// A package as a list shows it.
pub struct Card {
    pub url: String,
    pub title: String,
    /// Shown under the title: two repositories may give their packages one name.
    pub repository: String,
    pub package_type: Option<String>,
    pub version: Option<String>,
    pub description: Option<String>,
    pub icon: Option<String>,
}

impl Card {
    fn new(state: &AppState, p: db::PackageSummary) -> Self {
        Card {
            url: package_url(&p.repository),
            title: p
                .name
                .as_deref()
                .map(plain_text)
                .unwrap_or_else(|| p.repository.clone()),
            repository: p.repository,
            package_type: p.package_type,
            version: p.latest_tag,
            description: p.description.as_deref().map(summary),
            icon: p
                .icon_digest
                .map(|d| format!("{}/icons/{d}", state.public_base)),
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    counts: db::Counts,
    recent: Vec<Card>,
}

/// `/`: what the catalogue holds, and the packages indexed last.
pub async fn home(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response> {
    let reader = state.is_reader(&headers);
    let counts = db::counts(&state.pool, reader).await?;
    let recent = db::recent(&state.pool, reader, 12)
        .await?
        .into_iter()
        .map(|p| Card::new(&state, p))
        .collect();
    let body = HomePage {
        layout: Layout::without_search(&state),
        counts,
        recent,
    }
    .render()?;
    Ok(html(&headers, state.page_caching(reader), None, body))
}

#[derive(Template)]
#[template(path = "packages.html")]
struct PackagesPage {
    layout: Layout,
    total: i64,
    first: i64,
    last: i64,
    packages: Vec<Card>,
    prev: Option<String>,
    next: Option<String>,
}

/// `/packages`: every package a request may see, by repository name, a page at a time.
pub async fn packages(
    State(state): State<Arc<AppState>>,
    Params(params): Params<PageParams>,
    headers: HeaderMap,
) -> Result<Response> {
    let page = check_page(params.page.as_deref())?;
    let reader = state.is_reader(&headers);
    let size = i64::from(state.page_size);
    let total = db::package_count(&state.pool, reader).await?;
    let list = db::package_list(
        &state.pool,
        reader,
        db::ListOrder::Repository,
        size,
        (page - 1) * size,
    )
    .await?;
    let body = PackagesPage {
        layout: Layout::new(&state),
        total,
        first: (page - 1) * size + 1,
        last: (page - 1) * size + list.len() as i64,
        packages: list.into_iter().map(|p| Card::new(&state, p)).collect(),
        prev: (page > 1).then(|| format!("/packages?page={}", page - 1)),
        next: (page * size < total).then(|| format!("/packages?page={}", page + 1)),
    }
    .render()?;
    Ok(html(&headers, state.page_caching(reader), None, body))
}
