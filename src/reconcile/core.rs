//! The reconciler's state machine, free of I/O: tracked objects (with their prepared worlds),
//! the dependency index, the host tracker, and the resolution store it writes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use crate::crd::{WASMCLOUD_GROUP, WASMCLOUD_VERSION};
use crate::engine::{AdmittedObject, Engine, Prepared};
use crate::inventory::Snapshot;

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
        let mut out = Vec::new();
        for key in affected {
            if let Some(o) = self.resolve_one(&key, now) {
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
        self.objects.insert(
            key.clone(),
            Tracked {
                object: Some(Arc::new(object)),
                prepared: Some(Arc::new(prepared)),
                uid: meta.uid,
                labels: meta.labels,
                generation: meta.generation,
                spec_digest: meta.spec_digest,
                status,
            },
        );
        self.resolve_one(&key, now)
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
        self.resolve_one(key, now)
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
        let previous = self.objects.remove(&key).and_then(|t| t.status);
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
        if self.objects.remove(key).is_some() {
            self.store
                .remove(&key.namespace, &resolution_name(key.kind.kind(), &key.name));
        }
    }

    fn resolve_one(&mut self, key: &ObjectKey, now: SystemTime) -> Option<Outcome> {
        let t = self.objects.get(key)?;
        let (Some(object), Some(prepared)) = (&t.object, &t.prepared) else {
            return None;
        };
        let report =
            self.admission
                .resolve_prepared(&key.namespace, object, prepared, &self.current.hosts);
        let status = ResolutionStatus::from_report(&report);
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
    use crate::crd::{Condition, Host, HostInterface, HostStatus, HostWitInterface, Workload};
    use crate::crd::{WorkloadComponent, WorkloadSpec};
    use crate::inventory::SharedInventory;
    use crate::policy::Policy;
    use crate::resolve::{apply_defaults, WorldState};
    use crate::wit::{ComponentWorld, WorldItemRef};

    fn host(name: &str, ready: bool, postgres: &str) -> Host {
        let mut h = Host {
            host_id: format!("id-{name}"),
            ..Host::default()
        };
        h.metadata.name = Some(name.into());
        h.metadata.labels = Some(BTreeMap::from([("hostgroup".into(), "data".into())]));
        h.status = Some(HostStatus {
            conditions: Some(vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Condition::default()
            }]),
            imports: Some(vec![HostWitInterface {
                namespace: "wasmcloud".into(),
                package: "postgres".into(),
                version: Some(postgres.into()),
                interfaces: vec!["query".into()],
                name: None,
            }]),
            ..HostStatus::default()
        });
        h
    }

    fn snapshot(rv: u64, hosts: Vec<Host>) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            hosts,
            resource_version: rv,
        })
    }

    fn orders() -> (ObjectKey, AdmittedObject, Prepared) {
        let spec = WorkloadSpec {
            host_selector: Some(BTreeMap::from([("hostgroup".into(), "data".into())])),
            host_interfaces: Some(vec![HostInterface {
                namespace: "wasmcloud".into(),
                package: "postgres".into(),
                interfaces: vec!["query".into()],
                version: Some("0.2.0".into()),
                ..HostInterface::default()
            }]),
            components: Some(vec![WorkloadComponent {
                name: "api".into(),
                image: "registry.test/orders:1".into(),
                ..WorkloadComponent::default()
            }]),
            ..WorkloadSpec::default()
        };
        let worlds = BTreeMap::from([(
            "api".to_string(),
            WorldState::Known(ComponentWorld::new(
                vec![WorldItemRef::Interface(
                    "wasmcloud:postgres/query@0.2.0".parse().unwrap(),
                )],
                vec![],
            )),
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
                defaulted,
                learned: Vec::new(),
            },
        )
    }

    fn core() -> (ReconcileCore, Arc<ResolutionStore>) {
        let admission = Arc::new(Engine {
            worlds: Arc::new(WorldResolver::new(vec![])),
            inventory: Arc::new(SharedInventory::default()),
            policy: Arc::new(Policy::default()),
        });
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
