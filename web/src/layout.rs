//! What `base.html`, the layout every page extends (the error page too), needs: the hashed
//! asset URLs and the search box's text. Nothing else of a page is known here.

use std::sync::Arc;

use crate::state::AppState;

/// What the base layout needs.
pub struct Layout {
    pub css: Arc<str>,
    pub js: Arc<str>,
    pub q: String,
}

impl Layout {
    /// The layout of a page whose search box shows `q`.
    pub fn new(state: &AppState, q: &str) -> Self {
        Self {
            css: state.assets.css_url.clone(),
            js: state.assets.js_url.clone(),
            q: q.to_owned(),
        }
    }
}
