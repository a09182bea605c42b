//! A package's latest version: the highest semver tag of a package version, a release before
//! any pre-release, else the most recently moved tag, else the last indexed untagged version;
//! its text copied into the package row for search.

use sqlx::{PgPool, Postgres, Transaction};

/// Recomputes every package's latest version once (`data_fixes` row `latest_prefers_releases`):
/// packages indexed before a release came to outrank a higher pre-release kept the pre-release
/// until their next push. Concurrent callers: one does it, the others wait for its commit.
pub async fn fix_latest_versions_once(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let claimed = sqlx::query(
        "insert into data_fixes (name) values ('latest_prefers_releases') on conflict do nothing",
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 1 {
        let ids: Vec<(i64,)> = sqlx::query_as("select id from packages order by id")
            .fetch_all(&mut *tx)
            .await?;
        for (id,) in ids {
            refresh_latest(&mut tx, id).await?;
        }
    }
    tx.commit().await
}

/// A tag as a semantic version (`v1.2.3` or `1.2.3`), when it is one.
pub fn tag_semver(tag: &str) -> Option<semver::Version> {
    semver::Version::parse(tag.strip_prefix('v').unwrap_or(tag)).ok()
}

/// Picks the package's latest version (the highest semver tag of a Crossplane package version,
/// a release before any pre-release;
/// else the most recently moved tag; else the last indexed untagged package version) and copies
/// its text into the package row for search.
pub(super) async fn refresh_latest(
    tx: &mut Transaction<'_, Postgres>,
    package_id: i64,
) -> Result<(), sqlx::Error> {
    // The package row first (held already when a version is being stored): the one-time fix
    // must not read the tags while an indexer moves one, and then write what the old tags said
    // once the indexer commits.
    sqlx::query("select 1 from packages where id = $1 for no key update")
        .bind(package_id)
        .execute(&mut **tx)
        .await?;
    let tagged: Vec<(String, i64)> = sqlx::query_as(
        "select t.tag, t.version_id from tags t join versions v on v.id = t.version_id
         where t.package_id = $1 and v.kind = 'package'
         order by t.updated_at desc, t.tag",
    )
    .bind(package_id)
    .fetch_all(&mut **tx)
    .await?;
    // A pre-release (`v0.2.0-rc.1`) is the latest only while there is no release.
    let semver: Vec<(semver::Version, &String, i64)> = tagged
        .iter()
        .filter_map(|(t, id)| tag_semver(t).map(|v| (v, t, *id)))
        .collect();
    let highest = |release_only: bool| {
        semver
            .iter()
            .filter(|(v, _, _)| !release_only || v.pre.is_empty())
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, t, id)| (Some((*t).clone()), *id))
    };
    let best = highest(true)
        .or_else(|| highest(false))
        .or_else(|| tagged.first().map(|(t, id)| (Some(t.clone()), *id)));
    let best = match best {
        Some(b) => Some(b),
        None => sqlx::query_as::<_, (i64,)>(
            "select id from versions where package_id = $1 and kind = 'package'
             order by indexed_at desc, id desc limit 1",
        )
        .bind(package_id)
        .fetch_optional(&mut **tx)
        .await?
        .map(|(id,)| (None, id)),
    };
    let (tag, version_id) = match best {
        Some((t, id)) => (t, Some(id)),
        None => (None, None),
    };
    sqlx::query(
        "update packages p set latest_version_id = $2, latest_tag = $3,
             description = v.meta->>'description',
             maintainer = v.meta->>'maintainer',
             keywords = concat_ws(' ', v.meta->>'friendly_name', v.meta->>'provider_family',
                                  v.package_type)
         from (select $2::bigint as id) s left join versions v on v.id = s.id
         where p.id = $1",
    )
    .bind(package_id)
    .bind(version_id)
    .bind(tag)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
