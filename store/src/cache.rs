//! The pull-through cache's tags and entries.

use sqlx::PgPool;

/// What a cached tag resolved to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CachedTag {
    pub digest: String,
    pub media_type: Option<String>,
    /// Seconds since the tag was last checked upstream.
    pub age_secs: f64,
}

pub async fn tag(
    pool: &PgPool,
    upstream: &str,
    repository: &str,
    tag: &str,
) -> Result<Option<CachedTag>, sqlx::Error> {
    sqlx::query_as(
        "select digest, media_type, extract(epoch from now() - checked_at)::float8 as age_secs
         from cache_tags where upstream = $1 and repository = $2 and tag = $3",
    )
    .bind(upstream)
    .bind(repository)
    .bind(tag)
    .fetch_optional(pool)
    .await
}

/// Records that `tag` resolved to `digest` when the upstream was asked at `asked_at`
/// ([`crate::unix_now`] when the question went out); unless a later answer is recorded
/// already: a shim whose answer came before the tag moved upstream, but whose write lands after
/// another shim's record of the move, must not put the old digest back for a whole `tag_ttl`.
pub async fn set_tag(
    pool: &PgPool,
    upstream: &str,
    repository: &str,
    tag: &str,
    (digest, media_type): (&str, Option<&str>),
    asked_at: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into cache_tags (upstream, repository, tag, digest, media_type, checked_at)
         values ($1, $2, $3, $4, $5, to_timestamp($6))
         on conflict (upstream, repository, tag) do update
             set digest = excluded.digest, media_type = excluded.media_type,
                 checked_at = excluded.checked_at
             where cache_tags.checked_at < excluded.checked_at",
    )
    .bind(upstream)
    .bind(repository)
    .bind(tag)
    .bind(digest)
    .bind(media_type)
    .bind(asked_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a cached blob or manifest (or refreshes its last access).
pub async fn touch(
    pool: &PgPool,
    upstream: &str,
    digest: &str,
    repository: &str,
    media_type: Option<&str>,
    size: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into cache_entries (upstream, digest, repository, media_type, size_bytes) values ($1, $2, $3, $4, $5)
         on conflict (upstream, digest) do update set last_access = now()",
    )
    .bind(upstream)
    .bind(digest)
    .bind(repository)
    .bind(media_type)
    .bind(size)
    .execute(pool)
    .await?;
    Ok(())
}

/// A cached entry as eviction sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Entry {
    pub upstream: String,
    pub digest: String,
    pub size_bytes: i64,
    /// Seconds since last use.
    pub idle_secs: f64,
    /// The last use, in microseconds since the Unix epoch: [`forget`] removes the entry only if
    /// it has not been used since it was read.
    pub last_access_us: i64,
}

/// Every entry, least recently used first.
pub async fn entries(pool: &PgPool) -> Result<Vec<Entry>, sqlx::Error> {
    sqlx::query_as(
        "select upstream, digest, size_bytes,
                extract(epoch from now() - last_access)::float8 as idle_secs,
                (extract(epoch from last_access) * 1000000)::bigint as last_access_us
         from cache_entries order by last_access, digest",
    )
    .fetch_all(pool)
    .await
}

/// Forgets an entry and any tag that resolved to it, unless it was used after `seen` (its
/// [`Entry::last_access_us`] when eviction read it): an entry a client hit in the meantime is
/// kept, and of two shims evicting at once only one forgets it. Whether it was forgotten.
pub async fn forget(
    pool: &PgPool,
    upstream: &str,
    digest: &str,
    seen: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let deleted = sqlx::query(
        "delete from cache_entries where upstream = $1 and digest = $2
             and (extract(epoch from last_access) * 1000000)::bigint = $3",
    )
    .bind(upstream)
    .bind(digest)
    .bind(seen)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if deleted {
        sqlx::query("delete from cache_tags where upstream = $1 and digest = $2")
            .bind(upstream)
            .bind(digest)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// A cache tag row as `cache export` writes it: upstream, repository, tag, digest, media type.
pub type TagRow = (String, String, String, String, Option<String>);
/// A cache entry row as `cache export` writes it: upstream, digest, repository, media type, size.
pub type EntryRow = (String, String, String, Option<String>, i64);

/// Every cached entry's upstream, digest and size, by upstream then digest (`cache ls`).
pub async fn sizes(pool: &PgPool) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "select upstream, digest, size_bytes from cache_entries order by upstream, digest",
    )
    .fetch_all(pool)
    .await
}

/// Every tag and entry of the cache, for `cache export`.
pub async fn export_rows(pool: &PgPool) -> Result<(Vec<TagRow>, Vec<EntryRow>), sqlx::Error> {
    let tags =
        sqlx::query_as("select upstream, repository, tag, digest, media_type from cache_tags")
            .fetch_all(pool)
            .await?;
    let entries = sqlx::query_as(
        "select upstream, digest, repository, media_type, size_bytes from cache_entries",
    )
    .fetch_all(pool)
    .await?;
    Ok((tags, entries))
}
