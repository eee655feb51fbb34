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
pub use version::{
    canonical_version, host_versions_match, linker_versions_match, parse_version, semver_track,
    sibling_versions_match, SemverTrack,
};

/// The imports and exports of one component, as the resolver sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentWorld {
    /// What the component needs from its environment.
    pub imports: Vec<WorldItemRef>,
    /// What the component offers to its environment.
    pub exports: Vec<WorldItemRef>,
    /// Imported interfaces that hold only (non-resource) types: the linker needs no definition
    /// for them (wasmtime 47.0.3 `runtime/component/matching.rs` checks a missing instance
    /// against its expected exports, and plain types need nothing). Known only for decoded
    /// binaries and self-contained WIT; empty otherwise.
    pub types_only: std::collections::BTreeSet<InterfaceRef>,
    /// For imported interfaces that `use` resources owned by other interfaces: those owners
    /// (`wasi:http/handler@0.3.0` uses `wasi:http/types@0.3.0`'s `request`). Known only for
    /// decoded binaries and self-contained WIT.
    pub resource_uses:
        std::collections::BTreeMap<InterfaceRef, std::collections::BTreeSet<InterfaceRef>>,
}

impl ComponentWorld {
    /// A world from its imports and exports, with no types-only imports known.
    pub fn new(imports: Vec<WorldItemRef>, exports: Vec<WorldItemRef>) -> Self {
        Self {
            imports,
            exports,
            types_only: Default::default(),
            resource_uses: Default::default(),
        }
    }

    /// Whether `import` is an interface import that needs no definition in the linker.
    pub fn needs_nothing(&self, import: &WorldItemRef) -> bool {
        match import {
            WorldItemRef::Interface(r) => self.types_only.contains(r),
            _ => false,
        }
    }
}
