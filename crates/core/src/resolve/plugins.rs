//! How a host binds plugins to a component: which `hostInterfaces` entries it binds, which of
//! its plugins serves each, and what the bound plugin then puts into the component's linker.
//! The rules follow wash-runtime 2.7.0 (`crates/wash-runtime/src/engine/workload.rs`
//! `bind_plugins`, `src/wit.rs` `WitWorld::includes_bidirectional` and `same_package`) and
//! wasmtime 47.0.3's linker (`component/linker.rs`, `environ/src/component/names.rs`).

use std::collections::{BTreeMap, BTreeSet};

use semver::Version;

use crate::crd::{Host, HostInterface, HostWitInterface};
use crate::policy::Policy;
use crate::wit::{
    host_versions_match, linker_versions_match, parse_version, ComponentWorld, InterfaceRef,
};

/// The first host release that binds an entry for a component using *any* of its interfaces
/// (wasmCloud PR 5526, `WitWorld::uses`); earlier hosts require *all* of them.
pub const ANY_RULE_SINCE: Version = Version::new(2, 8, 0);

/// When a host binds an entry for a component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryRule {
    /// The component imports or exports every interface the entry lists (hosts up to 2.7).
    All,
    /// The component imports or exports at least one of them (hosts from [`ANY_RULE_SINCE`]).
    Any,
}

impl EntryRule {
    /// The rule of the release a host reports in its heartbeat (`status.version`); hosts that
    /// report no parsable version are judged by the older, stricter rule.
    pub fn for_host(host: &Host) -> Self {
        let version = host
            .status
            .as_ref()
            .and_then(|s| s.version.as_deref())
            .map(|v| v.trim_start_matches('v'))
            .and_then(parse_version);
        match version {
            // A pre-release of 2.8.0 (2.8.0-rc.1) sorts below 2.8.0: the old rule.
            Some(v) if v >= ANY_RULE_SINCE => EntryRule::Any,
            _ => EntryRule::All,
        }
    }
}

/// Whether `r` is of the entry's package at a version the entry accepts (`same_package`: an
/// unversioned side matches any).
fn of_entry(r: &InterfaceRef, entry: &HostInterface, entry_version: Option<&Version>) -> bool {
    r.package.name == entry.package
        && r.package.namespace == entry.namespace
        && host_versions_match(r.version(), entry_version)
}

/// The interfaces of the entry's package that the component imports or exports at a version
/// the entry accepts.
pub fn held_interfaces<'w>(
    world: &'w ComponentWorld,
    entry: &HostInterface,
    entry_version: Option<&Version>,
) -> BTreeSet<&'w str> {
    world
        .imports
        .iter()
        .chain(&world.exports)
        .filter_map(|item| item.interface())
        .filter(|r| of_entry(r, entry, entry_version))
        .map(|r| r.interface.as_str())
        .collect()
}

/// Whether the host binds `entry` for a component with this world. Judged item by item, with
/// no set built: this runs per entry, component and host profile on every review.
pub fn entry_binds(
    entry: &HostInterface,
    entry_version: Option<&Version>,
    world: &ComponentWorld,
    rule: EntryRule,
) -> bool {
    // Whether the component holds `interface` of the entry's package at an accepted version
    // (the membership test of [`held_interfaces`]).
    let holds = |interface: &String| {
        world
            .imports
            .iter()
            .chain(&world.exports)
            .filter_map(|item| item.interface())
            .any(|r| r.interface == *interface && of_entry(r, entry, entry_version))
    };
    match rule {
        EntryRule::All => !entry.interfaces.is_empty() && entry.interfaces.iter().all(holds),
        EntryRule::Any => entry.interfaces.iter().any(holds),
    }
}

/// Entries the host never binds to a plugin: `wasi:http` entries listing nothing but the
/// handlers (wash-runtime 2.7.0 `bind_plugins` filters them; the host serves wasi:http itself).
pub fn is_http_handler_entry(entry: &HostInterface) -> bool {
    const HANDLERS: [&str; 3] = ["incoming-handler", "outgoing-handler", "handler"];
    entry.namespace == "wasi"
        && entry.package == "http"
        && entry
            .interfaces
            .iter()
            .all(|i| HANDLERS.contains(&i.as_str()))
}

/// Whether another component serves the entry for component `me` (wash-runtime 2.7.0
/// `served_within_workload`): the entry lists interfaces, `me` imports each of them, and exactly
/// one other component exports each of them (`same_package` versions).
pub fn served_within_workload(
    entry: &HostInterface,
    entry_version: Option<&Version>,
    me: &str,
    world: &ComponentWorld,
    all: &[(&str, &ComponentWorld)],
) -> bool {
    let holds = |items: &[crate::wit::WorldItemRef], interface: &str| {
        items
            .iter()
            .filter_map(|i| i.interface())
            .any(|r| r.interface == interface && of_entry(r, entry, entry_version))
    };
    !entry.interfaces.is_empty()
        && entry.interfaces.iter().all(|i| {
            holds(&world.imports, i)
                && all
                    .iter()
                    .filter(|(name, w)| *name != me && holds(&w.exports, i))
                    .count()
                    == 1
        })
}

/// The version a bound plugin's definitions carry in the linker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindingVersion {
    /// Known: the version the host advertises, or the policy's table for an unversioned world.
    Known(Version),
    /// The host advertises the world unversioned and the policy does not know its bindings:
    /// any version is accepted (the host's own rule for an unversioned world).
    Unknown,
}

/// One plugin of a host that serves an entry: its whole package, at its binding version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The version of the definitions it adds to the linker.
    pub version: BindingVersion,
    /// Every interface of the package the plugin provides (a bound plugin adds its whole
    /// package, not only the entry's interfaces).
    pub interfaces: BTreeSet<String>,
}

impl Binding {
    /// Whether a component's import of `r` links against this plugin's definitions (wasmtime's
    /// linker: the exact name, else the same semver track).
    pub fn provides(&self, r: &InterfaceRef) -> bool {
        self.interfaces.contains(&r.interface)
            && match &self.version {
                BindingVersion::Known(v) => linker_versions_match(r.version(), Some(v)),
                BindingVersion::Unknown => true,
            }
    }
}

/// The plugin of `host` that serves `entry`, if any: among the advertised worlds of the entry's
/// package at a version the entry accepts (`same_package`) that cover every interface the entry
/// lists, as imports or exports (`includes_bidirectional`), the one the host binds.
pub fn bindings(
    host: &Host,
    entry: &HostInterface,
    entry_version: Option<&Version>,
    policy: &Policy,
) -> Vec<Binding> {
    let Some(status) = host.status.as_ref() else {
        return Vec::new();
    };
    // Advertised worlds of the package, by version (None: unversioned).
    let mut worlds: BTreeMap<Option<Version>, BTreeSet<String>> = BTreeMap::new();
    let lists = [status.imports.as_deref(), status.exports.as_deref()];
    for hw in lists.into_iter().flatten().flatten() {
        if hw.namespace == entry.namespace && hw.package == entry.package {
            worlds
                .entry(advertised_version(hw))
                .or_default()
                .extend(hw.interfaces.iter().cloned());
        }
    }
    let mut bound: Vec<Binding> = worlds
        .into_iter()
        .filter(|(v, _)| host_versions_match(v.as_ref(), entry_version))
        .filter(|(_, ifaces)| entry.interfaces.iter().all(|i| ifaces.contains(i)))
        .map(|(v, interfaces)| Binding {
            version: match v {
                Some(v) => BindingVersion::Known(v),
                None => policy
                    .binding_version(&entry.namespace, &entry.package)
                    .map_or(BindingVersion::Unknown, BindingVersion::Known),
            },
            interfaces,
        })
        .collect();
    // One plugin binds an entry (the first that matches, wash-runtime 2.7.0 `bind_plugins`),
    // and a plugin that advertises several versions binds one of them: for an unversioned
    // entry the oldest (`wasmcloud-postgres` binds 0.1.1-draft unless the entry asks for
    // >= 0.2.0; after 2.7.0, `claims` sends versionless messaging entries to 0.2.0).
    bound.sort_by(|a, b| match (&a.version, &b.version) {
        (BindingVersion::Known(x), BindingVersion::Known(y)) => x.cmp(y),
        (BindingVersion::Unknown, BindingVersion::Known(_)) => std::cmp::Ordering::Less,
        (BindingVersion::Known(_), BindingVersion::Unknown) => std::cmp::Ordering::Greater,
        _ => std::cmp::Ordering::Equal,
    });
    let Some(first) = bound.first().cloned() else {
        return Vec::new();
    };
    // Worlds at the same binding version (an unversioned world and its versioned twin) are
    // one package in the linker.
    let mut merged = first;
    for b in bound.into_iter().skip(1) {
        if b.version == merged.version {
            merged.interfaces.extend(b.interfaces);
        }
    }
    vec![merged]
}

fn advertised_version(hw: &HostWitInterface) -> Option<Version> {
    hw.version.as_deref().and_then(parse_version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::WorldItemRef;

    fn world(imports: &[&str]) -> ComponentWorld {
        ComponentWorld::new(
            imports
                .iter()
                .map(|s| WorldItemRef::Interface(s.parse().unwrap()))
                .collect(),
            vec![],
        )
    }

    fn entry(ns: &str, pkg: &str, interfaces: &[&str]) -> HostInterface {
        HostInterface {
            namespace: ns.into(),
            package: pkg.into(),
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn all_rule_needs_every_listed_interface() {
        let e = entry("wasi", "keyvalue", &["store", "atomics"]);
        let w = world(&["wasi:keyvalue/store@0.2.0-draft"]);
        assert!(!entry_binds(&e, None, &w, EntryRule::All));
        assert!(entry_binds(&e, None, &w, EntryRule::Any));
        let both = world(&[
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:keyvalue/atomics@0.2.0-draft",
        ]);
        assert!(entry_binds(&e, None, &both, EntryRule::All));
    }

    #[test]
    fn a_versioned_entry_binds_only_the_same_version() {
        let e = entry("wasmcloud", "secrets", &["store"]);
        let w = world(&["wasmcloud:secrets/store@2.0.0"]);
        let v = |s: &str| Version::parse(s).unwrap();
        assert!(entry_binds(&e, None, &w, EntryRule::All));
        assert!(entry_binds(&e, Some(&v("2.0.0")), &w, EntryRule::All));
        assert!(!entry_binds(&e, Some(&v("2.1.0")), &w, EntryRule::All));
    }

    #[test]
    fn binding_links_by_the_linker_rule() {
        let b = Binding {
            version: BindingVersion::Known(Version::parse("2.1.0").unwrap()),
            interfaces: ["store".to_string(), "reveal".to_string()].into(),
        };
        assert!(b.provides(&"wasmcloud:secrets/store@2.0.0".parse().unwrap()));
        assert!(b.provides(&"wasmcloud:secrets/reveal@2.0.0".parse().unwrap()));
        assert!(!b.provides(&"wasmcloud:secrets/store@1.0.0".parse().unwrap()));
        let draft = Binding {
            version: BindingVersion::Known(Version::parse("0.2.0-draft").unwrap()),
            interfaces: ["store".to_string()].into(),
        };
        assert!(!draft.provides(&"wasi:keyvalue/store@0.2.0-draft2".parse().unwrap()));
        assert!(draft.provides(&"wasi:keyvalue/store@0.2.0-draft".parse().unwrap()));
    }

    #[test]
    fn host_version_picks_the_rule() {
        let mut h = Host::default();
        assert_eq!(EntryRule::for_host(&h), EntryRule::All);
        h.status = Some(crate::crd::HostStatus {
            version: Some("2.7.0".into()),
            ..Default::default()
        });
        assert_eq!(EntryRule::for_host(&h), EntryRule::All);
        h.status.as_mut().unwrap().version = Some("v2.8.1".into());
        assert_eq!(EntryRule::for_host(&h), EntryRule::Any);
    }
}
