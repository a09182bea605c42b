//! The index queue as the status page shows it: counts by state (a done job whose version was
//! rejected counted apart, as `rejected`), the latest rejections with their reasons, and the
//! open jobs.

use serde::Serialize;
use sqlx::{FromRow, PgPool};

use super::fragments::VISIBLE;

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

/// Jobs by state: `queued`, `running`, `done`, `failed`, and `rejected` (a done job whose
/// manifest was stored as a rejected version: the worker finished, the package did not pass).
pub async fn job_counts(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "select case when j.state = 'done' and exists (
                    select 1 from versions v join packages p on p.id = v.package_id
                    where p.repository = j.repository and v.manifest_digest = j.digest
                      and v.kind = 'rejected')
                 then 'rejected' else j.state end as state,
                count(*)
         from index_jobs j group by 1 order by 1",
    )
    .fetch_all(pool)
    .await
}

/// A rejected version, as the status page lists it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Rejected {
    pub repository: String,
    pub manifest_digest: String,
    /// One of its tags, when it has any.
    pub tag: Option<String>,
    pub rejection: String,
    pub indexed_at: String,
}

/// The `limit` latest rejected versions a requester may see, newest first.
pub async fn latest_rejections(
    pool: &PgPool,
    reader: bool,
    limit: i64,
) -> sqlx::Result<Vec<Rejected>> {
    sqlx::query_as(&format!(
        "select p.repository, v.manifest_digest,
                (select max(t.tag) from tags t where t.version_id = v.id) as tag,
                coalesce(v.rejection, '') as rejection,
                to_char(v.indexed_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI UTC') as indexed_at
         from versions v join packages p on p.id = v.package_id
         where v.kind = 'rejected' and {VISIBLE}
         order by v.indexed_at desc, v.id desc limit $2"
    ))
    .bind(reader)
    .bind(limit)
    .fetch_all(pool)
    .await
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
