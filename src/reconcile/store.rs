//! The in-memory store of `WorkloadResolution` objects: versioned and watchable, like the host
//! inventory (one monotonically increasing resourceVersion, a bounded history for resuming
//! watches, a broadcast channel for live ones).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::broadcast;

use crate::crd::resolution::{WorkloadResolution, KIND};
use crate::inventory::{WatchError, WatchEventType};

/// Events kept for watches that resume from a resourceVersion.
pub const HISTORY: usize = 10_000;
/// Live events a slow watcher may fall behind before its watch ends with 410.
const BROADCAST_CAPACITY: usize = 4_096;

/// One change of the store.
#[derive(Clone, Debug)]
pub struct ResolutionEvent {
    /// ADDED, MODIFIED or DELETED.
    pub kind: WatchEventType,
    /// The object after the change (before, for DELETED), with the event's resourceVersion.
    pub object: Arc<WorkloadResolution>,
}

impl ResolutionEvent {
    /// The event's resourceVersion.
    pub fn resource_version(&self) -> u64 {
        rv_of(&self.object)
    }
}

/// The resourceVersion of a stored object.
pub fn rv_of(r: &WorkloadResolution) -> u64 {
    r.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

type Key = (String, String);

#[derive(Default)]
struct Inner {
    objects: BTreeMap<Key, Arc<WorkloadResolution>>,
    rv: u64,
    history: VecDeque<ResolutionEvent>,
    /// The highest resourceVersion dropped from the history.
    trimmed_through: u64,
}

/// The store.
pub struct ResolutionStore {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<ResolutionEvent>,
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
            inner: Mutex::default(),
            tx: broadcast::channel(BROADCAST_CAPACITY).0,
        }
    }
}

impl ResolutionStore {
    /// An empty store.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-written (every mutation is
        // one insert or remove), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.lock().objects.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// Every object (sorted by namespace, then name) in `namespace` (all when `None`), and the
    /// resourceVersion of that view.
    pub fn list(&self, namespace: Option<&str>) -> (Vec<Arc<WorkloadResolution>>, u64) {
        let inner = self.lock();
        let items = match namespace {
            None => inner.objects.values().cloned().collect(),
            Some(ns) => inner
                .objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, v)| v.clone())
                .collect(),
        };
        (items, inner.rv)
    }

    /// One object.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<WorkloadResolution>> {
        self.lock()
            .objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn record(&self, inner: &mut Inner, ev: ResolutionEvent) {
        inner.history.push_back(ev.clone());
        while inner.history.len() > HISTORY {
            if let Some(old) = inner.history.pop_front() {
                inner.trimmed_through = old.resource_version();
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(ev);
    }

    /// Stores `obj` (keyed by its namespace and name) unless it equals the stored one apart
    /// from server fields; returns whether anything changed.
    pub fn put(&self, mut obj: WorkloadResolution, now: SystemTime) -> bool {
        let key = (
            obj.metadata.namespace.clone().unwrap_or_default(),
            obj.metadata.name.clone().unwrap_or_default(),
        );
        let mut inner = self.lock();
        let existing = inner.objects.get(&key).cloned();
        if let Some(old) = &existing {
            if old.target == obj.target
                && old.metadata.labels == obj.metadata.labels
                && !obj.status.differs(&old.status)
            {
                return false;
            }
            obj.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
            obj.metadata.uid = old.metadata.uid.clone();
        } else {
            obj.metadata.creation_timestamp =
                k8s_openapi::jiff::Timestamp::try_from(now).ok().map(Time);
            obj.metadata.uid = Some(uid_for(&key, now));
        }
        obj.api_version = super::api_version();
        obj.kind = KIND.to_string();
        inner.rv += 1;
        obj.metadata.resource_version = Some(inner.rv.to_string());
        let obj = Arc::new(obj);
        inner.objects.insert(key, obj.clone());
        let kind = if existing.is_some() {
            WatchEventType::Modified
        } else {
            WatchEventType::Added
        };
        self.record(&mut inner, ResolutionEvent { kind, object: obj });
        true
    }

    /// Removes an object; returns it if it existed.
    pub fn remove(&self, namespace: &str, name: &str) -> Option<Arc<WorkloadResolution>> {
        let mut inner = self.lock();
        let old = inner
            .objects
            .remove(&(namespace.to_string(), name.to_string()))?;
        inner.rv += 1;
        let mut gone = (*old).clone();
        gone.metadata.resource_version = Some(inner.rv.to_string());
        self.record(
            &mut inner,
            ResolutionEvent {
                kind: WatchEventType::Deleted,
                object: Arc::new(gone),
            },
        );
        Some(old)
    }

    /// Subscribes to changes; with `since`, first the retained events after it
    /// ([`WatchError::Gone`] when they are no longer retained). Same contract as the host
    /// inventory's watch.
    pub fn watch(
        &self,
        since: Option<u64>,
    ) -> Result<(Vec<ResolutionEvent>, broadcast::Receiver<ResolutionEvent>), WatchError> {
        let inner = self.lock();
        let rx = self.tx.subscribe();
        let Some(since) = since else {
            return Ok((Vec::new(), rx));
        };
        if since < inner.trimmed_through {
            return Err(WatchError::Gone {
                oldest: inner.trimmed_through,
            });
        }
        if since > inner.rv {
            return Err(WatchError::TooLarge {
                requested: since,
                current: inner.rv,
            });
        }
        // The history is in resourceVersion order: find the first event after `since`.
        let start = inner
            .history
            .partition_point(|e| e.resource_version() <= since);
        let replay = inner.history.range(start..).cloned().collect();
        Ok((replay, rx))
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
