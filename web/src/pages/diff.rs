//! `/packages/<repository>/diff?from=<version>&to=<version>`: the changes between any two
//! versions of a package ([`crate::compare`]), grouped by API and served version, breaking
//! first, each with its path and sentence; unchanged APIs collapsed; a form picks the two.

use askama::Template;
use shimmer_diff::Report;

use crate::{
    compare, db,
    error::Result,
    layout::Layout,
    state::AppState,
    views::{
        self, Head, VersionTable,
        diff::{ChangeGroup, ChangeView, groups},
    },
};

#[derive(Template)]
#[template(path = "diff.html")]
struct DiffPage {
    layout: Layout,
    head: Head,
    versions: VersionTable,
    from: String,
    to: String,
    report: Report,
    groups: Vec<ChangeGroup>,
    descriptions: Vec<ChangeView>,
    unchanged: Vec<String>,
}

/// The diff page of `package` between `from` and `to` (tags or digests; see
/// [`compare::between`] for the defaults).
pub async fn page(
    state: &AppState,
    package: db::Package,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<String> {
    let c = compare::between(&state.pool, &package, from, to).await?;
    let (groups, descriptions) = groups(&c.report.changes);
    let rows = db::versions(&state.pool, package.id).await?;
    Ok(DiffPage {
        layout: Layout::new(state),
        head: views::head(state, &package, Some(&c.to_version)),
        versions: views::version_table(&package.repository, &rows),
        from: c.from,
        to: c.to,
        report: c.report,
        groups,
        descriptions,
        unchanged: c.unchanged,
    }
    .render()?)
}
