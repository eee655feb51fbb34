//! Safe defaults the mutating webhook applies (and `check --mutate` prints). Idempotent: a
//! defaulted spec defaults to itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::crd::{HostInterface, WorkloadSpec};
use crate::policy::Policy;
use crate::wit::{linker_versions_match, InterfaceRef, WorldItemRef};

use super::WorldState;

/// A defaulted spec and a note per default applied (returned to the user as warnings).
#[derive(Clone, Debug, PartialEq)]
pub struct Defaulted {
    /// The spec with defaults applied.
    pub spec: WorkloadSpec,
    /// One line per default.
    pub notes: Vec<String>,
}

/// Kubernetes' pod rule: `Always` for `:latest` or an untagged image, `IfNotPresent` otherwise.
pub fn image_pull_policy_default(image: &str) -> &'static str {
    if image.starts_with("artifact://") || image.contains('@') {
        return "IfNotPresent";
    }
    // The tag is after the last ':' that follows the last '/' (a registry port is not a tag).
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// What the components import from one routing target (an unnamed package or a named entry).
#[derive(Default)]
struct Demand {
    interfaces: BTreeSet<String>,
    versions: BTreeSet<semver::Version>,
    unversioned: bool,
}

impl Demand {
    fn add(&mut self, r: &InterfaceRef) {
        self.interfaces.insert(r.interface.clone());
        match r.version() {
            Some(v) => {
                self.versions.insert(v.clone());
            }
            None => self.unversioned = true,
        }
    }

    /// The one version every import agrees on, if there is one.
    fn single_version(&self) -> Option<String> {
        match (self.versions.len(), self.unversioned) {
            (1, false) => self.versions.iter().next().map(ToString::to_string),
            _ => None,
        }
    }
}

fn provided_locally(
    me: &str,
    r: &InterfaceRef,
    worlds: &BTreeMap<String, WorldState>,
    policy: &Policy,
) -> bool {
    let same = |a: &InterfaceRef| {
        a.package.same_package(&r.package)
            && a.interface == r.interface
            && linker_versions_match(a.version(), r.version())
    };
    policy.builtins.iter().any(same)
        || worlds.iter().any(|(name, w)| {
            name != me
                && matches!(w, WorldState::Known(world)
                    if world.exports.iter().any(|e| matches!(e, WorldItemRef::Interface(x) if same(x))))
        })
}

/// Applies the defaults of design.md to `spec`.
pub fn apply_defaults(
    spec: &WorkloadSpec,
    worlds: &BTreeMap<String, WorldState>,
    policy: &Policy,
) -> Defaulted {
    let mut out = spec.clone();
    let mut notes = Vec::new();

    for c in out.components.iter_mut().flatten() {
        if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
            let p = image_pull_policy_default(&c.image);
            notes.push(format!(
                "component {:?}: imagePullPolicy defaulted to {p}",
                c.name
            ));
            c.image_pull_policy = Some(p.to_string());
        }
    }
    if let Some(s) = out.service.as_mut() {
        if s.image_pull_policy.as_deref().is_none_or(str::is_empty) {
            let p = image_pull_policy_default(&s.image);
            notes.push(format!("service: imagePullPolicy defaulted to {p}"));
            s.image_pull_policy = Some(p.to_string());
        }
    }

    // What the components need from plugins, by package (unnamed) or by label (named).
    let mut unnamed: BTreeMap<(String, String), Demand> = BTreeMap::new();
    // Keyed by label and package: one label may name entries of several packages.
    let mut named: BTreeMap<(String, String, String), Demand> = BTreeMap::new();
    for (me, state) in worlds {
        let WorldState::Known(world) = state else {
            continue;
        };
        for import in &world.imports {
            match import {
                WorldItemRef::Interface(r) => {
                    if r.package.is("wasi", "http") || provided_locally(me, r, worlds, policy) {
                        continue;
                    }
                    unnamed
                        .entry((r.package.namespace.clone(), r.package.name.clone()))
                        .or_default()
                        .add(r);
                }
                WorldItemRef::Named { name, interface } => {
                    let p = &interface.package;
                    named
                        .entry((name.clone(), p.namespace.clone(), p.name.clone()))
                        .or_default()
                        .add(interface);
                }
                WorldItemRef::Bare(_) => {}
            }
        }
    }

    let entries = out.host_interfaces.get_or_insert_with(Vec::new);
    let complete = |entry: &mut HostInterface, demand: &Demand, notes: &mut Vec<String>| {
        let label = match entry.name.as_deref() {
            Some(n) if !n.is_empty() => format!("{n:?}"),
            _ => format!("{}:{}", entry.namespace, entry.package),
        };
        let missing: Vec<String> = demand
            .interfaces
            .iter()
            .filter(|i| !entry.interfaces.contains(i))
            .cloned()
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "hostInterfaces entry {label}: added interfaces [{}] that the components import",
                missing.join(", ")
            ));
            entry.interfaces.extend(missing);
        }
        if entry.version.as_deref().is_none_or(str::is_empty) {
            if let Some(v) = demand.single_version() {
                notes.push(format!(
                    "hostInterfaces entry {label}: version defaulted to {v}, the version the components import"
                ));
                entry.version = Some(v);
            }
        }
    };

    for ((ns, pkg), demand) in &unnamed {
        let is_unnamed = |e: &HostInterface| {
            &e.namespace == ns && &e.package == pkg && e.name.as_deref().is_none_or(str::is_empty)
        };
        if let Some(entry) = entries.iter_mut().find(|e| is_unnamed(e)) {
            complete(entry, demand, &mut notes);
        } else if policy.auto_declares(ns, pkg)
            && !entries
                .iter()
                .any(|e| &e.namespace == ns && &e.package == pkg)
        {
            let entry = HostInterface {
                namespace: ns.clone(),
                package: pkg.clone(),
                interfaces: demand.interfaces.iter().cloned().collect(),
                version: demand.single_version(),
                ..Default::default()
            };
            notes.push(format!(
                "hostInterfaces entry {ns}:{pkg}: added for the imported [{}]{}",
                entry.interfaces.join(", "),
                entry
                    .version
                    .as_deref()
                    .map(|v| format!(" at {v}"))
                    .unwrap_or_default()
            ));
            entries.push(entry);
        }
    }
    for ((label, ns, pkg), demand) in &named {
        if let Some(entry) = entries.iter_mut().find(|e| {
            e.name.as_deref() == Some(label.as_str()) && &e.namespace == ns && &e.package == pkg
        }) {
            complete(entry, demand, &mut notes);
        }
    }
    if out.host_interfaces.as_ref().is_some_and(Vec::is_empty) && spec.host_interfaces.is_none() {
        out.host_interfaces = None;
    }
    Defaulted { spec: out, notes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_like_kubernetes() {
        assert_eq!(
            image_pull_policy_default("ghcr.io/a/b:1.0.0"),
            "IfNotPresent"
        );
        assert_eq!(image_pull_policy_default("ghcr.io/a/b:latest"), "Always");
        assert_eq!(image_pull_policy_default("ghcr.io/a/b"), "Always");
        assert_eq!(image_pull_policy_default("localhost:5000/a/b"), "Always");
        assert_eq!(
            image_pull_policy_default("localhost:5000/a/b:2"),
            "IfNotPresent"
        );
        assert_eq!(
            image_pull_policy_default("ghcr.io/a/b@sha256:abcd"),
            "IfNotPresent"
        );
        assert_eq!(image_pull_policy_default("artifact://api"), "IfNotPresent");
    }
}
