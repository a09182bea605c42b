//! Packages as listed and shown: counts, pages of packages, one package, and the package a
//! dependency names.

use serde::Serialize;
use sqlx::{FromRow, PgPool};

use super::fragments::{IN_AN_INDEX, VISIBLE};

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
