//! What an address names, found, or the 404 that says what is not there: the package pages,
//! the API pages, the docs, the diff and the JSON API look packages, versions and objects up
//! the same way.

use sqlx::PgPool;

use crate::{
    db,
    error::{Error, Result},
    text::split_version_path,
};

/// The package `repository`, if this request may see it.
pub async fn package(pool: &PgPool, reader: bool, repository: &str) -> Result<db::Package> {
    db::package(pool, reader, repository)
        .await?
        .ok_or_else(|| Error::not_found(format!("No package named {repository} is indexed.")))
}

/// Version `reference` (a tag or a digest) of `package`.
pub async fn version(pool: &PgPool, package: &db::Package, reference: &str) -> Result<db::Version> {
    let repository = &package.repository;
    db::version(pool, package.id, reference)
        .await?
        .ok_or_else(|| Error::not_found(format!("{repository} has no version {reference}.")))
}

/// The object `digest`, if this request may see it, and whether it is public.
pub async fn object(pool: &PgPool, reader: bool, digest: &str) -> Result<(db::Object, bool)> {
    db::object(pool, reader, digest)
        .await?
        .ok_or_else(|| Error::not_found(format!("No object {digest} is indexed.")))
}

/// The package and version `path` names (`<repository>/versions/<tag or digest>`), with the
/// reference as written.
pub async fn version_at<'p>(
    pool: &PgPool,
    reader: bool,
    path: &'p str,
) -> Result<(db::Package, db::Version, &'p str)> {
    let (repository, reference) = split_version_path(path)
        .ok_or_else(|| Error::not_found(format!("No package named {path} is indexed.")))?;
    let package = package(pool, reader, repository).await?;
    let version = version(pool, &package, reference).await?;
    Ok((package, version, reference))
}
