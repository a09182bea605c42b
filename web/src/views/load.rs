//! What a version's page reads beyond the version's own row: its API types, examples, contents,
//! dependencies and the indexes that list it. The only view that queries.

use serde::Serialize;
use sqlx::PgPool;

use crate::{
    db::{self, ApiType, ContentEntry, Example, Version},
    text::package_url,
};

#[derive(Debug, Clone, Serialize)]
/// A package a version depends on.
pub struct DependencyView {
    pub package: String,
    pub kind: String,
    pub constraint: String,
    /// The package's page, when shimmer has indexed it.
    pub link: Option<String>,
}

/// Loads and shapes a version's content.
pub struct Loaded {
    pub apis: Vec<ApiType>,
    pub examples: Vec<Example>,
    pub contents: Vec<ContentEntry>,
    pub dependencies: Vec<DependencyView>,
    /// The indexes that list this version (it is one of their platform images): manifest
    /// digest and tags.
    pub indexes: Vec<(String, Vec<String>)>,
}

/// Reads what [`super::version_body`] shapes of version `v`.
pub async fn load(pool: &PgPool, reader: bool, v: &Version) -> sqlx::Result<Loaded> {
    let apis = db::apis(pool, v.id).await?;
    let examples = db::examples(pool, v.id).await?;
    let contents = match &v.contents_digest {
        Some(d) => db::contents(pool, d).await?,
        None => vec![],
    };
    let mut dependencies = Vec::new();
    if let Some(deps) = v.meta.as_ref().and_then(|m| m["depends_on"].as_array()) {
        for d in deps {
            let package = d["package"].as_str().unwrap_or_default().to_owned();
            let link = db::find_dependency(pool, reader, &package)
                .await?
                .map(|r| package_url(&r));
            dependencies.push(DependencyView {
                kind: d["kind"].as_str().unwrap_or("unknown").to_owned(),
                constraint: d["version_constraint"]
                    .as_str()
                    .unwrap_or("any version")
                    .to_owned(),
                package,
                link,
            });
        }
    }
    Ok(Loaded {
        apis,
        examples,
        contents,
        dependencies,
        indexes: db::indexes_listing(pool, v.id).await?,
    })
}
