//! Two versions of a package compared: their stored API definitions read, the objects they do
//! not share read (those they share are not), and `shimmer_diff` run off the async runtime.
//! `to` defaults to the latest version, `from` to the predecessor `to`'s stored changes name.
//! The diff page and the JSON API both answer with it.

use shimmer_diff::Report;

use crate::{
    db,
    error::{Error, Result},
    lookup, views,
};

/// What comparing two versions found.
pub struct Compared {
    pub from: String,
    pub to: String,
    pub to_version: db::Version,
    pub report: Report,
    /// The APIs both define with the same digest, `group/Kind`, sorted.
    pub unchanged: Vec<String>,
}

/// Compares versions `from` and `to` (tags or digests) of `package`.
pub async fn between(
    pool: &sqlx::PgPool,
    package: &db::Package,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<Compared> {
    let repository = &package.repository;
    let to = match to {
        Some(t) => t.to_owned(),
        None => package
            .latest_tag
            .clone()
            .ok_or_else(|| Error::not_found("This package has no tagged version to compare."))?,
    };
    let to_version = lookup::version(pool, package, &to).await?;
    let from = match from {
        Some(f) => f.to_owned(),
        None => db::stored_diff(pool, to_version.id)
            .await?
            .map(|d| views::since(repository, &to, &d).from)
            .ok_or_else(|| {
                Error::not_found(format!(
                    "{to} has no earlier release to compare with; pick one."
                ))
            })?,
    };
    let from_version = lookup::version(pool, package, &from).await?;
    let pair = db::read_pair(pool, from_version.id, to_version.id).await?;
    let mut unchanged: Vec<String> = pair
        .old
        .iter()
        .filter(|d| pair.new.contains(d))
        .map(|(g, k, _)| format!("{g}/{k}"))
        .collect();
    unchanged.sort();
    let (f, t) = (from.clone(), to.clone());
    let report = tokio::task::spawn_blocking(move || {
        shimmer_diff::diff_stored(&pair.old, &pair.new, &pair.json).map(|c| Report::new(&f, &t, c))
    })
    .await??;
    Ok(Compared {
        from,
        to,
        to_version,
        report,
        unchanged,
    })
}
