//! The read model: every query the web runs, and none writes (the indexer, through the store,
//! does). Every query that can reach a private package takes `reader`: without it, packages
//! whose visibility is `private` (and objects only they contain) do not exist. SQL is written
//! in lowercase next to the function that runs it, one module per table or aggregate; what
//! several share ([`VISIBLE`], [`IN_AN_INDEX`], [`GROUPED_TAGS`]) is here.

mod apis;
mod diffs;
mod fragments;
mod jobs;
mod objects;
mod packages;
mod search;
mod versions;

pub use apis::api_definitions;
pub use diffs::{StoredDiff, read_pair, stored_diff};
pub use jobs::{JobView, job_counts, latest_rejections, open_jobs};
pub use objects::{Object, examples_for, object};
pub use packages::{
    Counts, ListOrder, Package, PackageSummary, counts, find_dependency, package, package_count,
    package_list, recent,
};
pub use search::{Query, SearchHit, search_page};
pub use versions::{
    ApiType, ContentEntry, Example, Version, VersionRow, apis, contents, examples, icon,
    indexes_listing, version, version_by_id, versions,
};
