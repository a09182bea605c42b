//! Leases that the processes sharing the database take turns on: a row per key, taken with one
//! statement when nobody holds it or the holder's lease has run out (a holder that died), and
//! released by deleting it. Nothing is held open in between: no transaction, no connection, no
//! waiting inside PostgreSQL; a process that wants a held lease asks again.

use std::time::Duration;

use sqlx::PgPool;

/// Takes the lease `key` for `holder` for `ttl`, unless another holder's lease on it still
/// runs; true when taken.
pub async fn try_lease(
    pool: &PgPool,
    key: &str,
    holder: &str,
    ttl: Duration,
) -> Result<bool, sqlx::Error> {
    let taken: Option<i32> = sqlx::query_scalar(
        "insert into leases (key, holder, until)
         values ($1, $2, now() + make_interval(secs => $3))
         on conflict (key) do update set holder = excluded.holder, until = excluded.until
         where leases.until < now() or leases.holder = excluded.holder
         returning 1",
    )
    .bind(key)
    .bind(holder)
    .bind(ttl.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(taken.is_some())
}

/// Gives the lease `key` up, if `holder` still has it.
pub async fn release(pool: &PgPool, key: &str, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("delete from leases where key = $1 and holder = $2")
        .bind(key)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}
