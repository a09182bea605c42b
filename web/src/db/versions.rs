//! A package's versions and what each holds: its manifests with their tags, one version, its API
//! types, examples and contents, the indexes that list it, and its icon.

use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgPool};

use super::fragments::{GROUPED_TAGS, IN_AN_INDEX, VISIBLE};

/// One manifest of a package with the tags that point at it.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct VersionRow {
    pub manifest_digest: String,
    pub kind: String,
    pub package_type: Option<String>,
    pub tags: Vec<String>,
    pub indexed_at: String,
    /// Whether an index of the same package lists this manifest (a platform image): part of
    /// that index's version, not one of its own.
    pub in_index: bool,
    /// Why it was rejected, for a rejected version.
    pub rejection: Option<String>,
    /// Breaking changes from its predecessor in semver order, when they were computed.
    pub breaking: Option<i32>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Version {
    #[serde(skip)]
    pub id: i64,
    pub manifest_digest: String,
    pub index_digest: Option<String>,
    /// An index's platforms (`linux/amd64`), in its order.
    pub platforms: Vec<String>,
    pub media_type: Option<String>,
    pub artifact_type: Option<String>,
    pub kind: String,
    pub package_type: Option<String>,
    pub meta: Option<Value>,
    pub contents_digest: Option<String>,
    pub crossplane_version: Option<String>,
    pub lint: Value,
    pub rejection: Option<String>,
    pub bytes_downloaded: i64,
    pub image_bytes: i64,
    pub indexed_at: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct ApiType {
    pub object_digest: String,
    pub definition: String,
    pub api_group: String,
    pub kind: String,
    pub plural: Option<String>,
    pub scope: Option<String>,
    pub served_versions: Vec<String>,
    pub storage_version: Option<String>,
    pub versions: Value,
    pub deprecated: bool,
    pub short_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Example {
    pub object_digest: String,
    pub api_group: Option<String>,
    pub kind: Option<String>,
    pub api_version: Option<String>,
    pub example_id: Option<String>,
    pub supporting: bool,
    #[serde(skip)]
    pub body: Value,
}

/// An object listed in a version's contents.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct ContentEntry {
    pub digest: String,
    pub api_version: String,
    pub kind: String,
    pub name: Option<String>,
    pub class: String,
}

/// Every manifest of a package with its tags.
pub async fn versions(pool: &PgPool, package_id: i64) -> sqlx::Result<Vec<VersionRow>> {
    sqlx::query_as(&format!(
        "select v.id, v.manifest_digest, v.kind, v.package_type, {GROUPED_TAGS} as tags,
                to_char(v.indexed_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') as indexed_at,
                {IN_AN_INDEX} as in_index, v.rejection,
                (select d.breaking from version_diffs d where d.version_id = v.id) as breaking
         from versions v left join tags t on t.version_id = v.id
         where v.package_id = $1
         group by v.id order by v.indexed_at desc, v.id desc"
    ))
    .bind(package_id)
    .fetch_all(pool)
    .await
}

/// The indexes of the same package that list version `version_id` (a platform image): each one's
/// manifest digest and tags, newest first.
pub async fn indexes_listing(
    pool: &PgPool,
    version_id: i64,
) -> sqlx::Result<Vec<(String, Vec<String>)>> {
    sqlx::query_as(&format!(
        "select i.manifest_digest, {GROUPED_TAGS}
         from versions c join versions i
           on i.package_id = c.package_id and c.manifest_digest = any(i.children)
         left join tags t on t.version_id = i.id
         where c.id = $1
         group by i.id order by i.indexed_at desc, i.id desc"
    ))
    .bind(version_id)
    .fetch_all(pool)
    .await
}

const VERSION_COLUMNS: &str = "v.id, v.manifest_digest, v.index_digest, v.platforms, v.media_type,
    v.artifact_type, v.kind, v.package_type, v.meta, v.contents_digest, v.crossplane_version,
    v.lint, v.rejection, v.bytes_downloaded, v.image_bytes,
    to_char(v.indexed_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') as indexed_at,
    coalesce((select array_agg(t.tag order by t.tag) from tags t where t.version_id = v.id),
             '{}') as tags";

/// A version by tag or manifest digest.
pub async fn version(
    pool: &PgPool,
    package_id: i64,
    reference: &str,
) -> sqlx::Result<Option<Version>> {
    let sql = if reference.contains(':') {
        format!(
            "select {VERSION_COLUMNS} from versions v
             where v.package_id = $1 and v.manifest_digest = $2"
        )
    } else {
        format!(
            "select {VERSION_COLUMNS} from versions v join tags t on t.version_id = v.id
             where t.package_id = $1 and t.tag = $2"
        )
    };
    sqlx::query_as(&sql)
        .bind(package_id)
        .bind(reference)
        .fetch_optional(pool)
        .await
}

pub async fn version_by_id(pool: &PgPool, id: i64) -> sqlx::Result<Option<Version>> {
    sqlx::query_as(&format!(
        "select {VERSION_COLUMNS} from versions v where v.id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub async fn apis(pool: &PgPool, version_id: i64) -> sqlx::Result<Vec<ApiType>> {
    sqlx::query_as(
        "select object_digest, definition, api_group, kind, plural, scope, served_versions,
                storage_version, versions, deprecated, short_names
         from api_types where version_id = $1 order by api_group, kind",
    )
    .bind(version_id)
    .fetch_all(pool)
    .await
}

pub async fn examples(pool: &PgPool, version_id: i64) -> sqlx::Result<Vec<Example>> {
    sqlx::query_as(
        "select e.object_digest, e.api_group, e.kind, e.api_version, e.example_id, e.supporting,
                o.body
         from examples e join objects o on o.digest = e.object_digest
         where e.version_id = $1 order by e.position",
    )
    .bind(version_id)
    .fetch_all(pool)
    .await
}

/// The objects of a contents document, in order (meta first).
pub async fn contents(pool: &PgPool, contents_digest: &str) -> sqlx::Result<Vec<ContentEntry>> {
    sqlx::query_as(
        "select o.digest, o.api_version, o.kind, o.name, o.class
         from contents c cross join lateral unnest(c.objects) with ordinality as u(digest, n)
         join objects o on o.digest = u.digest
         where c.digest = $1 order by u.n",
    )
    .bind(contents_digest)
    .fetch_all(pool)
    .await
}

/// The icon of a version (by manifest digest), when its package may be seen.
pub async fn icon(
    pool: &PgPool,
    reader: bool,
    manifest_digest: &str,
) -> sqlx::Result<Option<(Option<String>, Option<String>, bool)>> {
    sqlx::query_as(&format!(
        "select v.meta->>'icon_uri', v.meta->>'icon_data', p.visibility = 'public'
         from versions v join packages p on p.id = v.package_id
         where v.manifest_digest = $2 and {VISIBLE} limit 1"
    ))
    .bind(reader)
    .bind(manifest_digest)
    .fetch_optional(pool)
    .await
}
