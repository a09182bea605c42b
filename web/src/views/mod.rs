//! What pages and the JSON API show of a package and its versions, shaped from the stored rows:
//! version lists in semver order ([`versions`]), the package header ([`head`]), a version's body
//! with its facts, API types and examples ([`body`]), how to install it ([`install`]), what that body needs
//! read ([`load`]) and its documents rendered ([`documents`]). Views answer no request: `pages`
//! and `api` do, with them.

mod body;
pub mod diff;
mod documents;
mod head;
mod install;
mod load;
mod since;
mod versions;

pub use body::{VersionBody, version_body};
pub use documents::documents;
pub use head::{Head, head};
pub use load::load;
pub use since::since;
pub use versions::{VersionTable, preferred_tag, version_lists, version_table};
