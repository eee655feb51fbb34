//! Parsed WIT references: `ns:pkg@version`, `ns:pkg/iface@version`, and named world items.

use std::fmt;
use std::str::FromStr;

use semver::Version;

use super::version::canonical_version;

/// A WIT package: `namespace:name@version`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageRef {
    /// e.g. `wasi`.
    pub namespace: String,
    /// e.g. `keyvalue`.
    pub name: String,
    /// e.g. `0.2.0-draft`; `None` when unversioned.
    pub version: Option<Version>,
}

impl PackageRef {
    /// `namespace:name`, without the version.
    pub fn unversioned(&self) -> String {
        format!("{}:{}", self.namespace, self.name)
    }

    /// Whether `other` names the same package, whatever the versions (no allocation).
    pub fn same_package(&self, other: &PackageRef) -> bool {
        self.namespace == other.namespace && self.name == other.name
    }

    /// Whether this is `namespace:name`, any version.
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }
}

impl fmt::Display for PackageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.namespace, self.name)?;
        if let Some(v) = &self.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

/// An interface of a package: `namespace:name/interface@version`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterfaceRef {
    /// The package.
    pub package: PackageRef,
    /// The interface name within the package.
    pub interface: String,
}

impl InterfaceRef {
    /// Builds a reference from parts.
    pub fn new(namespace: &str, package: &str, interface: &str, version: Option<Version>) -> Self {
        Self {
            package: PackageRef {
                namespace: namespace.to_string(),
                name: package.to_string(),
                version,
            },
            interface: interface.to_string(),
        }
    }

    /// The key the linker uses: `ns:pkg/iface@<canonical version>`.
    pub fn linker_key(&self) -> String {
        match &self.package.version {
            Some(v) => format!(
                "{}/{}@{}",
                self.package.unversioned(),
                self.interface,
                canonical_version(v)
            ),
            None => format!("{}/{}", self.package.unversioned(), self.interface),
        }
    }

    /// The version, if any.
    pub fn version(&self) -> Option<&Version> {
        self.package.version.as_ref()
    }

    /// Whether `other` names the same interface of the same package, whatever the versions.
    /// The interface is compared first: names that differ usually differ in length, which
    /// settles them without comparing bytes, while most namespaces are `wasi` (the resolver
    /// compares every import with every built-in and sibling export).
    pub fn same_interface(&self, other: &InterfaceRef) -> bool {
        self.interface == other.interface
            && self.package.name == other.package.name
            && self.package.namespace == other.package.namespace
    }
}

impl fmt::Display for InterfaceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.package.namespace, self.package.name, self.interface
        )?;
        if let Some(v) = &self.package.version {
            write!(f, "@{v}")?;
        }
        Ok(())
    }
}

/// Why a WIT reference did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefParseError {
    /// No `namespace:` prefix.
    #[error(
        "{0:?} is not a WIT interface reference: expected namespace:package/interface[@version]"
    )]
    Shape(String),
    /// A name part is not a kebab-case identifier.
    #[error("{0:?} is not a valid WIT identifier in {1:?}")]
    Identifier(String, String),
    /// The version is not semver.
    #[error("invalid version {0:?} in {1:?}: {2}")]
    Version(String, String, String),
}

fn is_wit_id(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric())
                && part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        })
}

impl FromStr for InterfaceRef {
    type Err = RefParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (path, version) = match s.split_once('@') {
            Some((p, v)) => {
                let version = Version::parse(v)
                    .map_err(|e| RefParseError::Version(v.into(), s.into(), e.to_string()))?;
                (p, Some(version))
            }
            None => (s, None),
        };
        let (ns, rest) = path
            .split_once(':')
            .ok_or_else(|| RefParseError::Shape(s.into()))?;
        let (pkg, iface) = rest
            .split_once('/')
            .ok_or_else(|| RefParseError::Shape(s.into()))?;
        for part in [ns, pkg, iface] {
            if !is_wit_id(part) {
                return Err(RefParseError::Identifier(part.into(), s.into()));
            }
        }
        Ok(InterfaceRef::new(ns, pkg, iface, version))
    }
}

/// One import or export of a component world.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorldItemRef {
    /// A package interface, imported or exported under its own name.
    Interface(InterfaceRef),
    /// A package interface imported or exported under a label (`import orders-db: wasmcloud:postgres/query;`),
    /// which routes to the `hostInterfaces` entry of that name.
    Named {
        /// The label.
        name: String,
        /// The interface it implements.
        interface: InterfaceRef,
    },
    /// A bare function or inline interface (`import log: func(...)`); only a sibling exporting
    /// the same name could satisfy it.
    Bare(String),
}

impl WorldItemRef {
    /// The package interface, if this item is one.
    pub fn interface(&self) -> Option<&InterfaceRef> {
        match self {
            WorldItemRef::Interface(i) | WorldItemRef::Named { interface: i, .. } => Some(i),
            WorldItemRef::Bare(_) => None,
        }
    }

    /// The routing label of a named item.
    pub fn label(&self) -> Option<&str> {
        match self {
            WorldItemRef::Named { name, .. } => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for WorldItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorldItemRef::Interface(i) => write!(f, "{i}"),
            WorldItemRef::Named { name, interface } => write!(f, "{name}: {interface}"),
            WorldItemRef::Bare(name) => write!(f, "{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_reference() {
        let r: InterfaceRef = "wasmcloud:postgres/query@0.2.0".parse().unwrap();
        assert_eq!(r.package.namespace, "wasmcloud");
        assert_eq!(r.package.name, "postgres");
        assert_eq!(r.interface, "query");
        assert_eq!(r.version().unwrap().to_string(), "0.2.0");
        assert_eq!(r.to_string(), "wasmcloud:postgres/query@0.2.0");
        assert_eq!(r.linker_key(), "wasmcloud:postgres/query@0.2");
    }

    #[test]
    fn parses_unversioned_and_prerelease() {
        let r: InterfaceRef = "wasi:keyvalue/store".parse().unwrap();
        assert_eq!(r.version(), None);
        let r: InterfaceRef = "wasi:config/store@0.2.0-rc.1".parse().unwrap();
        assert_eq!(r.linker_key(), "wasi:config/store@0.2.0-rc.1");
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            "keyvalue/store".parse::<InterfaceRef>(),
            Err(RefParseError::Shape(_))
        ));
        assert!(matches!(
            "wasi:keyvalue".parse::<InterfaceRef>(),
            Err(RefParseError::Shape(_))
        ));
        assert!(matches!(
            "wasi:Key_value/store".parse::<InterfaceRef>(),
            Err(RefParseError::Identifier(..))
        ));
        assert!(matches!(
            "wasi:keyvalue/store@0.2".parse::<InterfaceRef>(),
            Err(RefParseError::Version(..))
        ));
    }
}
