//! The `index_jobs` queue and the `seen_manifests` set, as the shim writes them.

use sqlx::PgPool;

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
             insert into seen_manifests (backend, repository, digest) values ($1, $2, $3)
             on conflict do nothing
             returning 1
         )
         insert into index_jobs (backend, repository, reference, digest, media_type, source)
         select $1, $2, $4, $3, $5, $6 from seen
         returning id",
    )
    .bind(&job.backend)
    .bind(&job.repository)
    .bind(&job.digest)
    .bind(&job.reference)
    .bind(&job.media_type)
    .bind(job.source.as_str())
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
        "insert into seen_manifests (backend, repository, digest) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(&job.backend)
    .bind(&job.repository)
    .bind(&job.digest)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert<'e>(exec: impl sqlx::PgExecutor<'e>, job: &NewJob) -> Result<i64, sqlx::Error> {
    let (id,): (i64,) = sqlx::query_as(
        "insert into index_jobs (backend, repository, reference, digest, media_type, source)
         values ($1, $2, $3, $4, $5, $6)
         returning id",
    )
    .bind(&job.backend)
    .bind(&job.repository)
    .bind(&job.reference)
    .bind(&job.digest)
    .bind(&job.media_type)
    .bind(job.source.as_str())
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
    pub state: String,
}

/// Every job, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<JobRow>, sqlx::Error> {
    sqlx::query_as(
        "select id, backend, repository, reference, digest, media_type, source, state
         from index_jobs order by id",
    )
    .fetch_all(pool)
    .await
}
