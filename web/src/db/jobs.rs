//! The index queue as the status page shows it: counts by state, and the open jobs.

use serde::Serialize;
use sqlx::{FromRow, PgPool};

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct JobView {
    pub id: i64,
    pub backend: String,
    pub repository: String,
    pub reference: String,
    pub digest: String,
    pub source: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: String,
}

pub async fn job_counts(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    shimmer_store::jobs::counts(pool).await
}

/// Jobs that are not done: running, queued and failed, most recent first.
pub async fn open_jobs(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<JobView>> {
    sqlx::query_as(
        "select id, backend, repository, reference, digest, source, state, attempts, last_error,
                to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC') as updated_at
         from index_jobs where state <> 'done'
         order by case state when 'running' then 0 when 'failed' then 1 else 2 end, id desc
         limit $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
