//! A version's documents (its readme, its extensions' markdown and text files) rendered off the
//! runtime, within the page's budget. The only view that renders.

use super::body::VersionBody;
use crate::{db::Version, error::Result, state::AppState, text::plain_text};

/// Rendered HTML of a page's documents, at most this many bytes; the documents after are named,
/// not shown.
pub const MAX_PAGE_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Fills in `body`'s readme and documents: the `readme` annotation (else the first `readme/`
/// file of the extensions), then the extensions' markdown and text files, each rendered off the
/// runtime ([`crate::render`]) until [`MAX_PAGE_DOCUMENT_BYTES`] of HTML.
pub async fn documents(state: &AppState, v: &Version, body: &mut VersionBody) -> Result<()> {
    let Some(meta) = v.meta.as_ref() else {
        return Ok(());
    };
    let mut budget = MAX_PAGE_DOCUMENT_BYTES;
    if let Some(r) = meta["readme"].as_str() {
        let html = state.render.markdown(r).await?;
        budget = budget.saturating_sub(html.len());
        body.readme = Some(html.to_string());
    }
    for f in meta["extensions"].as_array().into_iter().flatten() {
        let (Some(folder), Some(path), Some(text)) =
            (f["folder"].as_str(), f["path"].as_str(), f["text"].as_str())
        else {
            continue;
        };
        if !(path.ends_with(".md") || path.ends_with(".markdown") || path.ends_with(".txt")) {
            continue;
        }
        let name = plain_text(&format!(
            "{folder}: {}",
            shimmer_store::text::shorten(path, 200)
        ));
        if budget == 0 {
            body.documents_left_out.push(name);
            continue;
        }
        let html = state.render.markdown(text).await?;
        if html.len() > budget {
            budget = 0;
            body.documents_left_out.push(name);
            continue;
        }
        budget -= html.len();
        if folder == "readme" && body.readme.is_none() {
            body.readme = Some(html.to_string());
        } else {
            body.extension_docs.push((name, html.to_string()));
        }
    }
    Ok(())
}
