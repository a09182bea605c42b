//! The catalogue's search: packages and API types in one ranked list, a page at a time.

use serde::Serialize;
use sqlx::{FromRow, PgPool};

use super::fragments::VISIBLE;

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
    /// An API hit's served versions, in the definition's order.
    pub versions: Option<Vec<String>>,
    /// A package hit's newest push that was rejected (after its latest version, or with none),
    /// with the reason.
    pub rejection: Option<String>,
    #[serde(skip)]
    pub total: i64,
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

/// Packages (name, description, maintainer, keywords: full text and trigrams; also a package
/// whose every push was rejected, found by its repository name, with the reason) and API types
/// of each package's latest version (group, kind, plural, short names), in one ranked list:
/// an exact `Kind.group` first, then exact kinds, groups, plurals and short names and package
/// names, then everything similar by text rank and trigram similarity.
async fn search(pool: &PgPool, reader: bool, query: &Query<'_>) -> sqlx::Result<Vec<SearchHit>> {
    let q = query.q.trim().to_lowercase();
    let (kind, group) = q.split_once('.').unwrap_or(("", ""));
    // The end of the prefix range: every string that starts with `q` sorts below it.
    let prefix_end = format!("{q}\u{10FFFF}");
    let kinds = similar_kinds(pool, &q, &prefix_end, kind).await?;
    sqlx::query_as(&format!(
        "with api as (
           select 'api' as hit_type, p.repository, p.latest_tag as version, p.package_type,
                  a.description, a.api_group as group, a.kind, a.plural,
                  a.object_digest, a.served_versions as versions, null::text as rejection,
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
                  null::text as object_digest, null::text[] as versions,
                  (select r.rejection from versions r
                   where r.package_id = p.id and r.kind = 'rejected'
                     and r.indexed_at > coalesce((select l.indexed_at from versions l
                                                  where l.id = p.latest_version_id), '-infinity')
                   order by r.indexed_at desc limit 1) as rejection,
                  case when lower(p.name) = $2
                         or lower(regexp_replace(p.repository, '^.*/', '')) = $2 then 1
                       else 3 end as rank,
                  ts_rank(p.search, websearch_to_tsquery('simple', $2))
                    + ts_rank(p.search, websearch_to_tsquery('english', $2))
                    + similarity(lower(p.repository), $2) as score
           from packages p
           where (p.latest_version_id is not null
                  or exists (select 1 from versions r
                             where r.package_id = p.id and r.kind = 'rejected'))
             and {VISIBLE}
             and ($5::text is null or p.package_type = $5)
             and ($6::text is null or exists (select 1 from api_types a
                   where a.version_id = p.latest_version_id and a.api_group = $6))
             and (p.search @@ websearch_to_tsquery('simple', $2)
                  or p.search @@ websearch_to_tsquery('english', $2)
                  or lower(p.repository) like '%' || $8 || '%'
                  or lower(p.repository) % $2))
         select h.hit_type, h.repository, h.version, h.package_type, h.description, h.group,
                h.kind, h.plural, h.object_digest, h.versions, h.rejection, h.rank,
                count(*) over () as total
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

/// Kinds equal to, starting with (below `prefix_end`), or similar to the query `q` (or to its
/// `Kind` part, `kind`).
async fn similar_kinds(
    pool: &PgPool,
    q: &str,
    prefix_end: &str,
    kind: &str,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "(select kind from api_kinds where kind in ($1, $3))
         union
         (select kind from api_kinds where kind ~>=~ $1 and kind ~<~ $2 order by kind limit 200)
         union
         (select kind from api_kinds where kind % $1
          order by similarity(kind, $1) desc, kind limit 100)",
    )
    .bind(q)
    .bind(prefix_end)
    .bind(kind)
    .fetch_all(pool)
    .await
}

/// One page of search hits (`query.limit` of them from `query.offset`) and the number of hits
/// on all pages.
pub async fn search_page(
    pool: &PgPool,
    reader: bool,
    mut query: Query<'_>,
) -> sqlx::Result<(Vec<SearchHit>, i64)> {
    let hits = search(pool, reader, &query).await?;
    let total = match hits.first() {
        Some(hit) => hit.total,
        // Past the last page the total rides on no row: count from the first.
        None if query.offset > 0 => {
            query.limit = 1;
            query.offset = 0;
            let first = search(pool, reader, &query).await?;
            first.first().map_or(0, |h| h.total)
        }
        None => 0,
    };
    Ok((hits, total))
}

/// `q` with LIKE's wildcards escaped (the default escape character is `\`).
fn like_escape(q: &str) -> String {
    q.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
