//! What changes, and what breaks, from one version of a package's APIs to another: pure, no
//! I/O. The input is each side's API definitions (CRDs, XRDs, a Function's input CRDs) as
//! [`Definition`]s: their group, kind, digest and JSON; the output a sorted list of
//! [`Change`]s, the same for the same input. Rules:
//! - An API is known by its group and kind. One on a single side is `api-removed` or
//!   `api-added`; two definitions with one digest are the same and are not parsed at all.
//! - Within an API (`api`): scope, served versions, deprecations, the storage version; then
//!   each version served on both sides by its `openAPIV3Schema` (`schema`), paths dotted from
//!   the schema root (`spec.forProvider.tags`), array items written `[*]`, map values `.*`.
//! - A difference no rule covers is `unclassified`, with both values, and breaks unless a
//!   rules file ([`Rules`]) says otherwise.

mod api;
mod change;
mod report;
mod rules;
mod schema;

use std::collections::{BTreeMap, HashMap};

pub use api::{ApiVersion, api_versions};
pub use change::{Change, Code, Severity};
pub use report::Report;
pub use rules::{Enforcement, Format, Rules, RulesError};

/// One API definition of one side.
#[derive(Debug, Clone, Copy)]
pub struct Definition<'a> {
    pub group: &'a str,
    pub kind: &'a str,
    /// The digest of `json`: equal digests on both sides are equal definitions.
    pub digest: &'a str,
    /// The definition (a CRD's or XRD's canonical JSON).
    pub json: &'a str,
}

/// A definition whose JSON could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the definition of {api} ({digest}) is not valid JSON: {source}")]
pub struct DiffError {
    api: String,
    digest: String,
    source: serde_json::Error,
}

/// The changes from `old` to `new`, sorted. A kind defined twice on one side (two CRDs of one
/// group and kind) is compared by its first definition.
pub fn diff(old: &[Definition<'_>], new: &[Definition<'_>]) -> Result<Vec<Change>, DiffError> {
    fn by_api<'a>(defs: &[Definition<'a>]) -> BTreeMap<String, Definition<'a>> {
        let mut m = BTreeMap::new();
        for d in defs {
            m.entry(format!("{}/{}", d.group, d.kind)).or_insert(*d);
        }
        m
    }
    let (o, n) = (by_api(old), by_api(new));
    let mut out = Vec::new();
    for (api, od) in &o {
        let Some(nd) = n.get(api) else {
            out.push(Change::new(
                api,
                None,
                None,
                Code::ApiRemoved,
                format!("{api} was removed."),
            ));
            continue;
        };
        if od.digest == nd.digest {
            continue;
        }
        let (ov, nv) = (parse(api, od)?, parse(api, nd)?);
        api::compare(api, &api::read(&ov), &api::read(&nv), &mut out);
    }
    for api in n.keys().filter(|a| !o.contains_key(*a)) {
        out.push(Change::new(
            api,
            None,
            None,
            Code::ApiAdded,
            format!("{api} was added."),
        ));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A stored definition: (group, kind, object digest).
pub type Stored = (String, String, String);

/// The digests whose JSON [`diff_stored`] needs: those of the definitions it compares (the first
/// of each group and kind on each side) that the other side does not share, sorted, each once.
pub fn digests_to_read(old: &[Stored], new: &[Stored]) -> Vec<String> {
    fn firsts(list: &[Stored]) -> BTreeMap<(&str, &str), &str> {
        let mut m = BTreeMap::new();
        for (g, k, d) in list {
            m.entry((g.as_str(), k.as_str())).or_insert(d.as_str());
        }
        m
    }
    let (o, n) = (firsts(old), firsts(new));
    let mut digests: Vec<String> = o
        .iter()
        .filter(|(api, d)| n.get(*api) != Some(*d))
        .chain(n.iter().filter(|(api, d)| o.get(*api) != Some(*d)))
        .map(|(_, d)| (*d).to_owned())
        .collect();
    digests.sort();
    digests.dedup();
    digests
}

/// [`diff`] over stored definitions, their JSON looked up by digest in `json` (which needs only
/// the [`digests_to_read`]).
pub fn diff_stored(
    old: &[Stored],
    new: &[Stored],
    json: &HashMap<String, String>,
) -> Result<Vec<Change>, DiffError> {
    fn defs<'a>(list: &'a [Stored], json: &'a HashMap<String, String>) -> Vec<Definition<'a>> {
        list.iter()
            .map(|(group, kind, digest)| Definition {
                group,
                kind,
                digest,
                json: json.get(digest).map_or("", String::as_str),
            })
            .collect()
    }
    diff(&defs(old, json), &defs(new, json))
}

fn parse(api: &str, d: &Definition<'_>) -> Result<serde_json::Value, DiffError> {
    serde_json::from_str(d.json).map_err(|source| DiffError {
        api: api.to_owned(),
        digest: d.digest.to_owned(),
        source,
    })
}
