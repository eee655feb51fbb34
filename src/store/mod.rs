//! The versioned, watchable in-memory store behind every resource this server serves from
//! memory (`hosts` from the live inventory, `workloadresolutions` from the reconciler).
//!
//! One counter, the resourceVersion, increases by one with every change of any object; the
//! changed object's `metadata.resourceVersion` is that value. Every change is one [`Event`],
//! kept in a bounded history for watches that resume from a version and sent to live watchers
//! through a broadcast channel. A watch from a version older than the history is
//! [`WatchError::Gone`] (410 Expired, "too old resource version"); one from a version newer
//! than any issued is [`WatchError::TooLarge`] ("Too large resource version"), as
//! kube-apiserver answers both. [`ListSnapshots`] keeps the lists behind `continue` tokens.
//!
//! The store is generic over the object (`T`), its key (`K`), what its owner tracks per object
//! beside it (`M`) and once for the whole store (`X`); all of it sits under one lock, so the
//! owner's own bookkeeping changes atomically with the objects and their events.
//!
//! [`resolutions`] is the store of WorkloadResolutions: the reconciler writes it, the
//! `workloadresolutions` API reads it (so it sits below both).

use std::borrow::Borrow;
use std::collections::{btree_map, BTreeMap, HashMap, VecDeque};
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::broadcast;

pub mod resolutions;

pub use resolutions::ResolutionStore;

/// An object the store can version: it has Kubernetes object metadata.
pub trait Versioned: Clone + Send + Sync + 'static {
    /// The object's metadata.
    fn metadata(&self) -> &ObjectMeta;
    /// The object's metadata, to set the resourceVersion.
    fn metadata_mut(&mut self) -> &mut ObjectMeta;

    /// `metadata.resourceVersion` as a number (0 when unset or not a number).
    fn resource_version(&self) -> u64 {
        self.metadata()
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// The type of a watch event (`ADDED`, `MODIFIED`, `DELETED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// An object appeared.
    Added,
    /// An object changed.
    Modified,
    /// An object was removed; the event carries its last state, with the deletion's
    /// resourceVersion.
    Deleted,
}

impl EventType {
    /// The Kubernetes watch event type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change of one object. Cheap to clone: the object is shared with the store and the
/// history.
#[derive(Clone, Debug, PartialEq)]
pub struct Event<T> {
    /// What happened.
    pub kind: EventType,
    /// The object after the change (before, for `Deleted`), with the event's resourceVersion.
    pub object: Arc<T>,
}

impl<T: Versioned> Event<T> {
    /// The event's resourceVersion (that of its object).
    pub fn resource_version(&self) -> u64 {
        self.object.resource_version()
    }
}

/// A started watch: the replayed events, then the receiver of live ones.
pub type WatchStart<T> = (Vec<Event<T>>, broadcast::Receiver<Event<T>>);

/// Why a watch cannot start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// The requested resourceVersion is older than the history (HTTP 410 Gone): relist. `oldest`
    /// is the smallest version a watch can still resume from.
    #[error("too old resource version: the oldest that can be watched from is {oldest}")]
    Gone {
        /// The smallest `since` accepted now.
        oldest: u64,
    },
    /// The requested resourceVersion is newer than any this store has issued: a watch from it
    /// would silently drop every event up to it (kube-apiserver answers "Too large resource
    /// version" too).
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLarge {
        /// The `since` asked for.
        requested: u64,
        /// The newest resourceVersion issued.
        current: u64,
    },
}

/// A stored object and what the store's owner tracks beside it.
#[derive(Debug)]
pub struct Entry<T, M> {
    object: Arc<T>,
    /// The owner's data about this object (not versioned, not watched).
    pub meta: M,
}

impl<T, M> Entry<T, M> {
    /// The object as served (resourceVersion set).
    pub fn object(&self) -> &Arc<T> {
        &self.object
    }
}

/// A removed object, from [`State::remove`].
#[derive(Debug)]
pub struct Removed<T, M> {
    /// The object as it was stored.
    pub previous: Arc<T>,
    /// Its last state as the `Deleted` event carries it (the deletion's resourceVersion).
    pub deleted: Arc<T>,
    /// What the owner tracked beside it.
    pub meta: M,
}

/// The store's contents, reached under its lock ([`Store::lock`]). Every change goes through
/// [`State::put`] or [`State::remove`], which version it, record it and send it.
#[derive(Debug)]
pub struct State<K, T, M, X> {
    objects: BTreeMap<K, Entry<T, M>>,
    /// The owner's data about the whole store.
    pub extra: X,
    rv: u64,
    history: VecDeque<Event<T>>,
    history_limit: usize,
    /// Events with a resourceVersion up to this one are no longer in `history`.
    trimmed_through: u64,
    tx: broadcast::Sender<Event<T>>,
    /// The resourceVersion as readers without the lock see it ([`Store::resource_version`]).
    published: Arc<AtomicU64>,
    /// While set ([`State::begin_version`]), every change gets this resourceVersion instead of
    /// the next one of the counter.
    pinned: Option<u64>,
}

/// Why [`State::begin_version`] refused a resourceVersion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("resourceVersion {requested} is not above the current {current}")]
pub struct VersionError {
    /// The version asked for.
    pub requested: u64,
    /// The newest version issued.
    pub current: u64,
}

impl<K: Ord, T: Versioned, M, X> State<K, T, M, X> {
    /// The newest resourceVersion issued.
    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// The resourceVersion the next change will get.
    pub fn next_resource_version(&self) -> u64 {
        self.pinned.unwrap_or(self.rv + 1)
    }

    /// From now until [`Self::end_version`], every change ([`Self::put`], [`Self::remove`]) gets
    /// resourceVersion `rv`, which must be strictly above every version issued so far. This is
    /// how a replicated log's sequence numbers become resourceVersions (the inventory on
    /// JetStream: one log entry, one version, on every replica); the changes of one entry (a
    /// renamed host: the old object's deletion and the new one) share it, as the keys of one
    /// etcd transaction share a revision.
    pub fn begin_version(&mut self, rv: u64) -> Result<(), VersionError> {
        if rv <= self.rv {
            return Err(VersionError {
                requested: rv,
                current: self.rv,
            });
        }
        self.pinned = Some(rv);
        Ok(())
    }

    /// Back to the counter: the next change gets one above the newest version issued.
    pub fn end_version(&mut self) {
        self.pinned = None;
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether there is no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// One entry.
    pub fn get<Q>(&self, key: &Q) -> Option<&Entry<T, M>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.objects.get(key)
    }

    /// The owner's data about one object, to change it (the object itself changes only through
    /// [`Self::put`]).
    pub fn meta_mut<Q>(&mut self, key: &Q) -> Option<&mut M>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.objects.get_mut(key).map(|e| &mut e.meta)
    }

    /// Every entry, in key order.
    pub fn iter(&self) -> btree_map::Iter<'_, K, Entry<T, M>> {
        self.objects.iter()
    }

    /// The entries whose keys are in `range`, in key order.
    pub fn range<R: RangeBounds<K>>(&self, range: R) -> btree_map::Range<'_, K, Entry<T, M>> {
        self.objects.range(range)
    }

    /// Stores `object` under `key` at the next resourceVersion (`Modified` when the key is
    /// present, keeping its `meta`; else `Added` with `new_meta`), records and sends the event,
    /// and returns the stored object.
    pub fn put(&mut self, key: K, mut object: T, new_meta: M) -> Arc<T> {
        let rv = self.next_rv();
        object.metadata_mut().resource_version = Some(rv.to_string());
        let object = Arc::new(object);
        let kind = match self.objects.entry(key) {
            btree_map::Entry::Occupied(mut e) => {
                e.get_mut().object = object.clone();
                EventType::Modified
            }
            btree_map::Entry::Vacant(e) => {
                e.insert(Entry {
                    object: object.clone(),
                    meta: new_meta,
                });
                EventType::Added
            }
        };
        self.record(kind, object.clone());
        object
    }

    /// Removes an object at the next resourceVersion and records its `Deleted` event.
    pub fn remove<Q>(&mut self, key: &Q) -> Option<Removed<T, M>>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let entry = self.objects.remove(key)?;
        let rv = self.next_rv();
        let mut gone = T::clone(&entry.object);
        gone.metadata_mut().resource_version = Some(rv.to_string());
        let deleted = Arc::new(gone);
        self.record(EventType::Deleted, deleted.clone());
        Some(Removed {
            previous: entry.object,
            deleted,
            meta: entry.meta,
        })
    }

    /// Subscribes to changes.
    ///
    /// - `since = None`: no replay; the caller lists first (the list's resourceVersion tells
    ///   where the live events start: every received event has a higher one).
    /// - `since = Some(rv)`: the events above `rv` still in the history, then live ones. Older
    ///   than the history: [`WatchError::Gone`]; newer than any issued: [`WatchError::TooLarge`].
    ///
    /// The receiver is subscribed under the same lock that orders every change, so no event is
    /// lost and none is both replayed and received. A receiver that falls the broadcast
    /// capacity behind gets `RecvError::Lagged`: end the watch; the client resumes from its
    /// last resourceVersion (or relists on 410).
    pub fn watch(&self, since: Option<u64>) -> Result<WatchStart<T>, WatchError> {
        let rx = self.tx.subscribe();
        let Some(since) = since else {
            return Ok((Vec::new(), rx));
        };
        if since < self.trimmed_through {
            return Err(WatchError::Gone {
                oldest: self.trimmed_through,
            });
        }
        if since > self.rv {
            return Err(WatchError::TooLarge {
                requested: since,
                current: self.rv,
            });
        }
        // The history is in resourceVersion order: find the first event after `since`.
        let start = self
            .history
            .partition_point(|e| e.resource_version() <= since);
        Ok((self.history.range(start..).cloned().collect(), rx))
    }

    fn next_rv(&mut self) -> u64 {
        self.rv = self.pinned.unwrap_or(self.rv + 1);
        self.rv
    }

    fn record(&mut self, kind: EventType, object: Arc<T>) {
        let rv = self.rv;
        let ev = Event { kind, object };
        if self.tx.receiver_count() > 0 {
            // Err only when every receiver left meanwhile: nobody to tell.
            let _ = self.tx.send(ev.clone());
        }
        if self.history_limit == 0 {
            self.trimmed_through = rv;
        } else {
            // Trimmed before the push, so a preallocated history never grows past its limit.
            while self.history.len() >= self.history_limit {
                match self.history.pop_front() {
                    Some(old) => self.trimmed_through = old.resource_version(),
                    None => break,
                }
            }
            self.history.push_back(ev);
        }
        self.published.store(rv, Ordering::Release);
    }
}

/// The store: its [`State`] behind a lock, and the resourceVersion readable without it.
#[derive(Debug)]
pub struct Store<K, T, M = (), X = ()> {
    state: Mutex<State<K, T, M, X>>,
    rv: Arc<AtomicU64>,
}

impl<K: Ord, T: Versioned, M, X> Store<K, T, M, X> {
    /// An empty store keeping `history` events for resuming watches (preallocated up to
    /// `preallocate`), whose live watchers may fall `broadcast_capacity` events behind.
    pub fn new(history: usize, preallocate: usize, broadcast_capacity: usize, extra: X) -> Self {
        let rv = Arc::new(AtomicU64::new(0));
        Self {
            state: Mutex::new(State {
                objects: BTreeMap::new(),
                extra,
                rv: 0,
                history: VecDeque::with_capacity(history.min(preallocate)),
                history_limit: history,
                trimmed_through: 0,
                tx: broadcast::channel(broadcast_capacity.max(1)).0,
                published: rv.clone(),
                pinned: None,
            }),
            rv,
        }
    }

    /// The state, locked. A panic while holding the lock cannot leave it half-written (each
    /// change is one insert or remove and its event), so a poisoned lock is still used.
    pub fn lock(&self) -> MutexGuard<'_, State<K, T, M, X>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest resourceVersion issued, without taking the lock.
    pub fn resource_version(&self) -> u64 {
        self.rv.load(Ordering::Acquire)
    }

    /// [`State::watch`] under the lock.
    pub fn watch(&self, since: Option<u64>) -> Result<WatchStart<T>, WatchError> {
        self.lock().watch(since)
    }
}

/// The lists behind `continue` tokens: each a snapshot of the items of a first page's request,
/// kept for a while so that later pages read the same state (and report its resourceVersion).
#[derive(Debug)]
pub struct ListSnapshots<T> {
    ttl: Duration,
    max: usize,
    next: AtomicU64,
    map: Mutex<HashMap<u64, ListSnapshot<T>>>,
}

#[derive(Debug)]
struct ListSnapshot<T> {
    at: Instant,
    rv: u64,
    items: Arc<Vec<T>>,
    scope: u64,
}

impl<T> ListSnapshots<T> {
    /// Keeps each snapshot for `ttl`, at most `max` at once (the oldest evicted first).
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            next: AtomicU64::new(0),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, ListSnapshot<T>>> {
        // Each change is one insert or remove: a poisoned map is still consistent.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `items` (at `rv`, for requests of `scope`: a digest of what selected them) and
    /// returns the snapshot's id.
    pub fn put(&self, rv: u64, items: Arc<Vec<T>>, scope: u64) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut map = self.lock();
        map.retain(|_, s| s.at.elapsed() < self.ttl);
        while map.len() >= self.max.max(1) {
            let Some(oldest) = map.iter().min_by_key(|(_, s)| s.at).map(|(k, _)| *k) else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(
            id,
            ListSnapshot {
                at: Instant::now(),
                rv,
                items,
                scope,
            },
        );
        id
    }

    /// A kept snapshot: its resourceVersion, items and scope (`None` once expired or evicted).
    pub fn get(&self, id: u64) -> Option<(u64, Arc<Vec<T>>, u64)> {
        self.lock()
            .get(&id)
            .filter(|s| s.at.elapsed() < self.ttl)
            .map(|s| (s.rv, s.items.clone(), s.scope))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, Default, PartialEq)]
    struct Obj {
        metadata: ObjectMeta,
        value: u32,
    }

    impl Versioned for Obj {
        fn metadata(&self) -> &ObjectMeta {
            &self.metadata
        }
        fn metadata_mut(&mut self) -> &mut ObjectMeta {
            &mut self.metadata
        }
    }

    fn obj(value: u32) -> Obj {
        Obj {
            value,
            ..Obj::default()
        }
    }

    type S = Store<String, Obj, u8>;

    #[test]
    fn puts_version_and_record() {
        let s = S::new(10, 10, 16, ());
        let mut st = s.lock();
        let a = st.put("a".into(), obj(1), 7);
        assert_eq!(a.resource_version(), 1);
        st.put("a".into(), obj(2), 9);
        assert_eq!(
            st.get("a").map(|e| (e.object().value, e.meta)),
            Some((2, 7))
        );
        let gone = st.remove("a").unwrap();
        assert_eq!(
            (
                gone.previous.resource_version(),
                gone.deleted.resource_version()
            ),
            (2, 3)
        );
        assert!(st.remove("a").is_none());
        drop(st);
        assert_eq!(s.resource_version(), 3);
        let (all, _) = s.watch(Some(0)).unwrap();
        let kinds: Vec<_> = all.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventType::Added, EventType::Modified, EventType::Deleted]
        );
    }

    #[test]
    fn pinned_versions_come_from_the_caller_and_only_grow() {
        let s = S::new(10, 10, 16, ());
        let mut st = s.lock();
        st.put("a".into(), obj(1), 0);
        st.begin_version(7).unwrap();
        assert_eq!(st.next_resource_version(), 7);
        // Two changes of one log entry share its version.
        st.remove("a");
        let b = st.put("b".into(), obj(2), 0);
        st.end_version();
        assert_eq!(b.resource_version(), 7);
        assert_eq!(
            st.begin_version(7),
            Err(VersionError {
                requested: 7,
                current: 7
            })
        );
        assert_eq!(
            st.next_resource_version(),
            8,
            "the counter goes on from there"
        );
        drop(st);
        assert_eq!(s.resource_version(), 7);
        let (events, _) = s.watch(Some(1)).unwrap();
        assert_eq!(
            events
                .iter()
                .map(|e| e.resource_version())
                .collect::<Vec<_>>(),
            [7, 7]
        );
    }

    #[test]
    fn history_trims_to_gone_and_refuses_the_future() {
        let s = S::new(3, 3, 16, ());
        for i in 0..5 {
            s.lock().put("a".into(), obj(i), 0);
        }
        assert_eq!(s.watch(Some(1)).err(), Some(WatchError::Gone { oldest: 2 }));
        assert_eq!(s.watch(Some(2)).unwrap().0.len(), 3);
        assert_eq!(
            s.watch(Some(6)).err(),
            Some(WatchError::TooLarge {
                requested: 6,
                current: 5
            })
        );
        let none = S::new(0, 0, 16, ());
        none.lock().put("a".into(), obj(0), 0);
        assert_eq!(
            none.watch(Some(0)).err(),
            Some(WatchError::Gone { oldest: 1 })
        );
        assert!(none.watch(Some(1)).unwrap().0.is_empty());
    }

    #[tokio::test]
    async fn live_events_follow_the_replay() {
        let s = S::new(10, 10, 16, ());
        s.lock().put("a".into(), obj(1), 0);
        let (replay, mut rx) = s.watch(Some(0)).unwrap();
        assert_eq!(replay.len(), 1);
        s.lock().put("b".into(), obj(2), 0);
        let ev = rx.recv().await.unwrap();
        assert_eq!((ev.kind, ev.resource_version()), (EventType::Added, 2));
    }

    #[test]
    fn list_snapshots_expire_and_evict() {
        let l = ListSnapshots::new(Duration::from_secs(60), 2);
        let a = l.put(1, Arc::new(vec![1]), 0);
        let b = l.put(2, Arc::new(vec![2]), 0);
        let c = l.put(3, Arc::new(vec![3]), 9);
        assert!(l.get(a).is_none(), "the oldest is evicted");
        assert_eq!(l.get(b).map(|(rv, i, _)| (rv, i[0])), Some((2, 2)));
        assert_eq!(l.get(c).map(|(_, _, scope)| scope), Some(9));
        let short = ListSnapshots::new(Duration::ZERO, 2);
        let id = short.put(1, Arc::new(vec![1]), 0);
        assert!(short.get(id).is_none());
    }
}
