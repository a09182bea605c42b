//! The changes between each version of a package and its predecessor in semver order (by each
//! version's highest semver tag), computed with `shimmer_diff` and its default rules and stored.
//! Run after a version is stored: it walks the package's chain of releases and computes only
//! the pairs whose stored predecessor is not the current one, so a version indexed late also
//! updates the version after it. Objects both versions share (same digest) are not read.

use shimmer_store::{
    PgPool,
    diffs::{self, Diff},
    packages::tag_semver,
};

use super::IndexError;

/// Brings the stored changes of `package_id`'s releases up to date.
pub async fn record(pool: &PgPool, package_id: i64) -> Result<(), IndexError> {
    let mut chain: Vec<(semver::Version, i64, Option<i64>)> = diffs::chain(pool, package_id)
        .await?
        .into_iter()
        .filter_map(|v| {
            let newest = v.tags.iter().filter_map(|t| tag_semver(t)).max()?;
            Some((newest, v.id, v.diffed_from))
        })
        .collect();
    chain.sort();
    let ids: Vec<i64> = chain.iter().map(|(_, id, _)| *id).collect();
    diffs::clear_outside(pool, package_id, &ids).await?;
    if let Some((_, first, Some(_))) = chain.first() {
        diffs::clear(pool, *first).await?;
    }
    for pair in chain.windows(2) {
        let ((_, from, _), (_, to, diffed_from)) = (&pair[0], &pair[1]);
        if *diffed_from != Some(*from) {
            compute(pool, *from, *to).await?;
        }
    }
    Ok(())
}

/// Computes and stores the changes from version `from` to version `to`.
async fn compute(pool: &PgPool, from: i64, to: i64) -> Result<(), IndexError> {
    let started = std::time::Instant::now();
    let pair = diffs::read_pair(pool, from, to).await?;
    let (definitions, objects_read) = (pair.old.len() + pair.new.len(), pair.json.len());
    let changes = tokio::task::spawn_blocking(move || {
        shimmer_diff::diff_stored(&pair.old, &pair.new, &pair.json)
    })
    .await?;
    let changes = match changes {
        Ok(c) => c,
        Err(e) => {
            // No stale changes from an earlier predecessor stay behind.
            tracing::warn!(from, to, error = %e, "changes between versions not computed");
            diffs::clear(pool, to).await?;
            return Ok(());
        }
    };
    let report = shimmer_diff::Report::new("", "", changes);
    let diff = Diff {
        breaking: report.breaking as i32,
        warnings: report.warnings as i32,
        total: report.changes.len() as i32,
        changes: serde_json::to_value(&report.changes).unwrap_or_default(),
    };
    diffs::save(pool, to, from, &diff).await?;
    tracing::info!(
        from,
        to,
        definitions,
        objects_read,
        breaking = diff.breaking,
        total = diff.total,
        millis = started.elapsed().as_millis() as u64,
        "changes between releases computed and stored"
    );
    Ok(())
}
