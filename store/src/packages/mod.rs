//! Packages, versions, tags, objects, API types and examples, as the indexer writes them.
//!
//! One version is written in one transaction. Objects are content-addressed: the indexer asks
//! which digests the store lacks and sends only those bodies, so a new version that shares 95%
//! of its CRDs with the last one writes 5% of the rows. Writing a version that exists already
//! changes nothing but its tag.

use serde_json::Value;
use shimmer_config::Visibility;
use sqlx::{PgPool, Postgres, Transaction};

use crate::VersionKind;

/// Rows per bulk statement (keeps each under PostgreSQL's parameter and message limits while
/// staying few round trips for a 2,000-CRD provider).
const CHUNK: usize = 250;

mod inserts;
mod latest;

use inserts::{insert_apis, insert_examples, insert_objects};
use latest::refresh_latest;
pub use latest::{fix_latest_versions_once, tag_semver};

/// An object to store once by digest.
#[derive(Debug, Clone)]
pub struct ObjectRecord {
    pub digest: String,
    pub api_version: String,
    pub kind: String,
    pub name: Option<String>,
    pub class: String,
    /// The object as JSON text (the indexer sends its canonical encoding, which it has anyway:
    /// a `Value` per object would take several times the text's memory for a large provider).
    pub body: String,
    pub size_bytes: i32,
}

/// An API type a version defines.
#[derive(Debug, Clone)]
pub struct ApiRecord {
    pub object_digest: String,
    pub definition: String,
    pub api_group: String,
    pub kind: String,
    /// The schema's description, first paragraph, for search.
    pub description: Option<String>,
    pub plural: Option<String>,
    pub singular: Option<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub scope: Option<String>,
    pub served_versions: Vec<String>,
    pub storage_version: Option<String>,
    pub versions: Value,
    pub deprecated: bool,
}

/// An example object of a version.
#[derive(Debug, Clone)]
pub struct ExampleRecord {
    pub object_digest: String,
    pub api_group: Option<String>,
    pub kind: Option<String>,
    pub api_version: Option<String>,
    pub example_id: Option<String>,
    pub supporting: bool,
}

impl ApiRecord {
    /// The API `kind` of `api_group`, a `definition` (`crd`, `xrd`, `function_input`) in the
    /// object `object_digest`, with nothing else known yet: callers fill in what they read.
    pub fn new(object_digest: &str, definition: &str, api_group: &str, kind: &str) -> Self {
        ApiRecord {
            object_digest: object_digest.to_owned(),
            definition: definition.to_owned(),
            api_group: api_group.to_owned(),
            kind: kind.to_owned(),
            description: None,
            plural: None,
            singular: None,
            short_names: vec![],
            categories: vec![],
            scope: None,
            served_versions: vec![],
            storage_version: None,
            versions: Value::Array(vec![]),
            deprecated: false,
        }
    }
}

/// Everything known about one manifest of a repository.
#[derive(Debug, Clone)]
pub struct VersionRecord {
    pub backend: String,
    pub repository: String,
    /// The tag this version was reached by, if any (it moves here).
    pub tag: Option<String>,
    /// When the registry said `tag` names this manifest (seconds since the Unix epoch): the tag
    /// moves only to what was read later than what it names now, so of two jobs reading one
    /// tag the later reading wins whichever commits last. `None`: no ordering (moves always).
    pub tag_resolved_at: Option<f64>,
    pub manifest_digest: String,
    pub index_digest: Option<String>,
    /// For an index, the digests of the manifests it lists (empty otherwise).
    pub children: Vec<String>,
    /// For an index, the platforms of its images, `os/architecture` (empty otherwise).
    pub platforms: Vec<String>,
    pub media_type: Option<String>,
    pub artifact_type: Option<String>,
    pub kind: VersionKind,
    pub package_type: Option<String>,
    pub name: Option<String>,
    pub meta: Option<Value>,
    /// The contents document's digest and its ordered object digests.
    pub contents: Option<(String, Vec<String>)>,
    pub crossplane_version: Option<String>,
    pub lint: Value,
    pub rejection: Option<String>,
    pub bytes_downloaded: i64,
    pub image_bytes: i64,
    /// `None` when it could not be told (the anonymous check failed in a way that proves
    /// nothing): the package keeps what it had, a new one is private.
    pub visibility: Option<Visibility>,
    /// When `visibility` was found out (seconds since the Unix epoch): the package's visibility
    /// changes only to a later finding than the one it has, so a job that checked before
    /// another but commits after it cannot put back what it saw. `None`: no time, applies.
    pub visibility_checked_at: Option<f64>,
    /// Replace a version stored already (a forced re-index: `shimmer index`), instead of
    /// leaving it as it was and only moving the tag.
    pub replace: bool,
}

impl VersionRecord {
    /// `manifest_digest` of `repository` on `backend`, of `kind`, with nothing read from it yet:
    /// no tag, no metadata, no lint, visibility unknown. Callers fill in what they found.
    pub fn new(backend: &str, repository: &str, manifest_digest: &str, kind: VersionKind) -> Self {
        VersionRecord {
            backend: backend.to_owned(),
            repository: repository.to_owned(),
            tag: None,
            tag_resolved_at: None,
            manifest_digest: manifest_digest.to_owned(),
            index_digest: None,
            children: vec![],
            platforms: vec![],
            media_type: None,
            artifact_type: None,
            kind,
            package_type: None,
            name: None,
            meta: None,
            contents: None,
            crossplane_version: None,
            lint: Value::Array(vec![]),
            rejection: None,
            bytes_downloaded: 0,
            image_bytes: 0,
            visibility: None,
            visibility_checked_at: None,
            replace: false,
        }
    }
}

/// What storing a version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub package_id: i64,
    pub version_id: i64,
    /// False when the version existed already (nothing but its tag was written).
    pub created: bool,
    pub objects_new: u64,
}

/// Which of `digests` the store has no object for.
pub async fn missing_objects(
    pool: &PgPool,
    digests: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "select d from unnest($1::text[]) as d
         where not exists (select 1 from objects o where o.digest = d)",
    )
    .bind(digests)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(d,)| d).collect())
}

/// What this manifest of this repository was stored as, if it is stored already.
pub async fn stored_kind(
    pool: &PgPool,
    repository: &str,
    digest: &str,
) -> Result<Option<VersionKind>, sqlx::Error> {
    sqlx::query_scalar(
        "select v.kind from versions v join packages p on p.id = v.package_id
         where p.repository = $1 and v.manifest_digest = $2 limit 1",
    )
    .bind(repository)
    .bind(digest)
    .fetch_optional(pool)
    .await
}

/// Writes a version with its objects (only those the store lacks need bodies: pass the rest
/// too, they are skipped), API types and examples, and moves its tag.
///
/// Kept whole: one transaction whose statements must run in this order.
pub async fn store_version(
    pool: &PgPool,
    v: &VersionRecord,
    objects: &[ObjectRecord],
    apis: &[ApiRecord],
    examples: &[ExampleRecord],
) -> Result<Stored, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (package_id,): (i64,) = sqlx::query_as(
        "insert into packages (backend, repository, package_type, name, visibility,
                               visibility_checked_at)
         values ($1, $2, $3, $4, coalesce($5, 'private'),
                 case when $5 is not null then to_timestamp($6) end)
         on conflict (repository) do update set
             backend = excluded.backend,
             package_type = coalesce(excluded.package_type, packages.package_type),
             name = coalesce(excluded.name, packages.name),
             visibility = case when $5 is not null and (packages.visibility_checked_at is null
                                    or $6 is null
                                    or packages.visibility_checked_at < to_timestamp($6))
                               then $5 else packages.visibility end,
             visibility_checked_at = case when $5 is not null
                                    and (packages.visibility_checked_at is null
                                         or packages.visibility_checked_at < to_timestamp($6))
                               then to_timestamp($6) else packages.visibility_checked_at end,
             updated_at = now()
         returning id",
    )
    .bind(&v.backend)
    .bind(&v.repository)
    .bind(&v.package_type)
    .bind(&v.name)
    .bind(v.visibility.map(Visibility::as_str))
    .bind(v.visibility_checked_at)
    .fetch_one(&mut *tx)
    .await?;

    let objects_new = insert_objects(&mut tx, objects).await?;
    if let Some((digest, list)) = &v.contents {
        sqlx::query(
            "insert into contents (digest, objects) values ($1, $2) on conflict do nothing",
        )
        .bind(digest)
        .bind(list)
        .execute(&mut *tx)
        .await?;
    }
    let inserted: Option<(i64,)> = sqlx::query_as(
        "insert into versions (package_id, manifest_digest, index_digest, media_type,
             artifact_type, kind, package_type, meta, contents_digest, crossplane_version, lint,
             rejection, bytes_downloaded, image_bytes, children, platforms)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $16, $17)
         on conflict (package_id, manifest_digest) do update
             set index_digest = excluded.index_digest, media_type = excluded.media_type,
                 artifact_type = excluded.artifact_type, kind = excluded.kind,
                 package_type = excluded.package_type, meta = excluded.meta,
                 contents_digest = excluded.contents_digest,
                 crossplane_version = excluded.crossplane_version, lint = excluded.lint,
                 rejection = excluded.rejection, bytes_downloaded = excluded.bytes_downloaded,
                 image_bytes = excluded.image_bytes, children = excluded.children,
                 platforms = excluded.platforms, indexed_at = now()
             where $15
         returning id",
    )
    .bind(package_id)
    .bind(&v.manifest_digest)
    .bind(&v.index_digest)
    .bind(&v.media_type)
    .bind(&v.artifact_type)
    .bind(v.kind)
    .bind(&v.package_type)
    .bind(&v.meta)
    .bind(v.contents.as_ref().map(|(d, _)| d))
    .bind(&v.crossplane_version)
    .bind(&v.lint)
    // The one place a rejection is kept: at most a screenful, however long the reason.
    .bind(
        v.rejection
            .as_deref()
            .map(|r| crate::text::shorten(r, crate::text::MAX_KEPT_TEXT_BYTES)),
    )
    .bind(v.bytes_downloaded)
    .bind(v.image_bytes)
    .bind(v.replace)
    .bind(&v.children)
    .bind(&v.platforms)
    .fetch_optional(&mut *tx)
    .await?;
    let (version_id, created) = match inserted {
        Some((id,)) if v.replace => {
            // Replaced or new: either way its API types and examples are this run's.
            for table in ["api_types", "examples"] {
                sqlx::query(&format!("delete from {table} where version_id = $1"))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            (id, true)
        }
        Some((id,)) => (id, true),
        None => {
            let (id,): (i64,) = sqlx::query_as(
                "select id from versions where package_id = $1 and manifest_digest = $2",
            )
            .bind(package_id)
            .bind(&v.manifest_digest)
            .fetch_one(&mut *tx)
            .await?;
            (id, false)
        }
    };
    if created {
        insert_apis(&mut tx, version_id, apis).await?;
        insert_examples(&mut tx, version_id, examples).await?;
    }
    if let Some(tag) = &v.tag {
        move_tag(
            &mut tx,
            package_id,
            tag,
            (version_id, &v.manifest_digest),
            v.tag_resolved_at,
        )
        .await?;
    }
    refresh_latest(&mut tx, package_id).await?;
    tx.commit().await?;
    Ok(Stored {
        package_id,
        version_id,
        created,
        objects_new,
    })
}

/// Points `tag` at a version (`(id, manifest digest)`), keeping every digest it ever named in
/// `tag_history`; unless what the tag names now was read from the registry later than
/// `resolved_at` (a job that read the tag before another but commits after it).
async fn move_tag(
    tx: &mut Transaction<'_, Postgres>,
    package_id: i64,
    tag: &str,
    (version_id, digest): (i64, &str),
    resolved_at: Option<f64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into tags (package_id, tag, version_id, resolved_at)
         values ($1, $2, $3, to_timestamp($4))
         on conflict (package_id, tag) do update
             set version_id = excluded.version_id, resolved_at = excluded.resolved_at,
                 updated_at = case when tags.version_id <> excluded.version_id
                                   then now() else tags.updated_at end
             where (tags.resolved_at is null or excluded.resolved_at is null
                    or tags.resolved_at < excluded.resolved_at)
               and (tags.version_id <> excluded.version_id
                    or tags.resolved_at is distinct from excluded.resolved_at)",
    )
    .bind(package_id)
    .bind(tag)
    .bind(version_id)
    .bind(resolved_at)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "insert into tag_history (package_id, tag, manifest_digest) values ($1, $2, $3)
         on conflict do nothing",
    )
    .bind(package_id)
    .bind(tag)
    .bind(digest)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
