//! The `index_jobs` queue and the `seen_manifests` set, as the shim writes them; the worker's
//! side (claims and leases) is in `lease`.

mod lease;

pub use lease::{ClaimedJob, Retry, claim, complete, expire_leases, extend_lease, fail, release};

use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::PgPool;

use crate::JobState;

/// Why a manifest was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSource {
    Push,
    Pull,
    Reconcile,
    Manual,
}

impl JobSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Push => "push",
            Self::Pull => "pull",
            Self::Reconcile => "reconcile",
            Self::Manual => "manual",
        }
    }
}

/// A manifest to index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub backend: String,
    pub repository: String,
    /// The tag or digest the client used.
    pub reference: String,
    pub digest: String,
    pub media_type: Option<String>,
    pub source: JobSource,
    /// When the manifest was seen: the job's `created_at`, also when the job is written later
    /// (the shim holds jobs while the database is away).
    pub at: SystemTime,
}

impl NewJob {
    /// [`NewJob::at`] as Unix seconds, for PostgreSQL's `to_timestamp` (microseconds survive).
    fn at_secs(&self) -> f64 {
        self.at
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

/// Queues a job unconditionally (a push: the tag may have moved even if the digest is known),
/// and marks the digest seen.
pub async fn enqueue(pool: &PgPool, job: &NewJob) -> Result<i64, sqlx::Error> {
    queue(pool, job, true)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

/// Queues a job only if this (backend, repository, digest) was never seen before, in one
/// statement so concurrent pulls of the same new digest queue it once. Returns whether it
/// queued one.
pub async fn enqueue_if_unseen(pool: &PgPool, job: &NewJob) -> Result<bool, sqlx::Error> {
    Ok(queue(pool, job, false).await?.is_some())
}

/// One statement: marks the digest seen, and queues the job when `always` or when the digest
/// was not seen before; the new job's id when it queued one.
async fn queue(pool: &PgPool, job: &NewJob, always: bool) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "with seen as (
             insert into seen_manifests (backend, repository, digest, first_seen)
             values ($1, $2, $4, to_timestamp($7))
             on conflict do nothing
             returning 1
         )
         insert into index_jobs
             (backend, repository, reference, digest, media_type, source, created_at)
         select $1, $2, $3, $4, $5, $6, to_timestamp($7)
         where $8 or exists (select 1 from seen)
         returning id",
    )
    .bind(&job.backend)
    .bind(&job.repository)
    .bind(&job.reference)
    .bind(&job.digest)
    .bind(&job.media_type)
    .bind(job.source.as_str())
    .bind(job.at_secs())
    .bind(always)
    .fetch_optional(pool)
    .await
}

/// Whether this (backend, repository, digest) was queued before: a read, no write.
pub async fn is_seen(
    pool: &PgPool,
    backend: &str,
    repository: &str,
    digest: &str,
) -> Result<bool, sqlx::Error> {
    let (seen,): (bool,) = sqlx::query_as(
        "select exists (
             select 1 from seen_manifests where backend = $1 and repository = $2 and digest = $3
         )",
    )
    .bind(backend)
    .bind(repository)
    .bind(digest)
    .fetch_one(pool)
    .await?;
    Ok(seen)
}

/// A queued job as stored (for tests, the status page and the indexer).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub backend: String,
    pub repository: String,
    pub reference: String,
    pub digest: String,
    pub media_type: Option<String>,
    pub source: String,
    pub state: JobState,
    pub attempts: i32,
    pub lease_expiries: i32,
    pub last_error: Option<String>,
}

/// Every job, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(
        "select id, backend, repository, reference, digest, media_type, source, state, attempts,
                lease_expiries, last_error
         from index_jobs order by id",
    )
    .fetch_all(pool)
    .await
}

/// Queues again, as new jobs, the `failed` jobs of (backend, repository) whose manifest has no
/// stored version: what reconcile, an operator's (or cron's) deliberate action, does after an
/// outage outlasted every retry. Workers never do it, so a job that fails for good stays failed
/// until someone asks. A new job (a new id) rather than the old row reset: a worker that still
/// holds the old row's lease token can never finish or fail the new one. Returns how many.
pub async fn requeue_failed(
    pool: &PgPool,
    backend: &str,
    repository: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "with old as (
             delete from index_jobs j
             where j.state = 'failed' and j.backend = $1 and j.repository = $2
               and not exists (
                   select 1 from versions v join packages p on p.id = v.package_id
                   where p.repository = j.repository and v.manifest_digest = j.digest)
             returning backend, repository, reference, digest, media_type
         )
         insert into index_jobs (backend, repository, reference, digest, media_type, source)
         select backend, repository, reference, digest, media_type, 'reconcile' from old",
    )
    .bind(backend)
    .bind(repository)
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// Deletes `done` jobs last updated more than `keep` ago, in batches so no statement runs long;
/// returns how many. The queue keeps what is open and a bounded history: without this it grows
/// by a row per push for ever.
pub async fn delete_done(pool: &PgPool, keep: std::time::Duration) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let r = sqlx::query(
            "delete from index_jobs where id in (
                 select id from index_jobs
                 where state = 'done' and updated_at < now() - make_interval(secs => $1)
                 limit 10000
                 for update skip locked
             )",
        )
        .bind(keep.as_secs_f64())
        .execute(pool)
        .await?;
        total += r.rows_affected();
        if r.rows_affected() < 10000 {
            return Ok(total);
        }
    }
}

/// Counts of jobs per state, for the status page and tests (`done`: the jobs still kept, see
/// [`delete_done`]).
pub async fn counts(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as("select state, count(*) from index_jobs group by state order by state")
        .fetch_all(pool)
        .await
}

/// The (tag, digest) pairs reconcile need not queue for (backend, repository): the tags the
/// store records, and those an open (queued or running) job will record.
pub async fn known_tags(
    pool: &PgPool,
    backend: &str,
    repository: &str,
) -> Result<std::collections::HashSet<(String, String)>, sqlx::Error> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select t.tag, v.manifest_digest
         from tags t join versions v on v.id = t.version_id join packages p on p.id = t.package_id
         where p.backend = $1 and p.repository = $2
         union
         select reference, digest from index_jobs
         where backend = $1 and repository = $2 and state in ('queued', 'running')",
    )
    .bind(backend)
    .bind(repository)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}
