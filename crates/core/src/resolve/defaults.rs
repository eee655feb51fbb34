//! Safe defaults the mutating webhook applies (and `check --mutate` prints). Idempotent: a
//! defaulted spec defaults to itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::crd::{HostInterface, WorkloadSpec};
use crate::policy::Policy;
use crate::wit::{linker_versions_match, sibling_versions_match, InterfaceRef, WorldItemRef};

use super::{Code, Report, WorldState};

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
struct Demand<'w> {
    /// The interfaces each importing component imports (borrowed from the worlds: this runs
    /// on every review).
    by_component: BTreeMap<&'w str, BTreeSet<&'w str>>,
    /// The interfaces every importing component imports: the only ones an entry may be
    /// completed with, because a host up to 2.7 binds an entry only for a component that holds
    /// every interface it lists (wash-runtime 2.7.0 `engine/workload.rs` `bind_plugins`), so
    /// listing one a component lacks would unbind the entry for that component.
    common: BTreeSet<&'w str>,
}

impl<'w> Demand<'w> {
    fn add(&mut self, component: &'w str, r: &'w InterfaceRef) {
        self.by_component
            .entry(component)
            .or_default()
            .insert(r.interface.as_str());
    }

    fn finish(&mut self) {
        let mut sets = self.by_component.values();
        self.common = sets.next().cloned().unwrap_or_default();
        for set in sets {
            self.common.retain(|i| set.contains(i));
        }
    }
}

fn provided_locally(
    me: &str,
    r: &InterfaceRef,
    worlds: &BTreeMap<String, WorldState>,
    policy: &Policy,
) -> bool {
    let same = |a: &InterfaceRef| a.same_interface(r);
    policy
        .builtins
        .iter()
        .any(|b| same(b) && linker_versions_match(b.version(), r.version()))
        || worlds.iter().any(|(name, w)| {
            name != me
                && matches!(w, WorldState::Known(world)
                    if world.exports.iter().any(|e| matches!(e, WorldItemRef::Interface(x)
                        if same(x) && sibling_versions_match(x.version(), r.version()))))
        })
}

/// Applies the defaults of design.md to `spec`.
pub fn apply_defaults(
    spec: &WorkloadSpec,
    worlds: &BTreeMap<String, WorldState>,
    policy: &Policy,
) -> Defaulted {
    let pulled = pull_policy_defaults(spec);
    let mut entries = entry_defaults(&pulled.spec, worlds, policy);
    let mut notes = pulled.notes;
    notes.append(&mut entries.notes);
    Defaulted {
        spec: WorkloadSpec {
            host_interfaces: entries.host_interfaces,
            ..pulled.spec
        },
        notes,
    }
}

/// [`apply_defaults`], keeping the `hostInterfaces` defaults only when `judge` finds that the
/// spec with them resolves at least as well as without them (design.md: a default never
/// creates a failure). `judge` resolves a spec against the current inventory.
pub fn apply_defaults_checked(
    spec: &WorkloadSpec,
    worlds: &BTreeMap<String, WorldState>,
    policy: &Policy,
    judge: impl Fn(&WorkloadSpec) -> Report,
) -> Defaulted {
    let pulled = pull_policy_defaults(spec);
    let mut entries = entry_defaults(&pulled.spec, worlds, policy);
    if entries.host_interfaces == pulled.spec.host_interfaces {
        return pulled;
    }
    let defaulted = WorkloadSpec {
        host_interfaces: entries.host_interfaces,
        ..pulled.spec.clone()
    };
    let before = judge(&pulled.spec);
    let after = judge(&defaulted);
    if resolves_worse(&after, &before) {
        return pulled;
    }
    let mut notes = pulled.notes;
    notes.append(&mut entries.notes);
    Defaulted {
        spec: defaulted,
        notes,
    }
}

/// Whether `after` is a worse verdict than `before`: denied where it was admitted, more
/// violations, or runnable on fewer of the eligible hosts.
fn resolves_worse(after: &Report, before: &Report) -> bool {
    let partial = |r: &Report| r.warnings.iter().any(|w| w.code == Code::PartialPlacement);
    (before.allowed() && !after.allowed())
        || after.violations.len() > before.violations.len()
        || (after.allowed() && partial(after) && !partial(before))
}

/// `imagePullPolicy` as Kubernetes defaults it for pods.
fn pull_policy_defaults(spec: &WorkloadSpec) -> Defaulted {
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
    Defaulted { spec: out, notes }
}

/// The `hostInterfaces` a spec defaults to, and a note per default.
struct EntryDefaults {
    host_interfaces: Option<Vec<HostInterface>>,
    notes: Vec<String>,
}

/// Entries for plugins that need no configuration, and entries' interfaces completed (only
/// the entries are copied, not the spec: this runs on every review).
fn entry_defaults(
    spec: &WorkloadSpec,
    worlds: &BTreeMap<String, WorldState>,
    policy: &Policy,
) -> EntryDefaults {
    let mut host_interfaces = spec.host_interfaces.clone();
    let mut notes = Vec::new();
    // What the components need from plugins, by package (unnamed) or by label (named).
    let mut unnamed: BTreeMap<(&str, &str), Demand> = BTreeMap::new();
    // Keyed by label and package: one label may name entries of several packages.
    let mut named: BTreeMap<(&str, &str, &str), Demand> = BTreeMap::new();
    for (me, state) in worlds {
        let WorldState::Known(world) = state else {
            continue;
        };
        for import in &world.imports {
            if world.needs_nothing(import) {
                continue;
            }
            match import {
                WorldItemRef::Interface(r) => {
                    if r.package.is("wasi", "http") || provided_locally(me, r, worlds, policy) {
                        continue;
                    }
                    unnamed
                        .entry((r.package.namespace.as_str(), r.package.name.as_str()))
                        .or_default()
                        .add(me, r);
                }
                WorldItemRef::Named { name, interface } => {
                    let p = &interface.package;
                    named
                        .entry((name.as_str(), p.namespace.as_str(), p.name.as_str()))
                        .or_default()
                        .add(me, interface);
                }
                WorldItemRef::Bare(_) => {}
            }
        }
    }

    unnamed.values_mut().for_each(Demand::finish);
    named.values_mut().for_each(Demand::finish);
    let entries = host_interfaces.get_or_insert_with(Vec::new);
    let complete = |entry: &mut HostInterface, demand: &Demand, notes: &mut Vec<String>| {
        let label = match entry.name.as_deref() {
            Some(n) if !n.is_empty() => format!("{n:?}"),
            _ => format!("{}:{}", entry.namespace, entry.package),
        };
        let missing: Vec<String> = demand
            .common
            .iter()
            .filter(|i| !entry.interfaces.iter().any(|have| have == **i))
            .map(|i| i.to_string())
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "hostInterfaces entry {label}: added interfaces [{}] that the components import",
                missing.join(", ")
            ));
            entry.interfaces.extend(missing);
        }
        // The entry's version is never defaulted: the host binds a versioned entry only to a
        // plugin advertising exactly that version (wash-runtime 2.7.0 `wit.rs` `same_package`),
        // while the component's import links to the plugin's version semver-compatibly, so
        // pinning the import's version can only turn a working workload into a failing one.
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
                namespace: ns.to_string(),
                package: pkg.to_string(),
                interfaces: demand.common.iter().map(|i| i.to_string()).collect(),
                ..Default::default()
            };
            notes.push(format!(
                "hostInterfaces entry {ns}:{pkg}: added for the imported [{}]",
                entry.interfaces.join(", "),
            ));
            entries.push(entry);
        }
    }
    for ((label, ns, pkg), demand) in &named {
        if let Some(entry) = entries
            .iter_mut()
            .find(|e| e.name.as_deref() == Some(*label) && e.namespace == *ns && e.package == *pkg)
        {
            complete(entry, demand, &mut notes);
        }
    }
    if host_interfaces.as_ref().is_some_and(Vec::is_empty) && spec.host_interfaces.is_none() {
        host_interfaces = None;
    }
    EntryDefaults {
        host_interfaces,
        notes,
    }
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
