//! API types across packages, by group and kind, for `/api/v1/apis`.

use sqlx::{FromRow, PgPool};

use super::fragments::{IN_AN_INDEX, VISIBLE};

/// One version that defines an API type, for `/api/v1/apis`.
#[derive(Debug, Clone, FromRow)]
pub struct ApiDefinition {
    pub api_group: String,
    pub kind: String,
    pub plural: Option<String>,
    pub scope: Option<String>,
    pub object_digest: String,
    pub served_versions: Vec<String>,
    pub storage_version: Option<String>,
    pub deprecated: bool,
    pub repository: String,
    pub package_type: Option<String>,
    pub manifest_digest: String,
    pub tags: Vec<String>,
}

/// The API types whose group and/or kind equal the given ones (case-insensitively), with every
/// visible package version that defines them, newest version first; at most `limit` rows.
pub async fn api_definitions(
    pool: &PgPool,
    reader: bool,
    group: Option<&str>,
    kind: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<ApiDefinition>> {
    sqlx::query_as(&format!(
        "select a.api_group, a.kind, a.plural, a.scope, a.object_digest, a.served_versions,
                a.storage_version, a.deprecated, p.repository, p.package_type, v.manifest_digest,
                coalesce((select array_agg(t.tag order by t.tag) from tags t
                          where t.version_id = v.id), '{{}}') as tags
         from api_types a join versions v on v.id = a.version_id
         join packages p on p.id = v.package_id
         where {VISIBLE} and not {IN_AN_INDEX}
           and ($2::text is null or lower(a.api_group) = lower($2))
           and ($3::text is null or lower(a.kind) = lower($3))
         order by a.api_group, a.kind, p.repository, v.id desc
         limit $4"
    ))
    .bind(reader)
    .bind(group)
    .bind(kind)
    .bind(limit)
    .fetch_all(pool)
    .await
}
