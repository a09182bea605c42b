//! `/packages/<repository>/versions/<version>/apis/<group>/<kind>`: an API's docs within a
//! package version. The page is the object's docs page ([`super::docs`]) with a left list of
//! the version's API groups and kinds (filterable), a link back to the version, and the same
//! API in the package's other versions. It changes as versions arrive, so it has the pages'
//! short caching; its permanent, content-addressed copy is `/docs/sha256:...`.

use shimmer_store::packages::tag_semver;

use super::docs;
use crate::{
    db,
    error::{Error, Result},
    lookup,
    state::AppState,
    text::{api_url, version_url},
    views::preferred_tag,
};

/// A group's kinds in the list: (kind, its page, whether it is the page shown).
pub type GroupKinds = (String, Vec<(String, String, bool)>);

/// What the left column of an API page within a version shows.
pub struct ApiNav {
    pub package: String,
    pub version: String,
    pub version_url: String,
    /// The permanent docs URL of this definition.
    pub docs_url: String,
    /// The version's APIs by group: (group, [(kind, url, current)]).
    pub groups: Vec<GroupKinds>,
    /// The same API in the package's other versions, newest release first: (label, url).
    pub other_versions: Vec<(String, String)>,
}

/// `path` split as `<repository>/versions/<version>/apis/<group>/<kind>`, if it is one.
pub fn split_api_path(path: &str) -> Option<(&str, &str, &str, &str)> {
    let (version_path, api) = path.rsplit_once("/apis/")?;
    let (group, kind) = api.split_once('/')?;
    let (repository, version) = version_path.rsplit_once("/versions/")?;
    let ok = |s: &str| !s.is_empty() && !s.contains('/');
    (ok(repository.rsplit('/').next()?) && ok(version) && ok(group) && ok(kind))
        .then_some((repository, version, group, kind))
}

/// The page of `group`/`kind` within `version` of `repository`.
pub async fn page(
    state: &AppState,
    reader: bool,
    (repository, version, group, kind): (&str, &str, &str, &str),
) -> Result<String> {
    let pool = &state.pool;
    let package = lookup::package(pool, reader, repository).await?;
    let v = lookup::version(pool, &package, version).await?;
    let apis = db::apis(pool, v.id).await?;
    let this = apis
        .iter()
        .find(|a| a.api_group == group && a.kind == kind)
        .ok_or_else(|| {
            Error::not_found(format!(
                "{repository} {version} defines no {kind} in {group}."
            ))
        })?;
    let (object, public) = lookup::object(pool, reader, &this.object_digest).await?;
    let digest = this.object_digest.clone();
    let mut built = docs::build(state, reader, &digest, object, public).await?;
    let mut groups: Vec<GroupKinds> = Vec::new();
    for a in &apis {
        let entry = (
            a.kind.clone(),
            api_url(repository, version, &a.api_group, &a.kind),
            a.api_group == group && a.kind == kind,
        );
        match groups.last_mut() {
            Some((g, list)) if *g == a.api_group => list.push(entry),
            _ => groups.push((a.api_group.clone(), vec![entry])),
        }
    }
    let mut others: Vec<(Option<semver::Version>, String)> =
        db::api_definitions(pool, reader, Some(group), Some(kind), 1000)
            .await?
            .into_iter()
            .filter(|d| {
                d.repository == package.repository && d.manifest_digest != v.manifest_digest
            })
            .map(|d| {
                let label = preferred_tag("", &d.tags)
                    .map(str::to_owned)
                    .unwrap_or(d.manifest_digest);
                (tag_semver(&label), label)
            })
            .collect();
    others.sort_by(|a, b| b.cmp(a));
    built.page.nav = Some(ApiNav {
        package: package.repository.clone(),
        version: version.to_owned(),
        version_url: version_url(repository, version),
        docs_url: state.docs_url(&digest),
        groups,
        other_versions: others
            .into_iter()
            .map(|(_, label)| {
                let url = api_url(repository, &label, group, kind);
                (label, url)
            })
            .collect(),
    });
    Ok(askama::Template::render(&built.page)?)
}

#[cfg(test)]
mod tests {
    use super::split_api_path;

    #[test]
    fn api_paths_split_into_repository_version_group_and_kind() {
        assert_eq!(
            split_api_path("acme/p/versions/v1/apis/g.io/Kind"),
            Some(("acme/p", "v1", "g.io", "Kind"))
        );
        assert_eq!(split_api_path("acme/p/versions/v1/apis/g.io"), None);
        assert_eq!(split_api_path("acme/p/versions/v1/apis/g.io/K/x"), None);
        assert_eq!(split_api_path("acme/p/apis/g.io/K"), None);
    }
}
