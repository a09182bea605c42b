//! `/status`: the index queue's jobs counted by state (rejected apart from done), the latest
//! rejected versions with their reasons (a rejection is no secret; a private package's only for
//! readers), and the open jobs themselves (repositories, errors) only for readers. Never cached publicly for long: `max-age=0`.

use std::sync::Arc;

use askama::Template;
use axum::{extract::State, http::HeaderMap, response::Response};

use crate::{
    db,
    error::Result,
    http::{Caching, html},
    layout::Layout,
    state::AppState,
    text::version_url,
};

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    counts: Vec<(String, i64)>,
    rejections: Vec<RejectionView>,
    jobs: Option<Vec<db::JobView>>,
}

/// A rejected version as the page lists it: where it is and why.
struct RejectionView {
    repository: String,
    version: String,
    url: String,
    reason: String,
    when: String,
}

/// Queued, running and failed jobs; the job list (repositories, errors) only for readers.
pub async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response> {
    let reader = state.is_reader(&headers);
    let counts = db::job_counts(&state.pool).await?;
    let rejections = db::latest_rejections(&state.pool, reader, 20)
        .await?
        .into_iter()
        .map(|r| {
            let version = r.tag.unwrap_or(r.manifest_digest);
            RejectionView {
                url: version_url(&r.repository, &version),
                repository: r.repository,
                version,
                reason: r.rejection,
                when: r.indexed_at,
            }
        })
        .collect();
    let jobs = if reader {
        Some(db::open_jobs(&state.pool, 200).await?)
    } else {
        None
    };
    let body = StatusPage {
        layout: Layout::new(&state),
        counts,
        rejections,
        jobs,
    }
    .render()?;
    Ok(html(
        &headers,
        Caching::Page {
            max_age: 0,
            public: !reader,
        },
        None,
        body,
    ))
}
