//! The host's view of worlds and interface sets, written from the rules of wasmCloud v2.7.0
//! `crates/wash-runtime/src/wit.rs` (`WitInterface`, `WitWorld`). Not a copy: only the behaviour
//! the linking decision depends on.

use std::collections::BTreeSet;
use std::fmt;

use semver::Version;

/// One `namespace:package[@version]` with a set of its interfaces: a hostInterfaces entry, a
/// merged group of a component's imports or exports, or part of a plugin's world.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Iface {
    pub namespace: String,
    pub package: String,
    pub interfaces: BTreeSet<String>,
    /// Parsed with `semver::Version::parse`; an unparsable string becomes `None` (upstream
    /// `crates/wash-runtime/src/washlet/mod.rs` `From<types::v2::WitInterface>` and `wit.rs`
    /// `From<&str>`).
    pub version: Option<Version>,
    /// The `(implements ..)` label or the entry's `name`.
    pub name: Option<String>,
}

impl Iface {
    /// Parses an import or export name the way upstream's `WitInterface::from(&str)` does:
    /// `ns:pkg/iface,iface2@version`.
    pub fn parse(s: &str) -> Iface {
        let (main, version) = match s.split_once('@') {
            Some((m, v)) => (m, Some(v)),
            None => (s, None),
        };
        let (nspkg, ifaces) = match main.split_once('/') {
            Some((np, i)) => (np, Some(i)),
            None => (main, None),
        };
        let (namespace, package) = nspkg.split_once(':').unwrap_or(("", nspkg));
        Iface {
            namespace: namespace.to_string(),
            package: package.to_string(),
            interfaces: ifaces
                .map(|i| {
                    i.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            version: version.and_then(|v| Version::parse(v).ok()),
            name: None,
        }
    }

    /// Upstream `WitInterface::instance`: the merge key of a component's world items.
    pub fn instance_key(&self) -> String {
        let base = match &self.name {
            Some(n) => format!("{}:{}/{n}", self.namespace, self.package),
            None => format!("{}:{}", self.namespace, self.package),
        };
        match &self.version {
            Some(v) => format!("{base}@{v}"),
            None => base,
        }
    }

    /// Upstream `WitInterface::same_package`: same namespace and package; when both carry a
    /// version they must be equal, otherwise any version matches.
    pub fn same_package(&self, other: &Iface) -> bool {
        if self.namespace != other.namespace || self.package != other.package {
            return false;
        }
        match (&self.version, &other.version) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// Upstream `WitInterface::contains`: same package, names equal when both are set, and
    /// `self`'s interfaces a superset of `other`'s.
    pub fn contains(&self, other: &Iface) -> bool {
        if !self.same_package(other) {
            return false;
        }
        if let (Some(a), Some(b)) = (&self.name, &other.name) {
            if a != b {
                return false;
            }
        }
        self.interfaces.is_superset(&other.interfaces)
    }

    /// Upstream `WitInterface::is_incoming_http_handler`.
    pub fn is_incoming_http_handler(&self) -> bool {
        self.namespace == "wasi"
            && self.package == "http"
            && (self.interfaces.contains("incoming-handler") || self.interfaces.contains("handler"))
    }
}

impl fmt::Display for Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.package)?;
        if let Some(n) = &self.name {
            write!(f, " [{n}]")?;
        }
        if !self.interfaces.is_empty() {
            let list: Vec<&str> = self.interfaces.iter().map(String::as_str).collect();
            write!(f, "/{}", list.join(","))?;
        }
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

/// Upstream `WitWorld`: imports and exports as merged interface groups.
#[derive(Clone, Debug, Default)]
pub(crate) struct World {
    pub imports: Vec<Iface>,
    pub exports: Vec<Iface>,
}

impl World {
    /// Upstream `WitWorld::includes_bidirectional`: every interface `wanted` lists is imported
    /// or exported by a same-package item (an entry listing no interface is included by every
    /// world).
    pub fn includes_bidirectional(&self, wanted: &Iface) -> bool {
        wanted.interfaces.iter().all(|i| {
            self.imports
                .iter()
                .chain(self.exports.iter())
                .any(|item| wanted.same_package(item) && item.interfaces.contains(i))
        })
    }

    /// Adds an item, merging with an existing item of the same [`Iface::instance_key`]
    /// (upstream `WorkloadComponent::world` with `WitInterface::merge`).
    pub fn push(list: &mut Vec<Iface>, item: Iface) {
        let key = item.instance_key();
        match list.iter_mut().find(|x| x.instance_key() == key) {
            Some(x) => x.interfaces.extend(item.interfaces),
            None => list.push(item),
        }
    }
}

/// Upstream `served_within_workload` (`crates/wash-runtime/src/engine/workload.rs`): the
/// component imports every interface of the entry and each is exported by exactly one *other*
/// component of the workload.
pub(crate) fn served_within_workload(entry: &Iface, me: usize, worlds: &[(String, World)]) -> bool {
    if entry.interfaces.is_empty() {
        return false;
    }
    let my = &worlds[me].1;
    entry.interfaces.iter().all(|i| {
        let imported = my
            .imports
            .iter()
            .any(|im| entry.same_package(im) && im.interfaces.contains(i));
        if !imported {
            return false;
        }
        let exporters = worlds
            .iter()
            .enumerate()
            .filter(|(idx, (_, w))| {
                *idx != me
                    && w.exports
                        .iter()
                        .any(|ex| entry.same_package(ex) && ex.interfaces.contains(i))
            })
            .count();
        exporters == 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let a = Iface::parse("wasi:keyvalue/store,atomics@0.2.0-draft");
        assert_eq!(a.interfaces.len(), 2);
        assert_eq!(a.version, Some(Version::parse("0.2.0-draft").unwrap()));
        let unversioned = Iface::parse("wasi:keyvalue/store");
        assert!(a.same_package(&unversioned));
        let other = Iface::parse("wasi:keyvalue/store@0.2.0-draft2");
        assert!(!a.same_package(&other));
        // "0.2" is not semver: unversioned.
        assert_eq!(Iface::parse("a:b/c@0.2").version, None);
    }
}
