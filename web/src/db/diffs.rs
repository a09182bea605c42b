//! Changes between versions: the ones stored from each version's predecessor, and what a diff of
//! any two versions reads (the store's [`read_pair`]).

use serde_json::Value;
use sqlx::{FromRow, PgPool};

/// The changes stored for a version, from its predecessor.
#[derive(Debug, Clone, FromRow)]
pub struct StoredDiff {
    /// The predecessor's tags, to name it.
    pub from_tags: Vec<String>,
    pub from_digest: String,
    pub breaking: i32,
    pub warnings: i32,
    pub total: i32,
    pub changes: Value,
}

/// The changes stored for `version_id`, if it has a predecessor.
pub async fn stored_diff(pool: &PgPool, version_id: i64) -> sqlx::Result<Option<StoredDiff>> {
    sqlx::query_as(
        "select coalesce(array_agg(t.tag order by t.tag) filter (where t.tag is not null), '{}')
                  as from_tags,
                f.manifest_digest as from_digest, d.breaking, d.warnings, d.total, d.changes
         from version_diffs d join versions f on f.id = d.from_version_id
         left join tags t on t.version_id = d.from_version_id
         where d.version_id = $1
         group by d.version_id, f.manifest_digest",
    )
    .bind(version_id)
    .fetch_optional(pool)
    .await
}

pub use shimmer_store::diffs::read_pair;
