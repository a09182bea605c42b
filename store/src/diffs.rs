//! The changes stored between a version and its predecessor (`version_diffs`), and what
//! computing changes reads: a package's versions with their tags, and for two versions their API
//! definitions and the JSON of the objects that differ ([`read_pair`], for the indexer and the
//! marketplace alike).

use std::collections::HashMap;

use serde_json::Value;
use sqlx::PgPool;

/// A package version as the chain of releases sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChainVersion {
    pub id: i64,
    pub tags: Vec<String>,
    /// The predecessor its stored changes were computed from, if any.
    pub diffed_from: Option<i64>,
}

/// The package's versions that are packages (not rejected, not other artifacts), with tags.
pub async fn chain(pool: &PgPool, package_id: i64) -> Result<Vec<ChainVersion>, sqlx::Error> {
    sqlx::query_as(
        "select v.id,
                coalesce(array_agg(t.tag order by t.tag) filter (where t.tag is not null), '{}')
                  as tags,
                d.from_version_id as diffed_from
         from versions v left join tags t on t.version_id = v.id
         left join version_diffs d on d.version_id = v.id
         where v.package_id = $1 and v.kind = 'package'
         group by v.id, d.from_version_id",
    )
    .bind(package_id)
    .fetch_all(pool)
    .await
}

/// What comparing two versions reads: each side's API definitions (group, kind, object digest),
/// and the JSON of the objects the comparison needs (those the two do not share), by digest.
#[derive(Debug, Clone, Default)]
pub struct Pair {
    pub old: Vec<(String, String, String)>,
    pub new: Vec<(String, String, String)>,
    pub json: HashMap<String, String>,
}

/// Reads what comparing version `from` with version `to` needs; objects both share are not read.
pub async fn read_pair(pool: &PgPool, from: i64, to: i64) -> Result<Pair, sqlx::Error> {
    let old = definitions(pool, from).await?;
    let new = definitions(pool, to).await?;
    let read = shimmer_diff::digests_to_read(&old, &new);
    let json = objects_json(pool, &read).await?.into_iter().collect();
    Ok(Pair { old, new, json })
}

/// A version's API definitions: (group, kind, object digest), in definition order.
async fn definitions(
    pool: &PgPool,
    version_id: i64,
) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "select api_group, kind, object_digest from api_types where version_id = $1 order by id",
    )
    .bind(version_id)
    .fetch_all(pool)
    .await
}

/// The JSON of the objects `digests` names, by digest.
async fn objects_json(
    pool: &PgPool,
    digests: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as("select digest, body::text from objects where digest = any($1)")
        .bind(digests)
        .fetch_all(pool)
        .await
}

/// What was found between `from_id` and `version_id`, replacing what was stored.
pub struct Diff {
    pub breaking: i32,
    pub warnings: i32,
    pub total: i32,
    pub changes: Value,
}

pub async fn save(
    pool: &PgPool,
    version_id: i64,
    from_id: i64,
    diff: &Diff,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into version_diffs (version_id, from_version_id, breaking, warnings, total, changes)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (version_id) do update set from_version_id = $2, breaking = $3,
             warnings = $4, total = $5, changes = $6, computed_at = now()",
    )
    .bind(version_id)
    .bind(from_id)
    .bind(diff.breaking)
    .bind(diff.warnings)
    .bind(diff.total)
    .bind(&diff.changes)
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets the changes stored for `version_id` (it has no predecessor any more).
pub async fn clear(pool: &PgPool, version_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("delete from version_diffs where version_id = $1")
        .bind(version_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Forgets the changes stored for the versions of `package_id` not in `chain` (a version whose
/// release tag moved away, so it is no release any more).
pub async fn clear_outside(
    pool: &PgPool,
    package_id: i64,
    chain: &[i64],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "delete from version_diffs d using versions v
         where v.id = d.version_id and v.package_id = $1 and not (v.id = any($2))",
    )
    .bind(package_id)
    .bind(chain)
    .execute(pool)
    .await?;
    Ok(())
}
