//! The HTML pages, one module per page family: the home page and the package list ([`home`]),
//! a package and its versions ([`package`]), the changes between two of them (`diff`), an object's docs ([`docs`]), search ([`search`])
//! and the index queue ([`status`]). A page reads through [`crate::db`], shapes what it read
//! with [`crate::views`] and renders an askama template on the base [`crate::layout::Layout`];
//! it fails with an [`crate::error::Error`], which [`crate::layers::render_errors`] shows as the error page.
//! The JSON API answers the same questions in [`crate::api`], and imports nothing from here.

mod api_page;
mod diff;
mod docs;
mod home;
mod package;
mod search;
mod status;

pub use docs::docs;
pub use home::{home, packages};
pub use package::package;
pub use search::search;
pub use status::status;

use crate::error::Error;

/// What no route answers: the 404 page.
pub async fn not_found() -> Error {
    Error::not_found("There is no page at this address.")
}
