//! Locks that the processes sharing the database take turns on: PostgreSQL advisory locks
//! held by a transaction, so a lock ends with its holder (commit, rollback, a dropped
//! transaction, a lost connection, a dead process) and never outlives it.

use sqlx::{PgPool, Postgres, Transaction};

/// A lock held: it ends when this drops.
pub type Held = Transaction<'static, Postgres>;

/// Waits for the exclusive advisory lock named `key` (hashed to 64 bits) and holds it until
/// the returned transaction ends: dropping it releases the lock.
pub async fn exclusive(pool: &PgPool, key: &str) -> Result<Held, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}
