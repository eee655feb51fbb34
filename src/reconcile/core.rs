//! The reconciler's state machine, free of I/O: tracked objects (with their prepared worlds),
//! the dependency index, the host tracker, and the resolution store it writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use crate::crd::{WASMCLOUD_GROUP, WASMCLOUD_VERSION};
use crate::engine::{AdmittedObject, Engine, Prepared};
use crate::inventory::Snapshot;
use crate::resolve::DeploymentContext;

use super::index::{Dependencies, DependencyIndex, HostTracker};
use crate::crd::resolution::{resolution_name, ResolutionStatus, TargetRef, WorkloadResolution};
use crate::store::ResolutionStore;

/// The kinds the reconciler watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetKind {
    /// `Workload`.
    Workload,
    /// `WorkloadReplicaSet`.
    ReplicaSet,
    /// `WorkloadDeployment`.
    Deployment,
}

impl TargetKind {
    /// Every watched kind.
    pub const ALL: [TargetKind; 3] = [Self::Workload, Self::ReplicaSet, Self::Deployment];

    /// The Kubernetes kind.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Workload => "Workload",
            Self::ReplicaSet => "WorkloadReplicaSet",
            Self::Deployment => "WorkloadDeployment",
        }
    }

    /// The resource (plural).
    pub fn plural(self) -> &'static str {
        match self {
            Self::Workload => "workloads",
            Self::ReplicaSet => "workloadreplicasets",
            Self::Deployment => "workloaddeployments",
        }
    }
}

/// Identifies a tracked object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Its kind.
    pub kind: TargetKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// A verdict worth telling someone about.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The object.
    pub key: ObjectKey,
    /// Its uid (for Event references).
    pub uid: String,
    /// Whether it resolved before (`None`: first resolution since wasmgate started).
    pub was_resolved: Option<bool>,
    /// The new status.
    pub status: ResolutionStatus,
}

impl Outcome {
    /// Whether the verdict changed in a way that deserves an Event: it flipped, or the object
    /// is seen unresolved for the first time.
    pub fn verdict_changed(&self) -> bool {
        match self.was_resolved {
            Some(before) => before != self.status.resolved,
            None => !self.status.resolved,
        }
    }
}

struct Tracked {
    object: Option<Arc<AdmittedObject>>,
    prepared: Option<Arc<Prepared>>,
    uid: String,
    labels: BTreeMap<String, String>,
    generation: Option<i64>,
    /// Digest of the spec and annotations the worlds were prepared from.
    spec_digest: u64,
    status: Option<ResolutionStatus>,
}

/// Objects, what they depend on, and their current verdicts.
pub struct ReconcileCore {
    admission: Arc<Engine>,
    store: Arc<ResolutionStore>,
    objects: HashMap<ObjectKey, Tracked>,
    index: DependencyIndex<ObjectKey>,
    hosts: HostTracker,
    hosts_version: Option<u64>,
    current: Arc<Snapshot>,
    /// Prepared inputs, shared by the objects whose inputs are equal (the workloads a replica set
    /// stamps out), by spec digest; see [`PassVerdicts`].
    shared: HashMap<u64, Vec<Weak<Prepared>>>,
}

/// Metadata of an object, as the watcher saw it.
#[derive(Clone, Debug, Default)]
pub struct ObjectMeta {
    /// uid.
    pub uid: String,
    /// Labels (copied to the resolution, so label selectors work on it).
    pub labels: BTreeMap<String, String>,
    /// metadata.generation.
    pub generation: Option<i64>,
    /// A digest of what the worlds depend on (spec and annotations).
    pub spec_digest: u64,
}

impl ReconcileCore {
    /// A core writing to `store`, resolving with `admission`'s engine and policy.
    pub fn new(admission: Arc<Engine>, store: Arc<ResolutionStore>) -> Self {
        Self {
            admission,
            store,
            objects: HashMap::new(),
            index: DependencyIndex::default(),
            hosts: HostTracker::default(),
            hosts_version: None,
            current: Arc::new(Snapshot::default()),
            shared: HashMap::new(),
        }
    }

    /// The admission engine (its `prepare` learns worlds).
    pub fn admission(&self) -> &Arc<Engine> {
        &self.admission
    }

    /// Number of tracked objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether nothing is tracked.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Whether `key` needs its worlds prepared again for an object with this digest.
    pub fn needs_prepare(&self, key: &ObjectKey, spec_digest: u64) -> bool {
        self.objects
            .get(key)
            .is_none_or(|t| t.prepared.is_none() || t.spec_digest != spec_digest)
    }

    /// Keys of every tracked object of `kind`.
    pub fn keys_of(&self, kind: TargetKind) -> Vec<ObjectKey> {
        self.objects
            .keys()
            .filter(|k| k.kind == kind)
            .cloned()
            .collect()
    }

    /// Counts of tracked objects that do not resolve, by kind.
    pub fn unresolved_counts(&self) -> BTreeMap<TargetKind, usize> {
        let mut out: BTreeMap<TargetKind, usize> =
            TargetKind::ALL.iter().map(|k| (*k, 0)).collect();
        for (k, t) in &self.objects {
            if t.status.as_ref().is_some_and(|s| !s.resolved) {
                *out.entry(k.kind).or_default() += 1;
            }
        }
        out
    }

    /// Adopts a new inventory (when its version moved) and re-resolves the objects the change
    /// affects. Returns the outcomes whose status changed.
    pub fn inventory_changed(&mut self, snapshot: Arc<Snapshot>, now: SystemTime) -> Vec<Outcome> {
        if self.hosts_version == Some(snapshot.resource_version) {
            return Vec::new();
        }
        self.hosts_version = Some(snapshot.resource_version);
        let changes = self.hosts.update(&snapshot.hosts);
        self.current = snapshot;
        if changes.is_empty() {
            return Vec::new();
        }
        let affected = self.index.affected(&changes);
        let mut verdicts = PassVerdicts::default();
        let mut out = Vec::new();
        for key in affected {
            if let Some(o) = self.resolve_one(&key, now, Some(&mut verdicts)) {
                out.push(o);
            }
        }
        out
    }

    /// Tracks (or updates) an object with its prepared worlds and resolves it.
    pub fn upsert(
        &mut self,
        key: ObjectKey,
        object: AdmittedObject,
        prepared: Prepared,
        meta: ObjectMeta,
        now: SystemTime,
    ) -> Option<Outcome> {
        self.index
            .insert(key.clone(), Dependencies::of(&prepared.defaulted.spec));
        let status = self.objects.get(&key).and_then(|t| t.status.clone());
        let prepared = self.share(meta.spec_digest, prepared);
        let replaced = self.objects.insert(
            key.clone(),
            Tracked {
                object: Some(Arc::new(object)),
                prepared: Some(prepared),
                uid: meta.uid,
                labels: meta.labels,
                generation: meta.generation,
                spec_digest: meta.spec_digest,
                status,
            },
        );
        if let Some(old) = replaced {
            self.unshare(old);
        }
        self.resolve_one(&key, now, None)
    }

    /// Updates what does not need the worlds again (labels, uid, generation).
    pub fn touch(&mut self, key: &ObjectKey, meta: ObjectMeta, now: SystemTime) -> Option<Outcome> {
        let t = self.objects.get_mut(key)?;
        if t.labels == meta.labels && t.uid == meta.uid && t.generation == meta.generation {
            return None;
        }
        t.labels = meta.labels;
        t.uid = meta.uid;
        t.generation = meta.generation;
        self.resolve_one(key, now, None)
    }

    /// Tracks an object that does not decode.
    pub fn undecodable(
        &mut self,
        key: ObjectKey,
        message: String,
        meta: ObjectMeta,
        now: SystemTime,
    ) -> Option<Outcome> {
        self.index.remove(&key);
        let previous = self.objects.remove(&key).and_then(|t| self.unshare(t));
        let status = ResolutionStatus::undecodable(message);
        self.objects.insert(
            key.clone(),
            Tracked {
                object: None,
                prepared: None,
                uid: meta.uid,
                labels: meta.labels,
                generation: meta.generation,
                spec_digest: meta.spec_digest,
                status: previous,
            },
        );
        self.record(&key, status, now)
    }

    /// Forgets an object (deleted).
    pub fn remove(&mut self, key: &ObjectKey) {
        self.index.remove(key);
        if let Some(gone) = self.objects.remove(key) {
            self.unshare(gone);
            self.store
                .remove(&key.namespace, &resolution_name(key.kind.kind(), &key.name));
        }
    }

    /// The tracked copy of `prepared`: the one another object already has when their inputs
    /// are equal (compared in full; the digest only buckets them), else a new one.
    fn share(&mut self, digest: u64, prepared: Prepared) -> Arc<Prepared> {
        let bucket = self.shared.entry(digest).or_default();
        bucket.retain(|p| p.strong_count() > 0);
        let equal = bucket
            .iter()
            .filter_map(Weak::upgrade)
            .find(|p| p.defaulted.spec == prepared.defaulted.spec && p.worlds == prepared.worlds);
        equal.unwrap_or_else(|| {
            let new = Arc::new(prepared);
            bucket.push(Arc::downgrade(&new));
            new
        })
    }

    /// Drops an untracked object's share of its prepared inputs; returns its last status.
    fn unshare(&mut self, gone: Tracked) -> Option<ResolutionStatus> {
        let digest = gone.spec_digest;
        drop(gone.prepared);
        if let Some(bucket) = self.shared.get_mut(&digest) {
            bucket.retain(|p| p.strong_count() > 0);
            if bucket.is_empty() {
                self.shared.remove(&digest);
            }
        }
        gone.status
    }

    /// Resolves one object against the current inventory and records its status; `verdicts`
    /// holds what this pass already resolved, reused for an object with the same inputs.
    fn resolve_one(
        &mut self,
        key: &ObjectKey,
        now: SystemTime,
        verdicts: Option<&mut PassVerdicts>,
    ) -> Option<Outcome> {
        let t = self.objects.get(key)?;
        let (Some(object), Some(prepared)) = (&t.object, &t.prepared) else {
            return None;
        };
        let known = verdicts
            .as_deref()
            .and_then(|v| v.find(&key.namespace, object, prepared));
        let status = match known {
            Some(status) => status,
            None => {
                let report = self.admission.resolve_prepared(
                    &key.namespace,
                    object,
                    prepared,
                    &self.current.hosts,
                );
                let status = ResolutionStatus::from_report(report);
                // Only inputs another tracked object shares can be asked for again.
                if let Some(v) = verdicts.filter(|_| Arc::strong_count(prepared) > 1) {
                    v.remember(key, object, prepared, &status);
                }
                status
            }
        };
        self.record(key, status, now)
    }

    /// Writes a new status to the store; returns the outcome when it differs.
    fn record(
        &mut self,
        key: &ObjectKey,
        mut status: ResolutionStatus,
        now: SystemTime,
    ) -> Option<Outcome> {
        let t = self.objects.get_mut(key)?;
        status.observed_generation = t.generation;
        let was_resolved = t.status.as_ref().map(|s| s.resolved);
        status.last_transition_time = match &t.status {
            Some(old) if old.resolved == status.resolved => old.last_transition_time.clone(),
            _ => rfc3339(now),
        };
        let mut resolution = WorkloadResolution {
            target: TargetRef {
                api_version: format!("{WASMCLOUD_GROUP}/{WASMCLOUD_VERSION}"),
                kind: key.kind.kind().to_string(),
                name: key.name.clone(),
                uid: t.uid.clone(),
            },
            status: status.clone(),
            ..WorkloadResolution::default()
        };
        resolution.metadata.name = Some(resolution_name(key.kind.kind(), &key.name));
        resolution.metadata.namespace = Some(key.namespace.clone());
        resolution.metadata.labels = (!t.labels.is_empty()).then(|| t.labels.clone());
        let changed = t.status.as_ref().is_none_or(|old| status.differs(old));
        t.status = Some(status.clone());
        self.store.put(resolution, now);
        changed.then(|| Outcome {
            key: key.clone(),
            uid: t.uid.clone(),
            was_resolved,
            status,
        })
    }
}

/// The statuses one pass over an inventory change has computed, by input. Objects with the same
/// inputs (namespace, defaulted spec, worlds, deployment fields), such as the workloads a
/// replica set stamps out, get the same verdict from the pure resolver against the same hosts,
/// so each distinct input is resolved once per pass. Equal prepared inputs are one shared
/// `Arc` ([`ReconcileCore::share`]), so its address identifies them.
#[derive(Default)]
struct PassVerdicts {
    by_input: HashMap<*const Prepared, Vec<PassVerdict>>,
}

struct PassVerdict {
    namespace: String,
    deployment: Option<DeploymentContext>,
    /// Keeps the address the entry is filed under alive for the pass.
    _prepared: Arc<Prepared>,
    status: ResolutionStatus,
}

impl PassVerdicts {
    fn find(
        &self,
        namespace: &str,
        object: &AdmittedObject,
        prepared: &Arc<Prepared>,
    ) -> Option<ResolutionStatus> {
        let same = self.by_input.get(&Arc::as_ptr(prepared))?;
        let deployment = object.deployment_context();
        same.iter()
            .find(|v| v.namespace == namespace && v.deployment == deployment)
            .map(|v| v.status.clone())
    }

    fn remember(
        &mut self,
        key: &ObjectKey,
        object: &AdmittedObject,
        prepared: &Arc<Prepared>,
        status: &ResolutionStatus,
    ) {
        self.by_input
            .entry(Arc::as_ptr(prepared))
            .or_default()
            .push(PassVerdict {
                namespace: key.namespace.clone(),
                deployment: object.deployment_context(),
                _prepared: prepared.clone(),
                status: status.clone(),
            });
    }
}

fn rfc3339(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::WorldResolver;
    use crate::crd::{Host, Workload};
    use crate::inventory::SharedInventory;
    use crate::policy::Policy;
    use crate::resolve::apply_defaults;

    use crate::engine::testing::{importing, orders_spec, postgres_host as host};

    fn snapshot(rv: u64, hosts: Vec<Host>) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            hosts: hosts.into(),
            resource_version: rv,
        })
    }

    fn orders() -> (ObjectKey, AdmittedObject, Prepared) {
        let spec = orders_spec();
        let worlds = BTreeMap::from([(
            "api".to_string(),
            importing("wasmcloud:postgres/query@0.2.0"),
        )]);
        let defaulted = apply_defaults(&spec, &worlds, &Policy::default());
        let key = ObjectKey {
            kind: TargetKind::Workload,
            namespace: "default".into(),
            name: "orders".into(),
        };
        let object = AdmittedObject::Workload(Box::new(Workload::new("orders", spec)));
        (
            key,
            object,
            Prepared {
                worlds,
                defaulted: Arc::new(defaulted),
                learned: Vec::new(),
            },
        )
    }

    fn core() -> (ReconcileCore, Arc<ResolutionStore>) {
        let admission = Arc::new(Engine::new(
            Arc::new(WorldResolver::new(vec![])),
            Arc::new(SharedInventory::default()),
            Arc::new(Policy::default()),
        ));
        let store = ResolutionStore::new();
        (ReconcileCore::new(admission, store.clone()), store)
    }

    fn meta(generation: i64) -> ObjectMeta {
        ObjectMeta {
            uid: "uid-1".into(),
            labels: BTreeMap::from([("app".into(), "orders".into())]),
            generation: Some(generation),
            spec_digest: 7,
        }
    }

    #[test]
    fn verdicts_follow_the_inventory() {
        let (mut core, store) = core();
        let now = SystemTime::now();
        core.inventory_changed(snapshot(1, vec![host("a", true, "0.2.0")]), now);
        let (key, object, prepared) = orders();
        let first = core
            .upsert(key.clone(), object, prepared, meta(1), now)
            .expect("a first verdict");
        assert!(first.status.resolved);
        assert_eq!(first.was_resolved, None);
        assert!(!first.verdict_changed(), "a resolved newcomer is no news");
        assert!(!core.needs_prepare(&key, 7));
        assert!(core.needs_prepare(&key, 8));

        // Heartbeat noise: a new version, same facts.
        let mut noisy = host("a", true, "0.2.0");
        noisy.status.as_mut().unwrap().last_seen = Some("later".into());
        assert!(core
            .inventory_changed(snapshot(2, vec![noisy]), now)
            .is_empty());
        // The same version again: not even looked at.
        assert!(core
            .inventory_changed(snapshot(2, vec![host("a", false, "0.2.0")]), now)
            .is_empty());

        // The only eligible host goes away: unresolved, a change worth an Event.
        let out = core.inventory_changed(snapshot(3, vec![host("a", false, "0.2.0")]), now);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].was_resolved, Some(true));
        assert!(!out[0].status.resolved && out[0].verdict_changed());
        assert_eq!(out[0].status.reason, "Unresolved");
        assert_eq!(core.unresolved_counts()[&TargetKind::Workload], 1);
        let stored = store.get("default", "orders.workload").expect("stored");
        assert_eq!(stored.target.uid, "uid-1");
        assert_eq!(stored.status.observed_generation, Some(1));
        assert_eq!(
            stored.metadata.labels.as_ref().and_then(|l| l.get("app")),
            Some(&"orders".to_string())
        );

        // A host with the wrong version only: still unresolved, but a different status.
        let out = core.inventory_changed(snapshot(4, vec![host("b", true, "0.1.1-draft")]), now);
        assert_eq!(out.len(), 1);
        assert!(!out[0].verdict_changed());
        // Back: resolved, with an Event.
        let out = core.inventory_changed(snapshot(5, vec![host("b", true, "0.2.0")]), now);
        assert!(out[0].status.resolved && out[0].verdict_changed());
        assert_eq!(core.unresolved_counts()[&TargetKind::Workload], 0);

        // Metadata-only updates re-resolve without new worlds; deletion removes the resolution.
        let touched = core
            .touch(&key, meta(2), now)
            .expect("a new observed generation");
        assert_eq!(touched.status.observed_generation, Some(2));
        assert!(core.touch(&key, meta(2), now).is_none());
        core.remove(&key);
        assert!(store.get("default", "orders.workload").is_none());
        assert!(core.is_empty());
        assert!(core.shared.is_empty(), "nothing kept for untracked objects");
    }

    #[test]
    fn one_pass_resolves_equal_inputs_once_and_tells_different_worlds_apart() {
        let (mut core, store) = core();
        let now = SystemTime::now();
        core.inventory_changed(snapshot(1, vec![host("a", true, "0.2.0")]), now);
        let (key, object, prepared) = orders();
        let named = |name: &str| ObjectKey {
            name: name.into(),
            ..key.clone()
        };
        // A twin: the same inputs under another name.
        core.upsert(
            named("twin"),
            object.clone(),
            prepared.clone(),
            meta(1),
            now,
        );
        // Same spec and spec digest, but its component's world imports another postgres
        // version (a moved tag, say): it must not borrow the others' verdict.
        let mut other = prepared.clone();
        other.worlds.insert(
            "api".into(),
            importing("wasmcloud:postgres/query@0.1.1-draft"),
        );
        core.upsert(named("other"), object.clone(), other, meta(1), now);
        core.upsert(key.clone(), object, prepared, meta(1), now);

        let out = core.inventory_changed(
            snapshot(2, vec![host("a", true, "0.2.0"), host("b", true, "0.2.0")]),
            now,
        );
        let status = |name: &str| {
            store
                .get("default", &format!("{name}.workload"))
                .expect("stored")
                .status
                .clone()
        };
        assert_eq!(out.len(), 3, "all three re-resolved: {out:?}");
        assert!(status("orders").resolved);
        assert_eq!(status("orders").eligible_hosts, 2);
        assert_eq!(status("twin"), status("orders"));
        assert!(!status("other").resolved, "{:?}", status("other"));
        assert!(status("other").message.contains("0.1.1-draft"));

        // The twins share their prepared inputs; the other has its own.
        let prepared = |name: &str| core.objects[&named(name)].prepared.clone().unwrap();
        assert!(Arc::ptr_eq(&prepared("twin"), &prepared("orders")));
        assert!(!Arc::ptr_eq(&prepared("other"), &prepared("orders")));
        for name in ["twin", "other", "orders"] {
            core.remove(&named(name));
        }
        assert!(core.shared.is_empty(), "nothing kept for untracked objects");
    }

    #[test]
    fn undecodable_objects_are_reported() {
        let (mut core, store) = core();
        let key = ObjectKey {
            kind: TargetKind::Deployment,
            namespace: "ns".into(),
            name: "bad".into(),
        };
        let out = core
            .undecodable(
                key.clone(),
                "spec.replicas: invalid type".into(),
                meta(1),
                SystemTime::now(),
            )
            .expect("reported");
        assert!(out.verdict_changed());
        let stored = store.get("ns", "bad.workloaddeployment").expect("stored");
        assert_eq!(stored.status.reason, "Undecodable");
        assert!(
            core.needs_prepare(&key, 7),
            "a fixed object is prepared again"
        );
        assert_eq!(core.keys_of(TargetKind::Deployment), vec![key]);
    }
}
