//! SQL shared by several queries of the read model: who may see a package, whether a version is
//! a platform image of an index, and a version's tags.

/// `and (<private packages are visible> or p.visibility = 'public')`, for a `packages p`.
pub const VISIBLE: &str = "($1 or p.visibility = 'public')";

/// Whether the version `v` is a platform image that an index of its package lists: part of that
/// index's version, never listed or counted as one of its own.
pub const IN_AN_INDEX: &str = "exists (select 1 from versions i
    where i.package_id = v.package_id and v.manifest_digest = any(i.children))";

/// The tags of the version rows grouped by `v.id` (or `i.id`), joined as `t`, sorted; `{}` if
/// none.
pub const GROUPED_TAGS: &str =
    "coalesce(array_agg(t.tag order by t.tag) filter (where t.tag is not null), '{}')";
