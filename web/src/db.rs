//! What the pages and the JSON API read. Every query takes `reader`: without it, packages whose
//! visibility is `private` (and objects only they contain) do not exist.

use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgPool};

/// `and (<private packages are visible> or p.visibility = 'public')`, for a `packages p`.
const VISIBLE: &str = "($1 or p.visibility = 'public')";

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Counts {
    pub packages: i64,
    pub versions: i64,
    pub api_types: i64,
}

/// A package as listed (home, search).
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct PackageSummary {
    pub repository: String,
    pub package_type: Option<String>,
    pub name: Option<String>,
    pub latest_tag: Option<String>,
    pub description: Option<String>,
    #[serde(skip)]
    pub icon_digest: Option<String>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Package {
    #[serde(skip)]
    pub id: i64,
    pub repository: String,
    pub backend: String,
    pub package_type: Option<String>,
    pub name: Option<String>,
    pub visibility: String,
    pub latest_tag: Option<String>,
    #[serde(skip)]
    pub latest_version_id: Option<i64>,
    pub description: Option<String>,
    pub maintainer: Option<String>,
    /// Pulls through the shim, as far as it has recorded them.
    pub pulls: i64,
}

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

/// A stored object (one YAML document of some package).
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct Object {
    pub digest: String,
    pub api_version: String,
    pub kind: String,
    pub name: Option<String>,
    pub class: String,
    pub body: Value,
    pub size_bytes: i32,
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

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct SearchHit {
    /// `api` or `package`.
    #[serde(rename = "type")]
    pub hit_type: String,
    pub repository: String,
    pub version: Option<String>,
    pub package_type: Option<String>,
    pub description: Option<String>,
    pub group: Option<String>,
    pub kind: Option<String>,
    pub plural: Option<String>,
    pub object_digest: Option<String>,
    #[serde(skip)]
    pub total: i64,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct JobView {
    pub id: i64,
    pub backend: String,
    pub repository: String,
    pub reference: String,
    pub digest: String,
    pub source: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub updated_at: String,
}

pub async fn counts(pool: &PgPool, reader: bool) -> sqlx::Result<Counts> {
    sqlx::query_as(&format!(
        "select
           (select count(*) from packages p where p.latest_version_id is not null and {VISIBLE})
             as packages,
           (select count(*) from versions v join packages p on p.id = v.package_id
             where v.kind = 'package' and {VISIBLE} and not {IN_AN_INDEX}) as versions,
           (select count(*) from api_types a join packages p on p.latest_version_id = a.version_id
             where {VISIBLE}) as api_types"
    ))
    .bind(reader)
    .fetch_one(pool)
    .await
}

pub async fn recent(pool: &PgPool, reader: bool, n: i64) -> sqlx::Result<Vec<PackageSummary>> {
    package_list(pool, reader, ListOrder::Recent, n, 0).await
}

/// The order of a list of packages.
#[derive(Debug, Clone, Copy)]
pub enum ListOrder {
    /// Most recently indexed latest version first.
    Recent,
    /// By repository name.
    Repository,
}

/// One page of the packages a request may see (those with a latest version).
pub async fn package_list(
    pool: &PgPool,
    reader: bool,
    order: ListOrder,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<PackageSummary>> {
    let order = match order {
        ListOrder::Recent => "v.indexed_at desc, p.repository",
        ListOrder::Repository => "p.repository",
    };
    sqlx::query_as(&format!(
        "select p.repository, p.package_type, p.name, p.latest_tag, p.description,
                case when v.has_icon then v.manifest_digest end as icon_digest
         from packages p join versions v on v.id = p.latest_version_id
         where {VISIBLE}
         order by {order} limit $2 offset $3"
    ))
    .bind(reader)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// How many packages [`package_list`] pages through.
pub async fn package_count(pool: &PgPool, reader: bool) -> sqlx::Result<i64> {
    sqlx::query_scalar(&format!(
        "select count(*) from packages p where p.latest_version_id is not null and {VISIBLE}"
    ))
    .bind(reader)
    .fetch_one(pool)
    .await
}

pub async fn package(
    pool: &PgPool,
    reader: bool,
    repository: &str,
) -> sqlx::Result<Option<Package>> {
    sqlx::query_as(&format!(
        "select p.id, p.repository, p.backend, p.package_type, p.name, p.visibility, p.latest_tag,
                p.latest_version_id, p.description, p.maintainer,
                (select coalesce(sum(pp.count), 0)::bigint from package_pulls pp
                 where pp.backend = p.backend and pp.repository = p.repository) as pulls
         from packages p where p.repository = $2 and {VISIBLE}"
    ))
    .bind(reader)
    .bind(repository)
    .fetch_optional(pool)
    .await
}

/// Whether the version `v` is a platform image that an index of its package lists: part of that
/// index's version, never listed or counted as one of its own.
const IN_AN_INDEX: &str = "exists (select 1 from versions i
    where i.package_id = v.package_id and v.manifest_digest = any(i.children))";

/// The tags of the version rows grouped by `v.id` (or `i.id`), joined as `t`, sorted; `{}` if
/// none.
const GROUPED_TAGS: &str =
    "coalesce(array_agg(t.tag order by t.tag) filter (where t.tag is not null), '{}')";

/// Every manifest of a package with its tags.
pub async fn versions(pool: &PgPool, package_id: i64) -> sqlx::Result<Vec<VersionRow>> {
    sqlx::query_as(&format!(
        "select v.id, v.manifest_digest, v.kind, v.package_type, {GROUPED_TAGS} as tags,
                to_char(v.indexed_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') as indexed_at,
                {IN_AN_INDEX} as in_index
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

/// An object, if some version the request may see contains it (in its contents or examples).
/// Returns whether a public version does (the response may then be cached publicly).
pub async fn object(
    pool: &PgPool,
    reader: bool,
    digest: &str,
) -> sqlx::Result<Option<(Object, bool)>> {
    let row: Option<(Object, bool)> = sqlx::query_as::<_, Object>(
        "select digest, api_version, kind, name, class, body, size_bytes from objects
         where digest = $1",
    )
    .bind(digest)
    .fetch_optional(pool)
    .await?
    .map(|o| (o, false));
    let Some((object, _)) = row else {
        return Ok(None);
    };
    let (public, any): (bool, bool) = sqlx::query_as(
        "with holders as (
             select v.package_id from versions v join contents c on c.digest = v.contents_digest
             where c.objects @> array[$1::text]
             union
             select v.package_id from examples e join versions v on v.id = e.version_id
             where e.object_digest = $1)
         select coalesce(bool_or(p.visibility = 'public'), false), count(*) > 0
         from holders h join packages p on p.id = h.package_id",
    )
    .bind(digest)
    .fetch_one(pool)
    .await?;
    Ok(match (public, any) {
        (true, _) => Some((object, true)),
        (false, true) if reader => Some((object, false)),
        _ => None,
    })
}

/// The examples shown on an API type's docs page, and whether they came from a public package.
///
/// Rule (it keeps `/docs/sha256:<hex>` a pure function of the digest): the examples are those of
/// the earliest-indexed version (lowest version id) that contains the object and that the
/// request may see, for `group`/`kind`, possibly none. A version's contents and examples are
/// written in one transaction, so once any visible version holds the object, versions indexed
/// later never change the choice (only a package's visibility changing can). Anonymous requests
/// consider public packages only, so a private package sharing the CRD never shows its examples
/// there; a reader may get a private version's examples, and that answer is not cached publicly.
pub async fn examples_for(
    pool: &PgPool,
    reader: bool,
    definition: &str,
    group: &str,
    kind: &str,
) -> sqlx::Result<(Vec<Example>, bool)> {
    let first: Option<(i64, bool)> = sqlx::query_as(&format!(
        "select v.id, p.visibility = 'public' from versions v
         join contents c on c.digest = v.contents_digest
         join packages p on p.id = v.package_id
         where c.objects @> array[$2::text] and {VISIBLE}
         order by v.id limit 1"
    ))
    .bind(reader)
    .bind(definition)
    .fetch_optional(pool)
    .await?;
    let Some((version_id, public)) = first else {
        return Ok((vec![], true));
    };
    let examples = sqlx::query_as(
        "select e.object_digest, e.api_group, e.kind, e.api_version, e.example_id,
                e.supporting, o.body
         from examples e join objects o on o.digest = e.object_digest
         where e.version_id = $1 and e.api_group = $2 and e.kind = $3 order by e.position",
    )
    .bind(version_id)
    .bind(group)
    .bind(kind)
    .fetch_all(pool)
    .await?;
    Ok((examples, public))
}

/// The package that `reference` (e.g. `xpkg.upbound.io/upbound/provider-aws-ec2`) names, when
/// shimmer has indexed it: matched with and without its registry host.
pub async fn find_dependency(
    pool: &PgPool,
    reader: bool,
    reference: &str,
) -> sqlx::Result<Option<String>> {
    let without_host = match reference.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') => rest,
        _ => reference,
    };
    let row: Option<(String,)> = sqlx::query_as(&format!(
        "select p.repository from packages p
         where p.repository in ($2, $3) and {VISIBLE}
         order by p.repository = $2 desc limit 1"
    ))
    .bind(reader)
    .bind(reference)
    .bind(without_host)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(r,)| r))
}

/// Search parameters.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    pub q: &'a str,
    pub package_type: Option<&'a str>,
    pub group: Option<&'a str>,
    pub limit: i64,
    pub offset: i64,
}

/// Packages (name, description, maintainer, keywords: full text and trigrams) and API types of
/// each package's latest version (group, kind, plural, short names), in one ranked list:
/// an exact `Kind.group` first, then exact kinds, groups, plurals and short names and package
/// names, then everything similar by text rank and trigram similarity.
pub async fn search(
    pool: &PgPool,
    reader: bool,
    query: &Query<'_>,
) -> sqlx::Result<Vec<SearchHit>> {
    let q = query.q.trim().to_lowercase();
    let (kind, group) = q.split_once('.').unwrap_or(("", ""));
    // The end of the prefix range: every string that starts with `q` sorts below it.
    let prefix_end = format!("{q}\u{10FFFF}");
    // Kinds equal to, starting with, or similar to the query (or to its `Kind` part).
    let kinds: Vec<String> = sqlx::query_scalar(
        "(select kind from api_kinds where kind in ($1, $3))
         union
         (select kind from api_kinds where kind ~>=~ $1 and kind ~<~ $2 order by kind limit 200)
         union
         (select kind from api_kinds where kind % $1
          order by similarity(kind, $1) desc, kind limit 100)",
    )
    .bind(&q)
    .bind(&prefix_end)
    .bind(kind)
    .fetch_all(pool)
    .await?;
    sqlx::query_as(&format!(
        "with api as (
           select 'api' as hit_type, p.repository, p.latest_tag as version, p.package_type,
                  null::text as description, a.api_group as group, a.kind, a.plural,
                  a.object_digest,
                  case when lower(a.kind) = $3 and lower(a.api_group) = $4 then 0
                       when lower(a.kind) = $2 then 1
                       when lower(a.api_group) = $2 then 2
                       when lower(a.plural) = $2 or a.short_names @> array[$2] then 2
                       when (lower(a.kind) ~>=~ $2 and lower(a.kind) ~<~ $7)
                         or (lower(a.api_group) ~>=~ $2 and lower(a.api_group) ~<~ $7) then 3
                       else 4 end as rank,
                  similarity(lower(a.kind), $2) as score
           from api_types a join packages p on p.latest_version_id = a.version_id
           where {VISIBLE}
             and ($5::text is null or p.package_type = $5)
             and ($6::text is null or a.api_group = $6)
             and ((lower(a.kind) = $3 and lower(a.api_group) = $4)
                  or lower(a.kind) = any($11) or lower(a.api_group) = $2
                  or lower(a.plural) = $2 or a.short_names @> array[$2]
                  or (lower(a.api_group) ~>=~ $2 and lower(a.api_group) ~<~ $7))),
         pkg as (
           select 'package' as hit_type, p.repository, p.latest_tag as version, p.package_type,
                  p.description, null::text as group, null::text as kind, null::text as plural,
                  null::text as object_digest,
                  case when lower(p.name) = $2
                         or lower(regexp_replace(p.repository, '^.*/', '')) = $2 then 1
                       else 3 end as rank,
                  ts_rank(p.search, websearch_to_tsquery('simple', $2))
                    + ts_rank(p.search, websearch_to_tsquery('english', $2))
                    + similarity(lower(p.repository), $2) as score
           from packages p
           where p.latest_version_id is not null and {VISIBLE}
             and ($5::text is null or p.package_type = $5)
             and ($6::text is null or exists (select 1 from api_types a
                   where a.version_id = p.latest_version_id and a.api_group = $6))
             and (p.search @@ websearch_to_tsquery('simple', $2)
                  or p.search @@ websearch_to_tsquery('english', $2)
                  or lower(p.repository) like '%' || $8 || '%'
                  or lower(p.repository) % $2))
         select h.hit_type, h.repository, h.version, h.package_type, h.description, h.group,
                h.kind, h.plural, h.object_digest, h.rank, count(*) over () as total
         from (select * from api union all select * from pkg) h
         order by h.rank, h.score desc, h.kind nulls first, h.group nulls first, h.repository,
                  h.object_digest
         limit $9 offset $10"
    ))
    .bind(reader)
    .bind(&q)
    .bind(kind)
    .bind(group)
    .bind(query.package_type)
    .bind(query.group)
    .bind(&prefix_end)
    .bind(like_escape(&q))
    .bind(query.limit)
    .bind(query.offset)
    .bind(&kinds)
    .fetch_all(pool)
    .await
}

/// `q` with LIKE's wildcards escaped (the default escape character is `\`).
fn like_escape(q: &str) -> String {
    q.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub async fn job_counts(pool: &PgPool) -> sqlx::Result<Vec<(String, i64)>> {
    shimmer_store::jobs::counts(pool).await
}

/// Jobs that are not done: running, queued and failed, most recent first.
pub async fn open_jobs(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<JobView>> {
    sqlx::query_as(
        "select id, backend, repository, reference, digest, source, state, attempts, last_error,
                to_char(updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS UTC') as updated_at
         from index_jobs where state <> 'done'
         order by case state when 'running' then 0 when 'failed' then 1 else 2 end, id desc
         limit $1",
    )
    .bind(limit)
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
