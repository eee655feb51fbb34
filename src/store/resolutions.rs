//! The in-memory store of `WorkloadResolution` objects: the generic [`crate::store::Store`]
//! (one monotonically increasing resourceVersion, a bounded history for resuming watches, a
//! broadcast channel for live ones), keyed by namespace and name, with the reconciler's rules
//! for what counts as a change.

use std::sync::{Arc, MutexGuard};
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use tokio::sync::broadcast;

use crate::crd::resolution::{WorkloadResolution, KIND};
use crate::store::{State, Store, Versioned, WatchError};

/// Events kept for watches that resume from a resourceVersion.
pub const HISTORY: usize = 10_000;
/// Live events a slow watcher may fall behind before its watch ends with 410.
const BROADCAST_CAPACITY: usize = 4_096;

/// One change of the store (`object`: the object after the change, before it for DELETED,
/// with the event's resourceVersion).
pub type ResolutionEvent = crate::store::Event<WorkloadResolution>;

impl Versioned for WorkloadResolution {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The resourceVersion of a stored object.
pub fn rv_of(r: &WorkloadResolution) -> u64 {
    r.resource_version()
}

type Key = (String, String);

/// The store.
pub struct ResolutionStore {
    store: Store<Key, WorkloadResolution>,
}

impl std::fmt::Debug for ResolutionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolutionStore")
            .field("len", &self.len())
            .finish()
    }
}

impl Default for ResolutionStore {
    fn default() -> Self {
        Self {
            // Nothing preallocated: most clusters hold few resolutions.
            store: Store::new(HISTORY, 0, BROADCAST_CAPACITY, ()),
        }
    }
}

impl ResolutionStore {
    /// An empty store.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, State<Key, WorkloadResolution, (), ()>> {
        self.store.lock()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.store.resource_version()
    }

    /// Every object (sorted by namespace, then name) in `namespace` (all when `None`), and the
    /// resourceVersion of that view.
    pub fn list(&self, namespace: Option<&str>) -> (Vec<Arc<WorkloadResolution>>, u64) {
        let inner = self.lock();
        let items = match namespace {
            None => inner.iter().map(|(_, e)| e.object().clone()).collect(),
            Some(ns) => inner
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, e)| e.object().clone())
                .collect(),
        };
        (items, inner.resource_version())
    }

    /// One object.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<WorkloadResolution>> {
        self.lock()
            .get(&(namespace.to_string(), name.to_string()))
            .map(|e| e.object().clone())
    }

    /// Stores `obj` (keyed by its namespace and name) unless it equals the stored one apart
    /// from server fields; returns whether anything changed.
    pub fn put(&self, mut obj: WorkloadResolution, now: SystemTime) -> bool {
        let key = (
            obj.metadata.namespace.clone().unwrap_or_default(),
            obj.metadata.name.clone().unwrap_or_default(),
        );
        let mut inner = self.lock();
        match inner.get(&key).map(|e| e.object()) {
            Some(old) => {
                if old.target == obj.target
                    && old.metadata.labels == obj.metadata.labels
                    && !obj.status.differs(&old.status)
                {
                    return false;
                }
                obj.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
                obj.metadata.uid = old.metadata.uid.clone();
            }
            None => {
                obj.metadata.creation_timestamp =
                    k8s_openapi::jiff::Timestamp::try_from(now).ok().map(Time);
                obj.metadata.uid = Some(uid_for(&key, now));
            }
        }
        obj.api_version = crate::crd::resolution::api_version();
        obj.kind = KIND.to_string();
        inner.put(key, obj, ());
        true
    }

    /// Removes an object; returns it if it existed.
    pub fn remove(&self, namespace: &str, name: &str) -> Option<Arc<WorkloadResolution>> {
        self.lock()
            .remove(&(namespace.to_string(), name.to_string()))
            .map(|r| r.previous)
    }

    /// Subscribes to changes; with `since`, first the retained events after it
    /// ([`WatchError::Gone`] when they are no longer retained). Same contract as the host
    /// inventory's watch (see [`State::watch`]).
    pub fn watch(
        &self,
        since: Option<u64>,
    ) -> Result<(Vec<ResolutionEvent>, broadcast::Receiver<ResolutionEvent>), WatchError> {
        self.store.watch(since)
    }
}

/// A stable, unique-enough uid for a new object (not a random UUID: nothing else refers to it).
fn uid_for(key: &Key, now: SystemTime) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    now.hash(&mut h);
    let a = h.finish();
    "wasmgate".hash(&mut h);
    let b = h.finish();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::resolution::{ResolutionStatus, TargetRef};
    use crate::store::EventType as WatchEventType;

    fn obj(ns: &str, name: &str, resolved: bool) -> WorkloadResolution {
        let mut r = WorkloadResolution {
            target: TargetRef {
                kind: "Workload".into(),
                name: name.into(),
                ..TargetRef::default()
            },
            status: ResolutionStatus {
                resolved,
                ..ResolutionStatus::default()
            },
            ..WorkloadResolution::default()
        };
        r.metadata.namespace = Some(ns.into());
        r.metadata.name = Some(format!("{name}.workload"));
        r
    }

    #[test]
    fn put_versions_and_skips_no_ops() {
        let s = ResolutionStore::default();
        let now = SystemTime::now();
        assert!(s.put(obj("a", "x", true), now));
        assert!(
            !s.put(obj("a", "x", true), now),
            "an identical status is not a change"
        );
        assert!(s.put(obj("a", "x", false), now));
        assert!(s.put(obj("b", "y", true), now));
        assert_eq!(s.resource_version(), 3);
        let (all, rv) = s.list(None);
        assert_eq!((all.len(), rv), (2, 3));
        let (a, _) = s.list(Some("a"));
        assert_eq!(a.len(), 1);
        assert!(!a[0].status.resolved);
        assert_eq!(a[0].metadata.resource_version.as_deref(), Some("2"));
        assert_eq!(a[0].kind, "WorkloadResolution");
        assert!(s.get("b", "y.workload").is_some());
        assert!(s.list(Some("c")).0.is_empty());
    }

    #[tokio::test]
    async fn watch_replays_and_streams() {
        let s = ResolutionStore::default();
        let now = SystemTime::now();
        s.put(obj("a", "x", true), now);
        s.put(obj("a", "x", false), now);
        let (replay, mut rx) = s.watch(Some(1)).unwrap();
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].kind, WatchEventType::Modified);
        s.remove("a", "x.workload");
        let ev = rx.recv().await.unwrap();
        assert_eq!(ev.kind, WatchEventType::Deleted);
        assert_eq!(ev.resource_version(), 3);
        assert!(s.is_empty());
    }

    #[test]
    fn old_versions_are_gone() {
        let s = ResolutionStore::default();
        let now = SystemTime::now();
        for i in 0..(HISTORY + 5) {
            s.put(obj("a", "x", i % 2 == 0), now);
        }
        assert!(matches!(s.watch(Some(1)), Err(WatchError::Gone { .. })));
        // A version from the future is refused, not silently waited for.
        assert!(matches!(
            s.watch(Some(u64::MAX)),
            Err(WatchError::TooLarge { .. })
        ));
        assert!(s.watch(Some(s.resource_version())).is_ok());
    }
}
