//! `package_pulls`: how often each repository's manifests were pulled through the shim, per day.

use sqlx::PgPool;

/// Pulls counted since the last flush: (backend, repository) and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullCount {
    pub backend: String,
    pub repository: String,
    pub count: i64,
}

/// Adds `counts` to today's (UTC) rows in one statement. The rows are upserted in key order, so
/// shims flushing overlapping batches at once take their row locks in the same order and never
/// deadlock (with the aggregate's own order they did, several times a second under load).
pub async fn add(pool: &PgPool, counts: &[PullCount]) -> sqlx::Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let backends: Vec<&str> = counts.iter().map(|c| c.backend.as_str()).collect();
    let repositories: Vec<&str> = counts.iter().map(|c| c.repository.as_str()).collect();
    let n: Vec<i64> = counts.iter().map(|c| c.count).collect();
    sqlx::query(
        "insert into package_pulls (backend, repository, day, count)
         select b, r, (now() at time zone 'UTC')::date, sum(n)
         from unnest($1::text[], $2::text[], $3::bigint[]) as u(b, r, n)
         group by b, r
         order by b, r
         on conflict (backend, repository, day)
         do update set count = package_pulls.count + excluded.count",
    )
    .bind(&backends)
    .bind(&repositories)
    .bind(&n)
    .execute(pool)
    .await?;
    Ok(())
}

/// All pulls ever counted for a repository on a backend.
pub async fn total(pool: &PgPool, backend: &str, repository: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select coalesce(sum(count), 0)::bigint from package_pulls
         where backend = $1 and repository = $2",
    )
    .bind(backend)
    .bind(repository)
    .fetch_one(pool)
    .await
}
