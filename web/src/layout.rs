//! What `base.html`, the layout every page extends (the error page too), needs: the hashed
//! asset URLs and whether the header has its search box. Nothing else of a page is known here.

use std::sync::Arc;

use crate::state::AppState;

/// What the base layout needs.
pub struct Layout {
    pub css: Arc<str>,
    pub js: Arc<str>,
    /// Whether the header has its search box (home and search have their own, larger one).
    pub search: bool,
}

impl Layout {
    /// The layout of a page with the header's search box.
    pub fn new(state: &AppState) -> Self {
        Self {
            css: state.assets.css_url.clone(),
            js: state.assets.js_url.clone(),
            search: true,
        }
    }

    /// The layout of a page with its own search box (home, search): none in the header.
    pub fn without_search(state: &AppState) -> Self {
        Self {
            search: false,
            ..Self::new(state)
        }
    }
}
