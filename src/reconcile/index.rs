//! Which tracked objects an inventory change can affect.
//!
//! A host change matters to a workload only if the host is (or was) a candidate for it: its
//! `hostId` matches, or its labels satisfy the workload's `hostSelector` (workloads with
//! neither consider every host). Among those, a change confined to the host's plugin imports
//! matters only to workloads that declare one of the changed packages. Everything else a
//! heartbeat carries (CPU, memory, counts, `lastSeen`) never changes a verdict and is ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::crd::{Host, WorkloadSpec};

/// What a workload's verdict depends on in the inventory, read from its defaulted spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// `spec.hostId`, when set (it bypasses the selector).
    pub host_id: Option<String>,
    /// `spec.hostSelector`.
    pub selector: BTreeMap<String, String>,
    /// `namespace:package` of every `hostInterfaces` entry.
    pub packages: BTreeSet<String>,
}

impl Dependencies {
    /// The dependencies of a (defaulted) Workload spec.
    pub fn of(spec: &WorkloadSpec) -> Self {
        Self {
            host_id: spec.host_id.clone().filter(|h| !h.is_empty()),
            selector: spec.host_selector.clone().unwrap_or_default(),
            packages: spec
                .host_interfaces
                .iter()
                .flatten()
                .map(|e| format!("{}:{}", e.namespace, e.package))
                .collect(),
        }
    }

    /// Whether a host with `host_id` and `labels` could be eligible (readiness aside).
    fn targets(&self, host_id: &str, labels: &BTreeMap<String, String>) -> bool {
        match &self.host_id {
            Some(id) => id == host_id,
            None => self.selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        }
    }
}

/// The facts about one host that can change a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// `hostId`.
    pub host_id: String,
    /// Ready condition is True.
    pub ready: bool,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `environment`.
    pub environment: Option<String>,
    /// A digest of the plugin imports of each `namespace:package`.
    pub imports: BTreeMap<String, u64>,
}

impl HostFacts {
    /// The facts of `host`.
    pub fn of(host: &Host) -> Self {
        let mut imports: BTreeMap<String, u64> = BTreeMap::new();
        for i in host.status.iter().flat_map(|s| s.imports.iter().flatten()) {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&i.version, &i.interfaces, &i.name).hash(&mut h);
            // Several entries of one package (versions, names) fold into one digest.
            let slot = imports
                .entry(format!("{}:{}", i.namespace, i.package))
                .or_default();
            *slot = slot.wrapping_add(h.finish());
        }
        Self {
            host_id: host.host_id.clone(),
            ready: host.ready_status() == Some("True"),
            labels: host.labels(),
            environment: host.environment.clone(),
            imports,
        }
    }
}

/// How a host changed between two inventory snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostChange {
    /// Appeared, disappeared, or changed readiness, labels, hostId or environment: every
    /// workload targeting it (before or after) is affected.
    Placement {
        /// Facts before (None: new host).
        before: Option<HostFacts>,
        /// Facts after (None: removed).
        after: Option<HostFacts>,
    },
    /// Only the plugin imports of these packages changed.
    Imports {
        /// The facts (placement unchanged).
        facts: HostFacts,
        /// `namespace:package` whose imports changed.
        packages: BTreeSet<String>,
    },
}

/// Remembers each host's facts and reports what changed in a new snapshot.
#[derive(Debug, Default)]
pub struct HostTracker {
    facts: HashMap<String, HostFacts>,
}

impl HostTracker {
    /// Number of hosts tracked.
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    /// Whether no host is tracked.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
    }

    /// Compares `hosts` with the previous call's and returns the verdict-relevant changes.
    pub fn update<'h>(&mut self, hosts: impl IntoIterator<Item = &'h Host>) -> Vec<HostChange> {
        let mut changes = Vec::new();
        let mut seen: HashSet<&str> = HashSet::with_capacity(self.facts.len());
        for host in hosts {
            let name = host.metadata.name.as_deref().unwrap_or("");
            seen.insert(name);
            let facts = HostFacts::of(host);
            match self.facts.get(name) {
                Some(old) if *old == facts => {}
                Some(old)
                    if old.ready == facts.ready
                        && old.labels == facts.labels
                        && old.host_id == facts.host_id
                        && old.environment == facts.environment =>
                {
                    let packages = old
                        .imports
                        .iter()
                        .filter(|(p, d)| facts.imports.get(*p) != Some(d))
                        .map(|(p, _)| p.clone())
                        .chain(
                            facts
                                .imports
                                .keys()
                                .filter(|p| !old.imports.contains_key(*p))
                                .cloned(),
                        )
                        .collect();
                    changes.push(HostChange::Imports {
                        facts: facts.clone(),
                        packages,
                    });
                    self.facts.insert(name.to_string(), facts);
                }
                old => {
                    changes.push(HostChange::Placement {
                        before: old.cloned(),
                        after: Some(facts.clone()),
                    });
                    self.facts.insert(name.to_string(), facts);
                }
            }
        }
        let gone: Vec<String> = self
            .facts
            .keys()
            .filter(|n| !seen.contains(n.as_str()))
            .cloned()
            .collect();
        for name in gone {
            if let Some(before) = self.facts.remove(&name) {
                changes.push(HostChange::Placement {
                    before: Some(before),
                    after: None,
                });
            }
        }
        changes
    }
}

/// Tracked objects indexed by what they target, so that a host change finds its candidates
/// without scanning every object.
#[derive(Debug)]
pub struct DependencyIndex<K> {
    deps: HashMap<K, Dependencies>,
    by_host_id: HashMap<String, HashSet<K>>,
    /// Each selector-bearing object is filed under one of its `key=value` pairs: a host can
    /// only satisfy the selector if it carries that pair.
    by_label: HashMap<(String, String), HashSet<K>>,
    /// Objects with neither hostId nor selector: every host is a candidate.
    anywhere: HashSet<K>,
}

impl<K> Default for DependencyIndex<K> {
    fn default() -> Self {
        Self {
            deps: HashMap::new(),
            by_host_id: HashMap::new(),
            by_label: HashMap::new(),
            anywhere: HashSet::new(),
        }
    }
}

impl<K: Clone + Eq + Hash> DependencyIndex<K> {
    /// Number of indexed objects.
    pub fn len(&self) -> usize {
        self.deps.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.deps.is_empty()
    }

    /// Indexes (or re-indexes) `key`.
    pub fn insert(&mut self, key: K, deps: Dependencies) {
        self.remove(&key);
        match (&deps.host_id, deps.selector.iter().next()) {
            (Some(id), _) => {
                self.by_host_id
                    .entry(id.clone())
                    .or_default()
                    .insert(key.clone());
            }
            (None, Some((k, v))) => {
                self.by_label
                    .entry((k.clone(), v.clone()))
                    .or_default()
                    .insert(key.clone());
            }
            (None, None) => {
                self.anywhere.insert(key.clone());
            }
        }
        self.deps.insert(key, deps);
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &K) {
        let Some(deps) = self.deps.remove(key) else {
            return;
        };
        match (&deps.host_id, deps.selector.iter().next()) {
            (Some(id), _) => {
                if let Some(set) = self.by_host_id.get_mut(id) {
                    set.remove(key);
                    if set.is_empty() {
                        self.by_host_id.remove(id);
                    }
                }
            }
            (None, Some((k, v))) => {
                let pair = (k.clone(), v.clone());
                if let Some(set) = self.by_label.get_mut(&pair) {
                    set.remove(key);
                    if set.is_empty() {
                        self.by_label.remove(&pair);
                    }
                }
            }
            (None, None) => {
                self.anywhere.remove(key);
            }
        }
    }

    /// Objects whose targeting admits a host with these facts.
    fn targeting(&self, facts: &HostFacts, out: &mut HashSet<K>) {
        let candidates = self
            .anywhere
            .iter()
            .chain(self.by_host_id.get(&facts.host_id).into_iter().flatten())
            .chain(
                facts
                    .labels
                    .iter()
                    .filter_map(|(k, v)| self.by_label.get(&(k.clone(), v.clone())))
                    .flatten(),
            );
        for key in candidates {
            if self
                .deps
                .get(key)
                .is_some_and(|d| d.targets(&facts.host_id, &facts.labels))
            {
                out.insert(key.clone());
            }
        }
    }

    /// The objects whose verdict `changes` can affect.
    pub fn affected(&self, changes: &[HostChange]) -> HashSet<K> {
        let mut out = HashSet::new();
        for change in changes {
            match change {
                HostChange::Placement { before, after } => {
                    for facts in before.iter().chain(after.iter()) {
                        self.targeting(facts, &mut out);
                    }
                }
                HostChange::Imports { facts, packages } => {
                    let mut targeted = HashSet::new();
                    self.targeting(facts, &mut targeted);
                    out.extend(targeted.into_iter().filter(|k| {
                        self.deps
                            .get(k)
                            .is_some_and(|d| !d.packages.is_disjoint(packages))
                    }));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::HostWitInterface;

    fn host(name: &str, group: &str, ready: bool, plugins: &[(&str, &str)]) -> Host {
        let imports = plugins
            .iter()
            .map(|(pkg, v)| {
                let (ns, p) = pkg.split_once(':').unwrap_or(("wasi", pkg));
                HostWitInterface {
                    namespace: ns.into(),
                    package: p.into(),
                    version: Some((*v).into()),
                    interfaces: vec!["store".into()],
                    name: None,
                }
            })
            .collect();
        crate::engine::testing::host(name, group, ready, imports)
    }

    fn deps(group: Option<&str>, host_id: Option<&str>, packages: &[&str]) -> Dependencies {
        Dependencies {
            host_id: host_id.map(String::from),
            selector: group
                .map(|g| BTreeMap::from([("hostgroup".to_string(), g.to_string())]))
                .unwrap_or_default(),
            packages: packages.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn index() -> DependencyIndex<&'static str> {
        let mut ix = DependencyIndex::default();
        ix.insert("edge-kv", deps(Some("edge"), None, &["wasi:keyvalue"]));
        ix.insert("edge-pg", deps(Some("edge"), None, &["wasmcloud:postgres"]));
        ix.insert("core-kv", deps(Some("core"), None, &["wasi:keyvalue"]));
        ix.insert("pinned", deps(Some("edge"), Some("id-a"), &[]));
        ix.insert("anywhere", deps(None, None, &["wasi:keyvalue"]));
        ix
    }

    fn sorted(set: HashSet<&'static str>) -> Vec<&'static str> {
        let mut v: Vec<_> = set.into_iter().collect();
        v.sort();
        v
    }

    #[test]
    fn heartbeat_noise_changes_nothing() {
        let mut t = HostTracker::default();
        let mut a = host("a", "edge", true, &[("wasi:keyvalue", "0.2.0")]);
        assert_eq!(t.update(std::slice::from_ref(&a)).len(), 1);
        a.status.as_mut().unwrap().last_seen = Some("later".into());
        a.status.as_mut().unwrap().system_memory_free = Some(1);
        assert!(t.update(std::slice::from_ref(&a)).is_empty());
    }

    #[test]
    fn readiness_change_affects_everything_targeting_the_host() {
        let ix = index();
        let mut t = HostTracker::default();
        t.update(&[host("a", "edge", true, &[("wasi:keyvalue", "0.2.0")])]);
        let changes = t.update(&[host("a", "edge", false, &[("wasi:keyvalue", "0.2.0")])]);
        assert_eq!(
            sorted(ix.affected(&changes)),
            vec!["anywhere", "edge-kv", "edge-pg", "pinned"]
        );
    }

    #[test]
    fn import_change_affects_only_users_of_the_package() {
        let ix = index();
        let mut t = HostTracker::default();
        t.update(&[host("a", "edge", true, &[("wasi:keyvalue", "0.2.0")])]);
        let changes = t.update(&[host(
            "a",
            "edge",
            true,
            &[("wasi:keyvalue", "0.2.0"), ("wasmcloud:postgres", "0.2.0")],
        )]);
        assert_eq!(
            changes,
            vec![HostChange::Imports {
                facts: HostFacts::of(&host(
                    "a",
                    "edge",
                    true,
                    &[("wasi:keyvalue", "0.2.0"), ("wasmcloud:postgres", "0.2.0")]
                )),
                packages: BTreeSet::from(["wasmcloud:postgres".to_string()]),
            }]
        );
        assert_eq!(sorted(ix.affected(&changes)), vec!["edge-pg"]);
    }

    #[test]
    fn relabelled_and_removed_hosts_affect_old_and_new_targets() {
        let ix = index();
        let mut t = HostTracker::default();
        t.update(&[host("b", "edge", true, &[])]);
        let changes = t.update(&[host("b", "core", true, &[])]);
        assert_eq!(
            sorted(ix.affected(&changes)),
            vec!["anywhere", "core-kv", "edge-kv", "edge-pg"]
        );
        let changes = t.update(&[]);
        assert!(matches!(
            changes.as_slice(),
            [HostChange::Placement { after: None, .. }]
        ));
        assert_eq!(sorted(ix.affected(&changes)), vec!["anywhere", "core-kv"]);
        assert!(t.is_empty());
    }

    #[test]
    fn removal_from_the_index() {
        let mut ix = index();
        ix.remove(&"edge-kv");
        ix.remove(&"anywhere");
        ix.remove(&"missing");
        let mut t = HostTracker::default();
        let changes = t.update(&[host("c", "edge", true, &[])]);
        assert_eq!(sorted(ix.affected(&changes)), vec!["edge-pg"]);
        assert_eq!(ix.len(), 3);
    }
}
