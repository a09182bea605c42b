//! The worker's side of the queue: claiming a job under a lease (`for update skip locked`),
//! extending the lease, and finishing, failing (with backoff) or releasing the job. A job's
//! `attempt` is its lease token: only its holder may act on it.

use sqlx::PgPool;

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
