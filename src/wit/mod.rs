//! The WIT world model: interface references, version matching, and decoding a component's world
//! from a binary (wit-component) or from WIT text (wit-parser).
//!
//! Everything downstream (the resolver, messages, reports) works with these parsed types; strings
//! are parsed once, here.

mod decode;
mod reference;
mod version;

pub use decode::{decode_component, parse_world_text, WitError};
pub use reference::{InterfaceRef, PackageRef, RefParseError, WorldItemRef};
pub use version::{canonical_version, host_versions_match, linker_versions_match, parse_version};

/// The imports and exports of one component, as the resolver sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentWorld {
    /// What the component needs from its environment.
    pub imports: Vec<WorldItemRef>,
    /// What the component offers to its environment.
    pub exports: Vec<WorldItemRef>,
}
