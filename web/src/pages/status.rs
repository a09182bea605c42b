//! `/status`: the index queue's jobs counted by state; the open jobs themselves (repositories,
//! errors) only for readers. Never cached publicly for long: `max-age=0`.

use std::sync::Arc;

use askama::Template;
use axum::{extract::State, http::HeaderMap, response::Response};

use crate::{
    db,
    error::Result,
    http::{Caching, html},
    layout::Layout,
    state::AppState,
};

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    layout: Layout,
    counts: Vec<(String, i64)>,
    jobs: Option<Vec<db::JobView>>,
}

/// Queued, running and failed jobs; the job list (repositories, errors) only for readers.
pub async fn status(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response> {
    let reader = state.is_reader(&headers);
    let counts = db::job_counts(&state.pool).await?;
    let jobs = if reader {
        Some(db::open_jobs(&state.pool, 200).await?)
    } else {
        None
    };
    let body = StatusPage {
        layout: Layout::new(&state, ""),
        counts,
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
