//! Stored objects by digest, seen only through the versions that hold them, and the examples an
//! API type's docs page shows.

use serde::Serialize;
use serde_json::Value;
use sqlx::{FromRow, PgPool};

use super::{fragments::VISIBLE, versions::Example};

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
