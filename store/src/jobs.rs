//! The `index_jobs` queue and the `seen_manifests` set, as the shim writes them.

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
    let mut tx = pool.begin().await?;
    mark_seen(&mut tx, job).await?;
    let id = insert(&mut *tx, job).await?;
    tx.commit().await?;
    Ok(id)
}

/// Queues a job only if this (backend, repository, digest) was never seen before, in one
/// statement so concurrent pulls of the same new digest queue it once. Returns whether it
/// queued one.
pub async fn enqueue_if_unseen(pool: &PgPool, job: &NewJob) -> Result<bool, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "with seen as (
             insert into seen_manifests (backend, repository, digest, first_seen)
             values ($1, $2, $3, to_timestamp($7))
             on conflict do nothing
             returning 1
         )
         insert into index_jobs
             (backend, repository, reference, digest, media_type, source, created_at)
         select $1, $2, $4, $3, $5, $6, to_timestamp($7) from seen
         returning id",
    )
    .bind(&job.backend)
    .bind(&job.repository)
    .bind(&job.digest)
    .bind(&job.reference)
    .bind(&job.media_type)
    .bind(job.source.as_str())
    .bind(job.at_secs())
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
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

async fn mark_seen(conn: &mut sqlx::PgConnection, job: &NewJob) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into seen_manifests (backend, repository, digest, first_seen)
         values ($1, $2, $3, to_timestamp($4))
         on conflict do nothing",
    )
    .bind(&job.backend)
    .bind(&job.repository)
    .bind(&job.digest)
    .bind(job.at_secs())
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert<'e>(exec: impl sqlx::PgExecutor<'e>, job: &NewJob) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "insert into index_jobs
             (backend, repository, reference, digest, media_type, source, created_at)
         values ($1, $2, $3, $4, $5, $6, to_timestamp($7))
         returning id",
    )
    .bind(&job.backend)
    .bind(&job.repository)
    .bind(&job.reference)
    .bind(&job.digest)
    .bind(&job.media_type)
    .bind(job.source.as_str())
    .bind(job.at_secs())
    .fetch_one(exec)
    .await?;
    Ok(id)
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

/// A job a worker holds under a lease. `attempt` doubles as the lease token: only the holder of
/// the current attempt may extend, finish or fail the job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: i64,
    pub backend: String,
    pub repository: String,
    pub reference: String,
    pub digest: String,
    pub media_type: Option<String>,
    pub source: String,
    pub attempt: i32,
    /// How often a worker holding this job let its lease run out (died or hung) before: a job
    /// that may have crashed its process runs guarded.
    pub lease_expiries: i32,
}

/// Claims the oldest runnable job of one of `backends` (the ones this process is configured
/// for: another process's backend is not this one's to read or to fail): a queued one whose time
/// has come. `skip locked` lets many workers claim concurrently without waiting on each other or
/// taking the same job. A running job whose worker let its lease expire (it died or hung) is not
/// taken here: [`expire_leases`] first counts the expiry as an attempt and puts the job back
/// behind a backoff, or fails it.
pub async fn claim(
    pool: &PgPool,
    lease: std::time::Duration,
    backends: &[String],
) -> Result<Option<ClaimedJob>, sqlx::Error> {
    sqlx::query_as(
        "update index_jobs
         set state = 'running', attempts = attempts + 1,
             lease_until = now() + make_interval(secs => $1), updated_at = now()
         where id = (
             select id from index_jobs
             where state = 'queued' and run_after <= now() and backend = any($2)
             order by run_after, id
             limit 1
             for update skip locked
         )
         returning id, backend, repository, reference, digest, media_type, source,
                   attempts as attempt, lease_expiries",
    )
    .bind(lease.as_secs_f64())
    .bind(backends)
    .fetch_optional(pool)
    .await
}

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts (failures and lease expiries alike) before a job stays `failed`.
    pub max_attempts: i32,
    /// The first retry delay, doubled per attempt, at most an hour.
    pub base: std::time::Duration,
}

/// The retry delay in seconds, as SQL over a job row, with the base delay in parameter
/// `$base_param`: `base * 2^(attempts-1)` (attempts is 1-based), at most an hour, plus a random
/// 0-25% so jobs that failed together (a registry outage) do not all come back in the same
/// instant. The one formula for failures and lease expiries alike.
fn backoff_sql(base_param: u8) -> String {
    format!(
        "least(${base_param} * power(2, least(greatest(attempts - 1, 0), 20)), 3600) \
         * (1 + random() / 4)"
    )
}

/// Counts every running job whose lease ran out (its worker died or hung) as a failed attempt:
/// back to the queue after the same backoff as a failure, or `failed` for good after
/// `max_attempts`, with an error saying how often the lease expired. Without this a job that
/// kills its worker every time would be taken over forever. Returns how many jobs it touched.
pub async fn expire_leases(pool: &PgPool, retry: Retry) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(&format!(
        "update index_jobs
         set lease_expiries = lease_expiries + 1,
             state = case when attempts >= $1 then 'failed' else 'queued' end,
             run_after = now() + make_interval(secs => {backoff}),
             lease_until = null,
             last_error = case
                 when attempts >= $1 then format(
                     'lease expired %s times (the worker died or hung); failed after %s attempts',
                     lease_expiries + 1, attempts)
                 else format('lease expired on attempt %s (the worker died or hung)', attempts)
             end,
             updated_at = now()
         where id in (
             select id from index_jobs
             where state = 'running' and lease_until < now()
             for update skip locked
         )",
        backoff = backoff_sql(2)
    ))
    .bind(retry.max_attempts)
    .bind(retry.base.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// Extends the lease of a job still held; returns false if it was lost (expired and taken).
pub async fn extend_lease(
    pool: &PgPool,
    job: &ClaimedJob,
    lease: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "update index_jobs set lease_until = now() + make_interval(secs => $3), updated_at = now()
         where id = $1 and attempts = $2 and state = 'running'",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks a held job done.
pub async fn complete(pool: &PgPool, job: &ClaimedJob) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "update index_jobs set state = 'done', lease_until = null, last_error = null,
                updated_at = now()
         where id = $1 and attempts = $2 and state = 'running'",
    )
    .bind(job.id)
    .bind(job.attempt)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records a failed attempt: back to the queue after an exponential backoff
/// (`base * 2^(attempt-1)`, at most an hour), or `failed` for good after `max_attempts`.
pub async fn fail(
    pool: &PgPool,
    job: &ClaimedJob,
    error: &str,
    retry: Retry,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "update index_jobs
         set state = case when attempts >= $3 then 'failed' else 'queued' end,
             run_after = now() + make_interval(secs => {backoff}),
             lease_until = null, last_error = $5, updated_at = now()
         where id = $1 and attempts = $2 and state = 'running'",
        backoff = backoff_sql(4)
    ))
    .bind(job.id)
    .bind(job.attempt)
    .bind(retry.max_attempts)
    .bind(retry.base.as_secs_f64())
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Puts back a job this worker will not finish (shutdown), to run again at once. The attempt
/// counts: were it given back, a job that hangs every time, in a fleet restarted more often than
/// `job_timeout`, would never end `failed`; and the attempt number is the lease token, which must
/// never be handed out twice. A job released on its last attempt is failed, saying so (reconcile
/// queues it again).
pub async fn release(pool: &PgPool, job: &ClaimedJob, retry: Retry) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update index_jobs
         set state = case when attempts >= $3 then 'failed' else 'queued' end,
             last_error = case when attempts >= $3
                 then format('interrupted by a shutdown on attempt %s of %s', attempts, $3)
                 else last_error end,
             run_after = now(), lease_until = null, updated_at = now()
         where id = $1 and attempts = $2 and state = 'running'",
    )
    .bind(job.id)
    .bind(job.attempt)
    .bind(retry.max_attempts)
    .execute(pool)
    .await?;
    Ok(())
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
