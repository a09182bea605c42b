//! Reading Crossplane packages (xpkg), without I/O beyond the `Read` it is handed and without a
//! database. See `shared/specs/xpkg.md` for the format.
//!
//! The pipeline the queue worker drives:
//! 1. [`layers::read_layer`] decompresses one layer blob under byte caps, walks its tar safely and
//!    returns `package.yaml`, `.up/examples.yaml` and extension files (readme, icons, docs,
//!    release notes).
//! 2. [`package::parse_package`] splits the YAML streams ([`yaml`]), gives every object its
//!    canonical digest ([`canonical`]), classifies and lints the objects ([`classify`]), and reads
//!    the meta ([`meta`]), the API types ([`apis`]) and the examples ([`examples`]).
//!
//! The one rule of this module: untrusted input never panics and never runs unbounded. Every
//! failure is a [`Rejection`] that says precisely what was wrong; everything Crossplane itself
//! would tolerate or merely warn about is kept and reported as a [`classify::LintFinding`].

pub mod apis;
pub mod canonical;
pub mod classify;
pub mod examples;
pub mod layers;
pub mod limits;
pub mod meta;
pub mod package;
pub mod rejection;
pub mod yaml;

pub use limits::{LayerLimits, Limits, VersionLimits, YamlLimits};
pub use package::{ParsedPackage, parse_package};
pub use rejection::{Limit, Rejection, Stream};
