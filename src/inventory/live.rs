//! The live inventory: every host that heartbeats (NATS) or is written through the `hosts` API
//! (HTTP), held in memory only (no etcd write, ever), versioned and watchable.
//!
//! # Versions and events
//!
//! One counter, `resource_version`, increases by one with every change of any host; the changed
//! host's `metadata.resourceVersion` is that value. Every change is one [`WatchEvent`], kept in a
//! bounded history (`LiveConfig::history` events) for watches that resume from a version, and
//! sent to live watchers through a broadcast channel: all of it is the generic
//! [`crate::store::Store`], which this inventory fills with its naming, health and ageing rules.
//!
//! **Every heartbeat is a change** (`Modified`): it moves `status.lastSeen` (and usually CPU and
//! free memory), as the upstream operator's status patch per heartbeat does. A heartbeat that
//! changes nothing (same second, same values) emits nothing. At 10,000 hosts heartbeating every
//! 15 s that is ~670 events/s; the history then covers ~15 s of resume window, and an older
//! `resourceVersion` gets 410 Gone (the client relists), as with a busy kube-apiserver.
//!
//! # Health (spec/wasmcloud-v2.md 3.4)
//!
//! - heard from within `heartbeat_timeout / 2` (two 15 s heartbeats missed at the default):
//!   `Reporting=True`, `Ready=True`, both reason `Available`;
//! - silent longer, but for at most `heartbeat_timeout`: `Reporting=False` and `Ready=Unknown`
//!   (reason `Reconcile`, message `status unknown: host is not reporting`);
//! - silent for more than `heartbeat_timeout`: `Ready=False` (message `host has not reported
//!   recently`), and the host is removed (`Deleted`) after `retention` more;
//! - the settle rule of upstream PR 5502: no host turns False, and none is removed, unless the
//!   heartbeat source has been connected for at least `settle` (since process start, or the last
//!   [`LiveInventory::mark_connected`]), and not while it is disconnected
//!   ([`LiveInventory::mark_disconnected`]). A NATS blip therefore loses no host.
//!
//! Conditions change in [`LiveInventory::tick`] (call it every second or few) and when a heartbeat
//! arrives.
//!
//! # Snapshots for the resolver
//!
//! [`InventorySource::snapshot`] is rebuilt lazily, on demand, and only when something the
//! resolver reads changed (a host added or removed; labels, ids, environment, versions,
//! interfaces, conditions), or when the cached one is older than [`SNAPSHOT_MAX_AGE`] and anything
//! changed. Heartbeats that only move `lastSeen`/CPU/memory/counts therefore never rebuild it.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::crd::{
    Condition, Host, HostStatus, HostWitInterface, InterfaceList, SharedList, WASMGATE_GROUP,
    WASMGATE_VERSION,
};

use super::heartbeat::{
    rfc3339_seconds, timestamp, HeartbeatError, HeartbeatText, HostHeartbeat, ListText,
    WitInterface,
};
use super::jetstream::{EntryKind, LogPublisher, WRITE_WAIT};
use super::{InventoryError, InventorySource, Snapshot};
use crate::resolve::Hosts;
use crate::store::{State, Store, VersionError, Versioned};

pub use crate::store::{EventType as WatchEventType, WatchError};

/// How stale the resolver's snapshot may be in fields it does not read (lastSeen, CPU, memory).
pub const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(5);

/// Most events a live watcher may fall behind before it gets `RecvError::Lagged` (and resumes
/// from the history). Bounded so a large history does not preallocate a huge channel.
pub const BROADCAST_CAPACITY: usize = 16_384;

/// `Ready=Unknown` message (upstream's text).
pub const MSG_NOT_REPORTING: &str = "status unknown: host is not reporting";
/// `Ready=False` message (upstream's text).
pub const MSG_NOT_REPORTED_RECENTLY: &str = "host has not reported recently";
/// `Reporting=False` message.
pub const MSG_NO_HEARTBEAT: &str = "no heartbeat received within the reporting interval";

/// Timing and capacity of the live inventory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// A host silent for longer is `Ready=False` (upstream's `UnreachableTimeout`, 60 s). It is
    /// `Reporting=False`/`Ready=Unknown` after half of it.
    pub heartbeat_timeout: Duration,
    /// How long a `Ready=False` host is kept before it is removed (default 5 min).
    pub retention: Duration,
    /// After start or a (re)connect, how long the source must have been connected before any
    /// host may turn False (default: `heartbeat_timeout`).
    pub settle: Duration,
    /// Watch events kept for resuming watches (also the live channel's capacity, up to
    /// [`BROADCAST_CAPACITY`]).
    pub history: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            heartbeat_timeout: Duration::from_secs(60),
            retention: Duration::from_secs(300),
            settle: Duration::from_secs(60),
            history: 10_000,
        }
    }
}

impl LiveConfig {
    /// Silence after which a host is no longer `Reporting`.
    pub fn reporting_grace(&self) -> Duration {
        self.heartbeat_timeout / 2
    }
}

/// One change of one host (its `object` is the host after the change, with
/// `metadata.resourceVersion` set; for `Deleted`, its last state at the deletion's version).
pub type WatchEvent = crate::store::Event<Host>;

impl Versioned for Host {
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The resource version in a host's metadata (0 when unset or not a number).
pub fn rv_of(host: &Host) -> u64 {
    host.resource_version()
}

/// Hosts by their `Ready` condition, from [`LiveInventory::ready_counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadyCounts {
    /// `Ready=True`: reporting.
    pub ready: u64,
    /// `Ready=False`: silent for longer than the heartbeat timeout.
    pub not_ready: u64,
    /// `Ready=Unknown`: silent for a while, or while the heartbeat source is disconnected.
    pub unknown: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Health {
    Reporting,
    NotReporting,
    /// Ready=False since then.
    Lost(SystemTime),
}

/// What the inventory tracks beside each host.
#[derive(Debug)]
struct Tracking {
    /// Last heartbeat (or API write), by this process's clock (in log mode: the log entry's
    /// timestamp).
    last_seen: SystemTime,
    health: Health,
    /// Log mode: the sequence of the heartbeat or write `last_seen` comes from (0 otherwise). A
    /// health transition judged from another one is stale.
    beat: u64,
}

/// A position in the inventory log (the JetStream stream): an entry's stream sequence, which
/// becomes the resourceVersion of what it changes, and the server's timestamp of it, which is
/// the time of the change on every replica (never the local clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPosition {
    /// The stream sequence.
    pub seq: u64,
    /// When the server stored the entry.
    pub time: SystemTime,
}

/// A health state only time causes (silence), as the leader publishes it to the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HealthState {
    /// `Reporting=False`, `Ready=Unknown`.
    Unknown,
    /// `Ready=False`.
    False,
    /// Removed after the retention.
    Removed,
}

/// A health transition decided by the leader ([`LiveInventory::due_transitions`]) and applied
/// by every replica when it reads it from the log ([`LogEntry::Health`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthTransition {
    /// The host it is about (a host of the same name but another id is left alone).
    pub host_id: String,
    /// The log sequence of the heartbeat or write the silence was counted from: if the host
    /// has been heard from since, the transition is stale and ignored.
    pub beat: u64,
    /// The new state.
    pub state: HealthState,
    /// For `False`: since when `Reporting` is False (the `Unknown` entry's time, which the log
    /// may no longer hold once this entry replaced it). `None`: this entry's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_since: Option<String>,
}

/// A heartbeat whose interface lists are held as the inventory stores them (shared).
pub type StoredHeartbeat = HostHeartbeat<Option<InterfaceList>>;

/// `hb` with its parsed interface lists as stored lists (not yet shared: storing interns them).
pub fn stored_lists(hb: HostHeartbeat) -> StoredHeartbeat {
    match hb.try_map_lists(|list| Ok::<_, std::convert::Infallible>(stored_list(list))) {
        Ok(stored) => stored,
        Err(never) => match never {},
    }
}

/// One entry of the inventory log, decoded.
#[derive(Clone, Debug)]
pub enum LogEntry {
    /// A host's heartbeat, its lists as the inventory shares them.
    Heartbeat(Box<StoredHeartbeat>),
    /// A host written through the API (create, update, patch).
    Write(Box<Host>),
    /// A host deleted through the API.
    Delete {
        /// The host's name.
        name: String,
    },
    /// A health transition published by the leader.
    Health {
        /// The host's name.
        name: String,
        /// What changed.
        transition: HealthTransition,
    },
    /// An entry that changes nothing (undecodable, refused): its sequence is still consumed.
    Skip,
}

/// What applying a log entry did (kept for the replica that published a write, which waits
/// for it: [`LiveInventory::wait_applied`], [`LiveInventory::take_outcome`]).
#[derive(Clone, Debug, PartialEq)]
pub enum LogOutcome {
    /// A host stored (heartbeat, write, health transition).
    Stored(Arc<Host>),
    /// A host removed: its last state at the deletion's version.
    Deleted(Arc<Host>),
    /// Nothing changed (unknown host, stale transition, skipped entry, already applied).
    Unchanged,
    /// A write whose resourceVersion precondition failed when it was applied (another write
    /// came first).
    Conflict(String),
}

/// Outcomes of writes kept for their publishers; older ones are dropped.
const OUTCOMES_KEPT: usize = 4096;

/// What the inventory tracks once, under the store's lock.
#[derive(Debug)]
struct Extra {
    /// hostId -> name of the object its heartbeats last went to.
    by_id: HashMap<String, String>,
    /// The RV of the last change the resolver can see (see [`resolver_view_eq`]).
    significant_rv: u64,
    /// Since when the heartbeat source is connected; `None` while disconnected.
    connected_since: Option<SystemTime>,
    /// The hosts come from an inventory file ([`LiveInventory::replace_from_file`]): they keep
    /// the file's conditions, never age, and the API does not write them.
    from_file: bool,
    /// While a log entry is applied: its position (the time and identity of every change).
    log_at: Option<LogPosition>,
    /// While a write entry (`LogEntry::Write`) is applied.
    log_write: bool,
    /// Outcomes of API writes and deletes applied from the log, by sequence.
    outcomes: std::collections::BTreeMap<u64, LogOutcome>,
}

/// The hosts by name, as served (metadata and conditions set), with their tracking.
type Inner = State<String, Host, Tracking, Extra>;

#[derive(Debug)]
struct Cached {
    snapshot: Arc<Snapshot>,
    significant_rv: u64,
    built: Instant,
}

/// The live, in-memory, watchable host inventory. Thread-safe; share it as `Arc<LiveInventory>`.
#[derive(Debug)]
pub struct LiveInventory {
    config: LiveConfig,
    store: Store<String, Host, Tracking, Extra>,
    significant_rv: AtomicU64,
    cache: ArcSwap<Cached>,
    uid_seed: RandomState,
    uid_counter: AtomicU64,
    /// Log mode: the sequence of the last log entry applied (0 before the first).
    applied: watch::Sender<u64>,
    /// Log mode: where API writes go ([`Self::write`], [`Self::remove`]).
    log: OnceLock<Arc<dyn LogPublisher>>,
    /// One copy of each plugin interface list and each condition list the stored hosts hold.
    interned: Interner,
}

/// Most distinct lists of one kind kept for sharing: real fleets run a handful of builds, and
/// hosts turn Ready in bursts (at start, after a restart); past this (hostile or broken
/// heartbeats, a fleet whose every host joined at another second), lists no stored host holds
/// are dropped, and a new list is stored unshared while the set stays full.
const MAX_INTERNED_LISTS: usize = 4096;

/// One copy of each distinct list of one kind that stored hosts hold.
#[derive(Debug)]
struct Interned<T>(std::sync::Mutex<std::collections::HashSet<SharedList<T>>>);

impl<T> Default for Interned<T> {
    fn default() -> Self {
        Self(std::sync::Mutex::default())
    }
}

impl<T: Eq + std::hash::Hash> Interned<T> {
    fn lists(&self) -> MutexGuard<'_, std::collections::HashSet<SharedList<T>>> {
        // A panic elsewhere while holding it leaves a valid set.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `list` replaced by the shared copy (a new list becomes the shared copy).
    fn intern(&self, list: &mut SharedList<T>) {
        // Already shared (interned before, or copied from a stored host).
        if list.holders() > 1 {
            return;
        }
        let mut lists = self.lists();
        if let Some(shared) = lists.get(&list[..]) {
            *list = shared.clone();
            return;
        }
        if lists.len() >= MAX_INTERNED_LISTS {
            lists.retain(|l| l.holders() > 1);
        }
        if lists.len() < MAX_INTERNED_LISTS {
            lists.insert(list.clone());
        }
    }

    /// Drops the lists no stored host holds any more.
    fn prune(&self) {
        self.lists().retain(|l| l.holders() > 1);
    }
}

/// Most bytes of interface-list text remembered for [`Interner::list_from_text`]: a fleet
/// runs a handful of builds, whose lists are a few KB each; past this (hostile or broken
/// heartbeats), the texts are forgotten and looked up afresh.
const MAX_LIST_TEXT_BYTES: usize = 4 << 20;

/// Interface-list texts seen in heartbeats and the shared list each stands for.
#[derive(Debug, Default)]
struct ListTexts {
    lists: HashMap<Box<str>, InterfaceList>,
    bytes: usize,
}

/// Interns what hosts hold alike: hosts of one build heartbeat the same plugin interface lists
/// (about 3 KB per host with the `wash` plugin set), and hosts that turned Ready in the same
/// second have the same conditions (about 400 bytes), so the inventory keeps one copy of each.
/// The lists are also found by the JSON text they arrive as: hosts of one build send them byte
/// for byte alike, so most heartbeats' lists are neither parsed nor hashed as lists.
#[derive(Debug, Default)]
struct Interner {
    interfaces: Interned<HostWitInterface>,
    conditions: Interned<Condition>,
    texts: std::sync::Mutex<ListTexts>,
}

impl Interner {
    fn texts(&self) -> MutexGuard<'_, ListTexts> {
        // A panic elsewhere while holding it leaves a valid map.
        self.texts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shared list that a heartbeat's list `text` stands for: found by its text, else
    /// parsed, interned and remembered by its text. A list that does not parse is the
    /// heartbeat's error, as when the whole heartbeat is parsed at once.
    fn list_from_text(&self, text: ListText<'_>) -> Result<Option<InterfaceList>, HeartbeatError> {
        let Some(json) = text.json() else {
            let mut empty = stored_list(Vec::new());
            self.intern_list(&mut empty);
            return Ok(empty);
        };
        if let Some(found) = self.texts().lists.get(json) {
            return Ok(Some(found.clone()));
        }
        let mut list = stored_list(text.parse()?);
        self.intern_list(&mut list);
        if let Some(list) = &list {
            let mut texts = self.texts();
            if texts.bytes + json.len() > MAX_LIST_TEXT_BYTES {
                *texts = ListTexts::default();
            }
            if json.len() <= MAX_LIST_TEXT_BYTES {
                texts.bytes += json.len();
                texts.lists.insert(json.into(), list.clone());
            }
        }
        Ok(list)
    }

    fn intern_list(&self, list: &mut Option<InterfaceList>) {
        if let Some(list) = list.as_mut() {
            self.interfaces.intern(list);
        }
    }

    /// `host`'s lists replaced by the shared copies (a new list becomes the shared copy).
    fn intern_host(&self, host: &mut Host) {
        let Some(status) = host.status.as_mut() else {
            return;
        };
        for list in [status.imports.as_mut(), status.exports.as_mut()]
            .into_iter()
            .flatten()
        {
            self.interfaces.intern(list);
        }
        if let Some(conditions) = status.conditions.as_mut() {
            self.conditions.intern(conditions);
        }
    }

    /// Drops the lists no stored host holds any more (nor the texts that stand for them).
    fn prune(&self) {
        {
            let mut texts = self.texts();
            // Held by the text map and the interned set only.
            texts.lists.retain(|_, list| list.holders() > 2);
            texts.bytes = texts.lists.keys().map(|k| k.len()).sum();
        }
        self.interfaces.prune();
        self.conditions.prune();
    }
}

impl LiveInventory {
    /// An empty inventory. The settle window starts now (process start).
    pub fn new(config: LiveConfig) -> Arc<Self> {
        let store = Store::new(
            config.history,
            1 << 16,
            // A receiver that lags this far is told so and resumes from the history.
            config.history.clamp(16, BROADCAST_CAPACITY),
            Extra {
                by_id: HashMap::new(),
                significant_rv: 0,
                connected_since: Some(SystemTime::now()),
                from_file: false,
                log_at: None,
                log_write: false,
                outcomes: std::collections::BTreeMap::new(),
            },
        );
        Arc::new(Self {
            store,
            config,
            significant_rv: AtomicU64::new(0),
            cache: ArcSwap::from_pointee(Cached {
                snapshot: Arc::new(Snapshot::default()),
                significant_rv: 0,
                built: Instant::now(),
            }),
            uid_seed: RandomState::new(),
            uid_counter: AtomicU64::new(0),
            applied: watch::channel(0).0,
            log: OnceLock::new(),
            interned: Interner::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    /// The current resource version (increases with every change).
    pub fn resource_version(&self) -> u64 {
        self.store.resource_version()
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there is no host.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many hosts are `Ready=True`, `False` and `Unknown` (for the `hosts` metric; counted
    /// under the lock from each host's health, nothing cloned).
    pub fn ready_counts(&self) -> ReadyCounts {
        let mut counts = ReadyCounts::default();
        let inner = self.lock();
        if inner.extra.from_file {
            // File hosts carry their own conditions.
            for (_, entry) in inner.iter() {
                match entry.object().ready_status() {
                    Some("True") => counts.ready += 1,
                    Some("False") => counts.not_ready += 1,
                    _ => counts.unknown += 1,
                }
            }
            return counts;
        }
        for (_, entry) in inner.iter() {
            match entry.meta.health {
                Health::Reporting => counts.ready += 1,
                Health::NotReporting => counts.unknown += 1,
                Health::Lost(_) => counts.not_ready += 1,
            }
        }
        counts
    }

    /// Every host, sorted by name, and the resource version the list is consistent with. The
    /// hosts are shared, not copied: a list of 10,000 hosts costs 10,000 reference counts under
    /// the lock, and only the page a client is sent gets encoded.
    pub fn list(&self) -> (Vec<Arc<Host>>, u64) {
        let inner = self.lock();
        let hosts = inner.iter().map(|(_, e)| e.object().clone()).collect();
        (hosts, inner.resource_version())
    }

    /// One host by name.
    pub fn get(&self, name: &str) -> Option<Host> {
        self.lock().get(name).map(|e| Host::clone(e.object()))
    }

    /// Starts a watch.
    ///
    /// - `since = None`: no replay; the caller lists first (the list's RV tells where the live
    ///   events start: every received event has a higher RV).
    /// - `since = Some(rv)`: the events with a resource version above `rv` still in the history,
    ///   then live ones. `Some(rv)` older than the history is [`WatchError::Gone`].
    ///
    /// The receiver is subscribed before the history is read, under the same lock that orders
    /// every change, so no event is lost and none is both replayed and received. Consumers
    /// should still drop any received event whose RV is not above the last one they handled
    /// (cheap insurance). A receiver that falls `min(history, BROADCAST_CAPACITY)` events
    /// behind gets `RecvError::Lagged`: end the watch; the client resumes from its last RV (or relists on
    /// 410).
    pub fn watch(
        &self,
        since: Option<u64>,
    ) -> Result<(Vec<WatchEvent>, broadcast::Receiver<WatchEvent>), WatchError> {
        self.store.watch(since)
    }

    /// Applies a heartbeat received at `now` and returns the host as stored.
    ///
    /// Call [`HostHeartbeat::validate`] first: a heartbeat without an id is stored under a
    /// placeholder name. The object's name is the heartbeat's `friendlyName` (when it is a valid
    /// object name), else `host-<id>`; if another live host already holds that name (two hosts
    /// generated the same friendly name), the newcomer is `host-<id>`. A host whose name changes
    /// (same id) moves: the old object is deleted.
    pub fn apply_heartbeat(&self, hb: HostHeartbeat, now: SystemTime) -> Host {
        Host::clone(&self.apply_heartbeat_shared(hb, now))
    }

    /// [`Self::apply_heartbeat`] without copying the result.
    pub fn apply_heartbeat_shared(&self, hb: HostHeartbeat, now: SystemTime) -> Arc<Host> {
        self.apply_stored_heartbeat(stored_lists(hb), now)
    }

    /// Decodes a heartbeat payload received on `subject` with its interface lists shared
    /// ([`HostHeartbeat::decode_from_subject`], but a list whose JSON text this inventory has
    /// seen before is taken as it was then, without parsing it): the ingestion's decoding.
    pub fn decode_heartbeat(
        &self,
        subject: &str,
        payload: &[u8],
    ) -> Result<StoredHeartbeat, HeartbeatError> {
        HeartbeatText::decode_text_from_subject(subject, payload)?
            .try_map_lists(|text| self.interned.list_from_text(text))
    }

    /// [`Self::apply_heartbeat_shared`] of a heartbeat from [`Self::decode_heartbeat`] (the
    /// ingestion path).
    pub fn apply_stored_heartbeat(&self, hb: StoredHeartbeat, now: SystemTime) -> Arc<Host> {
        let preferred = name_for_heartbeat(&hb);
        let fallback = fallback_name(&hb.id);
        // Built before taking the lock, by moving the heartbeat's strings and lists.
        let mut host = host_from_heartbeat(hb, now);
        // Before the store's lock: interning hashes the lists.
        self.interned.intern_host(&mut host);
        let mut inner = self.lock();
        self.heartbeat_locked(&mut inner, preferred, fallback, host, now)
    }

    fn heartbeat_locked(
        &self,
        inner: &mut Inner,
        preferred: String,
        fallback: String,
        host: Host,
        now: SystemTime,
    ) -> Arc<Host> {
        let id = host.host_id.as_str();
        let name = match inner.get(preferred.as_str()) {
            Some(e) if e.object().host_id != id && !matches!(e.meta.health, Health::Lost(_)) => {
                if inner.extra.by_id.get(id) != Some(&fallback) {
                    tracing::warn!(
                        name = %preferred,
                        held_by = %e.object().host_id,
                        host_id = %id,
                        "two live hosts share a friendly name; naming the newcomer {fallback}"
                    );
                }
                fallback
            }
            _ => preferred,
        };
        // The same host under another name before: that object goes.
        match inner.extra.by_id.get(id) {
            Some(old) if *old == name => {}
            Some(old) => {
                let old = old.clone();
                if inner
                    .get(old.as_str())
                    .is_some_and(|e| e.object().host_id == id)
                {
                    self.remove_locked(inner, &old);
                }
                inner.extra.by_id.insert(id.to_string(), name.clone());
            }
            None => {
                inner.extra.by_id.insert(id.to_string(), name.clone());
            }
        }
        self.store_locked(inner, name, host, now)
    }

    /// Creates or replaces a host written through the API (create, update, patch: the caller
    /// has merged the request into the stored object). Returns it as stored.
    ///
    /// The write counts as a heartbeat at `now`: `status.lastSeen` and the conditions are the
    /// server's (the client's are ignored), as are `uid`, `creationTimestamp` and
    /// `resourceVersion`. `metadata.name` (a DNS-1123 subdomain) and `hostId` are required. If
    /// `metadata.resourceVersion` is set and the host exists at another version, the write is a
    /// [`InventoryError::Conflict`] (optimistic concurrency: clear it for an unconditional write).
    pub fn upsert(&self, host: Host, now: SystemTime) -> Result<Host, InventoryError> {
        Self::validate_write(&host)?;
        let mut inner = self.lock();
        self.upsert_locked(&mut inner, host, now)
            .map(|h| Host::clone(&h))
    }

    /// What [`Self::upsert`] checks before taking the lock: a valid name and a host id.
    pub fn validate_write(host: &Host) -> Result<(), InventoryError> {
        let name = host.metadata.name.clone().unwrap_or_default();
        if let Err(message) = validate_name(&name) {
            return Err(InventoryError::Invalid {
                name,
                field: "metadata.name",
                message,
            });
        }
        if host.host_id.trim().is_empty() {
            return Err(InventoryError::Invalid {
                name,
                field: "hostId",
                message: "Required value".into(),
            });
        }
        Ok(())
    }

    /// The resourceVersion precondition of a write (none when `metadata.resourceVersion` is
    /// unset or the host does not exist), checked against this replica's view.
    pub fn check_precondition(&self, host: &Host) -> Result<(), InventoryError> {
        Self::precondition_locked(&self.lock(), host)
    }

    fn precondition_locked(inner: &Inner, host: &Host) -> Result<(), InventoryError> {
        let name = host.metadata.name.clone().unwrap_or_default();
        if let Some(wanted) = host
            .metadata
            .resource_version
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            if let Some(e) = inner.get(name.as_str()) {
                let current = rv_of(e.object()).to_string();
                if wanted != current {
                    return Err(InventoryError::Conflict {
                        name,
                        message: format!(
                            "the object has been modified (resourceVersion {wanted}, current {current}); \
                             please apply your changes to the latest version and try again"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn upsert_locked(
        &self,
        inner: &mut Inner,
        mut host: Host,
        now: SystemTime,
    ) -> Result<Arc<Host>, InventoryError> {
        Self::precondition_locked(inner, &host)?;
        let name = host.metadata.name.clone().unwrap_or_default();
        host.api_version = api_version();
        host.kind = "Host".into();
        let status = host.status.get_or_insert_with(HostStatus::default);
        status.last_seen = Some(rfc3339_seconds(now));
        inner.extra.by_id.insert(host.host_id.clone(), name.clone());
        Ok(self.store_locked(inner, name, host, now))
    }

    /// Removes a host; returns its last state (with the deletion's resourceVersion).
    pub fn delete(&self, name: &str) -> Option<Host> {
        let mut inner = self.lock();
        self.remove_locked(&mut inner, name)
    }

    /// Applies one entry of the inventory log at `at` (log mode: every replica applies the same
    /// entries in the same order, so every replica holds the same hosts at the same
    /// resourceVersions). Every change it makes gets resourceVersion `at.seq` and time
    /// `at.time`; new objects get a uid derived from their name and host id (the same on every
    /// replica). An entry at or below the last applied sequence is ignored (`Unchanged`); one
    /// whose sequence is not above the store's resourceVersion is a [`VersionError`] (the
    /// store was changed outside the log).
    pub fn apply_logged(
        &self,
        at: LogPosition,
        entry: LogEntry,
    ) -> Result<LogOutcome, VersionError> {
        let mut inner = self.lock();
        if at.seq <= *self.applied.borrow() {
            return Ok(LogOutcome::Unchanged);
        }
        inner.begin_version(at.seq)?;
        inner.extra.log_at = Some(at);
        let keep = matches!(entry, LogEntry::Write(_) | LogEntry::Delete { .. });
        let outcome = match entry {
            LogEntry::Heartbeat(hb) => {
                let hb = *hb;
                let preferred = name_for_heartbeat(&hb);
                let fallback = fallback_name(&hb.id);
                let host = host_from_heartbeat(hb, at.time);
                LogOutcome::Stored(
                    self.heartbeat_locked(&mut inner, preferred, fallback, host, at.time),
                )
            }
            LogEntry::Write(host) => {
                inner.extra.log_write = true;
                let result = self.upsert_locked(&mut inner, *host, at.time);
                inner.extra.log_write = false;
                match result {
                    Ok(host) => LogOutcome::Stored(host),
                    Err(e) => LogOutcome::Conflict(e.to_string()),
                }
            }
            LogEntry::Delete { name } => match self.remove_locked(&mut inner, &name) {
                Some(gone) => LogOutcome::Deleted(Arc::new(gone)),
                None => LogOutcome::Unchanged,
            },
            LogEntry::Health { name, transition } => {
                self.health_locked(&mut inner, &name, &transition, at.time)
            }
            LogEntry::Skip => LogOutcome::Unchanged,
        };
        inner.extra.log_at = None;
        inner.end_version();
        if keep {
            while inner.extra.outcomes.len() >= OUTCOMES_KEPT {
                inner.extra.outcomes.pop_first();
            }
            inner.extra.outcomes.insert(at.seq, outcome.clone());
        }
        // Under the lock: a waiter that sees the sequence finds the outcome.
        self.applied.send_replace(at.seq);
        Ok(outcome)
    }

    /// Log mode from now on: API writes ([`Self::write`], [`Self::remove`]) are published with
    /// `publisher` and applied when read back from the log. Only the first call counts.
    pub fn attach_log(&self, publisher: Arc<dyn LogPublisher>) {
        let _ = self.log.set(publisher);
    }

    /// Whether the inventory is fed by the log ([`Self::attach_log`]).
    pub fn is_logged(&self) -> bool {
        self.log.get().is_some()
    }

    /// An API write (create, update, patch). In memory mode [`Self::upsert`] at `now`; in log
    /// mode, checked against this replica's view (name, host id, the resourceVersion
    /// precondition), published to the log (the precondition removed: every replica applies the
    /// entry as it is), and answered once this replica has applied it, within [`WRITE_WAIT`].
    pub async fn write(&self, mut host: Host, now: SystemTime) -> Result<Host, InventoryError> {
        let Some(log) = self.log.get() else {
            return self.upsert(host, now);
        };
        Self::validate_write(&host)?;
        self.check_precondition(&host)?;
        let name = host.metadata.name.clone().unwrap_or_default();
        host.metadata.resource_version = None;
        host.metadata.managed_fields = None;
        // The entry carries the object's identity and its conditions' transition times, so a
        // replica that replays only this entry (the stream keeps the latest per host) gives it
        // the same uid, creation time and conditions.
        match self.get(&name) {
            Some(old) if old.host_id == host.host_id => {
                carry_conditions(&mut host, &old);
                host.metadata.uid = old.metadata.uid;
                host.metadata.creation_timestamp = old.metadata.creation_timestamp;
            }
            _ => {
                host.metadata.uid = None;
                host.metadata.creation_timestamp = None;
                if let Some(status) = host.status.as_mut() {
                    status.conditions = None;
                }
            }
        }
        let payload = serde_json::to_vec(&host).map_err(|e| InventoryError::Invalid {
            name: name.clone(),
            field: "body",
            message: e.to_string(),
        })?;
        let seq = self
            .publish(log.as_ref(), EntryKind::Write, &name, payload)
            .await?;
        match self.take_outcome(seq) {
            Some(LogOutcome::Stored(host)) => Ok(Host::clone(&host)),
            Some(LogOutcome::Conflict(message)) => Err(InventoryError::Conflict { name, message }),
            _ => self.get(&name).ok_or(InventoryError::Unavailable {
                message: format!("the write at sequence {seq} left no host {name:?}"),
            }),
        }
    }

    /// An API delete: [`Self::delete`] in memory mode; in log mode published and answered once
    /// applied here (`Ok(None)`: no such host).
    pub async fn remove(&self, name: &str) -> Result<Option<Host>, InventoryError> {
        let Some(log) = self.log.get() else {
            return Ok(self.delete(name));
        };
        if self.get(name).is_none() {
            return Ok(None);
        }
        let seq = self
            .publish(log.as_ref(), EntryKind::Delete, name, Vec::new())
            .await?;
        Ok(match self.take_outcome(seq) {
            Some(LogOutcome::Deleted(host)) => Some(Host::clone(&host)),
            _ => None,
        })
    }

    async fn publish(
        &self,
        log: &dyn LogPublisher,
        kind: EntryKind,
        name: &str,
        payload: Vec<u8>,
    ) -> Result<u64, InventoryError> {
        let seq =
            log.publish(kind, name, payload)
                .await
                .map_err(|e| InventoryError::Unavailable {
                    message: e.to_string(),
                })?;
        if !self.wait_applied(seq, WRITE_WAIT).await {
            return Err(InventoryError::Timeout {
                seq,
                waited: WRITE_WAIT,
            });
        }
        Ok(seq)
    }

    /// The sequence of the last log entry applied (0 before the first, and in memory mode).
    pub fn applied_sequence(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the log entry `seq` has been applied (`false` after `timeout`).
    pub async fn wait_applied(&self, seq: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|applied| *applied >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The outcome of the write or delete at `seq` (once; `None` when not applied yet or no
    /// longer kept).
    pub fn take_outcome(&self, seq: u64) -> Option<LogOutcome> {
        self.lock().extra.outcomes.remove(&seq)
    }

    /// Log mode, on the leader: the health transitions due at `now` by the same rules as
    /// [`Self::tick`] (silence, settle window, retention), without applying them: the leader
    /// publishes them to the log and every replica applies them from there.
    pub fn due_transitions(&self, now: SystemTime) -> Vec<(String, HealthTransition)> {
        let inner = self.lock();
        if inner.extra.from_file {
            return Vec::new();
        }
        let settled = inner
            .extra
            .connected_since
            .is_some_and(|since| elapsed(since, now) >= self.config.settle);
        let mut due = Vec::new();
        for (name, entry) in inner.iter() {
            let silence = elapsed(entry.meta.last_seen, now);
            let (state, reporting_since) = match entry.meta.health {
                Health::Lost(since) => {
                    if settled && elapsed(since, now) >= self.config.retention {
                        (HealthState::Removed, None)
                    } else {
                        continue;
                    }
                }
                _ if silence <= self.config.reporting_grace() => continue,
                Health::Reporting if silence <= self.config.heartbeat_timeout || !settled => {
                    (HealthState::Unknown, None)
                }
                Health::NotReporting if silence <= self.config.heartbeat_timeout || !settled => {
                    continue
                }
                health => {
                    let since = (health == Health::NotReporting)
                        .then(|| condition_since(entry.object(), "Reporting", "False"))
                        .flatten();
                    (HealthState::False, since)
                }
            };
            due.push((
                name.clone(),
                HealthTransition {
                    host_id: entry.object().host_id.clone(),
                    beat: entry.meta.beat,
                    state,
                    reporting_since,
                },
            ));
        }
        due
    }

    fn health_locked(
        &self,
        inner: &mut Inner,
        name: &str,
        transition: &HealthTransition,
        now: SystemTime,
    ) -> LogOutcome {
        let current = inner
            .get(name)
            .filter(|e| e.object().host_id == transition.host_id && e.meta.beat == transition.beat)
            .map(|e| Host::clone(e.object()));
        let Some(mut host) = current else {
            return LogOutcome::Unchanged;
        };
        let health = match transition.state {
            HealthState::Removed => {
                tracing::info!(host = %name, "removing host that has not reported recently");
                return match self.remove_locked(inner, name) {
                    Some(gone) => LogOutcome::Deleted(Arc::new(gone)),
                    None => LogOutcome::Unchanged,
                };
            }
            HealthState::Unknown => Health::NotReporting,
            HealthState::False => Health::Lost(now),
        };
        if let Some(tracking) = inner.meta_mut(name) {
            tracking.health = health;
        }
        set_conditions(&mut host, health, now);
        if let Some(since) = &transition.reporting_since {
            if let Some(shared) = host.status.as_mut().and_then(|s| s.conditions.as_mut()) {
                let mut conditions = shared.to_vec();
                for c in conditions
                    .iter_mut()
                    .filter(|c| c.type_ == "Reporting" && c.status == "False")
                {
                    c.last_transition_time = Some(since.clone());
                }
                *shared = conditions.into();
            }
        }
        LogOutcome::Stored(self.commit_locked(inner, name.to_string(), host, now))
    }

    /// Ages hosts at `now`: conditions follow the silence of each host (see the module docs);
    /// hosts `Ready=False` for longer than `retention` are removed. Emits `Modified`/`Deleted`.
    pub fn tick(&self, now: SystemTime) {
        self.interned.prune();
        let mut inner = self.lock();
        if inner.extra.from_file {
            return;
        }
        let settled = inner
            .extra
            .connected_since
            .is_some_and(|since| elapsed(since, now) >= self.config.settle);
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        for (name, entry) in inner.iter() {
            let silence = elapsed(entry.meta.last_seen, now);
            let health = match entry.meta.health {
                // Only a heartbeat brings a host back.
                Health::Lost(since) => {
                    if settled && elapsed(since, now) >= self.config.retention {
                        removed.push(name.clone());
                    }
                    continue;
                }
                _ if silence <= self.config.reporting_grace() => Health::Reporting,
                _ if silence <= self.config.heartbeat_timeout || !settled => Health::NotReporting,
                _ => Health::Lost(now),
            };
            if health != entry.meta.health {
                changed.push((name.clone(), health));
            }
        }
        for (name, health) in changed {
            let Some(tracking) = inner.meta_mut(name.as_str()) else {
                continue;
            };
            tracking.health = health;
            let Some(mut host) = inner.get(name.as_str()).map(|e| Host::clone(e.object())) else {
                continue;
            };
            set_conditions(&mut host, health, now);
            self.commit_locked(&mut inner, name, host, now);
        }
        for name in removed {
            tracing::info!(host = %name, "removing host that has not reported recently");
            self.remove_locked(&mut inner, &name);
        }
    }

    /// Replaces every host with the hosts of an inventory file (`--inventory`), so that what
    /// admission judges against is exactly what the `hosts` API lists and watches report. Hosts
    /// keep the conditions the file gives them and never age; an unchanged host keeps its
    /// resourceVersion (no event), a changed one is `Modified`, a new one `Added`, one no longer in
    /// the file `Deleted`. From the first call on the inventory is file-backed
    /// ([`Self::is_file_backed`]): the API refuses writes, the file is the source.
    pub fn replace_from_file(&self, hosts: Vec<Host>, now: SystemTime) {
        let mut inner = self.lock();
        inner.extra.from_file = true;
        let mut wanted: HashMap<String, Host> = HashMap::with_capacity(hosts.len());
        for host in hosts {
            match host.metadata.name.clone().filter(|n| !n.is_empty()) {
                // A later object of the same name wins, as a later document of `kubectl apply`.
                Some(name) => {
                    wanted.insert(name, host);
                }
                None => tracing::warn!("inventory file: ignoring a Host without metadata.name"),
            }
        }
        let gone: Vec<String> = inner
            .iter()
            .map(|(name, _)| name.clone())
            .filter(|name| !wanted.contains_key(name))
            .collect();
        for name in gone {
            self.remove_locked(&mut inner, &name);
        }
        let mut names: Vec<String> = wanted.keys().cloned().collect();
        names.sort();
        for name in names {
            let Some(mut host) = wanted.remove(&name) else {
                continue;
            };
            host.api_version = api_version();
            host.kind = "Host".into();
            // The server's metadata, never the file's (it may be `kubectl get -o yaml` output).
            match inner.get(name.as_str()).map(|e| Host::clone(e.object())) {
                Some(old) => {
                    host.metadata.uid = old.metadata.uid.clone();
                    host.metadata.creation_timestamp = old.metadata.creation_timestamp.clone();
                    host.metadata.resource_version = old.metadata.resource_version.clone();
                    host.metadata.managed_fields = None;
                    if host == old {
                        continue;
                    }
                }
                None => {
                    host.metadata.uid = Some(self.new_uid());
                    host.metadata.creation_timestamp = Some(Time(to_timestamp(now)));
                    host.metadata.resource_version = None;
                    host.metadata.managed_fields = None;
                }
            }
            inner.extra.by_id.insert(host.host_id.clone(), name.clone());
            self.commit_locked(&mut inner, name, host, now);
        }
    }

    /// Whether the hosts come from an inventory file (the API then refuses writes).
    pub fn is_file_backed(&self) -> bool {
        self.lock().extra.from_file
    }

    /// The heartbeat source (NATS) is connected (again) at `now`: the settle window starts.
    pub fn mark_connected(&self, now: SystemTime) {
        self.lock().extra.connected_since = Some(now);
    }

    /// The heartbeat source lost its connection: until the next [`Self::mark_connected`] no host
    /// turns False or is removed (silent hosts stay Unknown).
    pub fn mark_disconnected(&self, _now: SystemTime) {
        self.lock().extra.connected_since = None;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.store.lock()
    }

    fn new_uid(&self) -> String {
        let n = self.uid_counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let hi = self.uid_seed.hash_one((n, nanos, 1u8));
        let lo = self.uid_seed.hash_one((n, nanos, 2u8));
        let b = ((hi as u128) << 64 | lo as u128).to_be_bytes();
        format!(
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:01x}{:01x}{:02x}-{}",
            b[0],
            b[1],
            b[2],
            b[3],
            b[4],
            b[5],
            b[6] & 0x0f,
            b[7],
            8 | (b[8] & 0x03),
            b[8] >> 4,
            b[9],
            b[10..16]
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
        )
    }

    /// Stores a host built from a heartbeat or an API write (conditions: Reporting).
    fn store_locked(
        &self,
        inner: &mut Inner,
        name: String,
        mut host: Host,
        now: SystemTime,
    ) -> Arc<Host> {
        // Another host (by id) held this name and is gone: a new object replaces it.
        if inner
            .get(name.as_str())
            .is_some_and(|e| e.object().host_id != host.host_id)
        {
            self.remove_locked(inner, &name);
        }
        host.metadata.name = Some(name.clone());
        let beat = inner.extra.log_at.map_or(0, |at| at.seq);
        let logged = inner.extra.log_at.is_some();
        // A write from the log determines the whole object by itself (its publisher put the
        // uid, creation time and conditions it knew in it), so a replica that missed earlier
        // entries of the host (compacted, or read later) stores the same object.
        let whole = inner.extra.log_write;
        match inner.meta_mut(name.as_str()) {
            Some(tracking) if !whole => {
                tracking.last_seen = now;
                tracking.health = Health::Reporting;
                tracking.beat = beat;
                let Some(old) = inner.get(name.as_str()).map(|e| e.object().clone()) else {
                    return Arc::new(host); // unreachable: the entry was just found
                };
                host.metadata.uid.clone_from(&old.metadata.uid);
                host.metadata
                    .creation_timestamp
                    .clone_from(&old.metadata.creation_timestamp);
                host.metadata
                    .resource_version
                    .clone_from(&old.metadata.resource_version);
                if logged {
                    // From the heartbeat itself, so a replica that replays only the host's
                    // latest heartbeat (the stream keeps one per host) gives the same time.
                    if let Some(started) = started_at(&host) {
                        host.metadata.creation_timestamp = Some(started);
                    }
                }
                carry_conditions(&mut host, &old);
                set_conditions(&mut host, Health::Reporting, now);
                // In log mode every entry is a change, so a replica that replays only the
                // latest entry of a host (the stream keeps one per subject) gives it the same
                // resourceVersion as one that saw them all.
                if host == *old && !logged {
                    return old;
                }
                self.commit_locked(inner, name, host, now)
            }
            _ => {
                // A whole write over an existing entry: its tracking restarts here too.
                if let Some(tracking) = inner.meta_mut(name.as_str()) {
                    tracking.last_seen = now;
                    tracking.health = Health::Reporting;
                    tracking.beat = beat;
                }
                host.metadata.uid = Some(match (logged, &host.metadata.uid) {
                    // A write carries the uid its publisher chose (or kept).
                    (true, Some(uid)) if !uid.is_empty() => uid.clone(),
                    (true, _) => log_uid(&name, &host.host_id),
                    (false, _) => self.new_uid(),
                });
                host.metadata.creation_timestamp =
                    match (logged, host.metadata.creation_timestamp.take()) {
                        (true, Some(t)) => Some(t),
                        (true, None) if !whole => {
                            Some(started_at(&host).unwrap_or_else(|| Time(to_timestamp(now))))
                        }
                        _ => Some(Time(to_timestamp(now))),
                    };
                host.metadata.resource_version = None;
                set_conditions(&mut host, Health::Reporting, now);
                self.commit_locked(inner, name, host, now)
            }
        }
    }

    /// Stores `host` under `name` at the next resourceVersion (a new entry is tracked as
    /// reporting since `now`), notes whether the resolver can see the change, and returns the
    /// stored host.
    fn commit_locked(
        &self,
        inner: &mut Inner,
        name: String,
        mut host: Host,
        now: SystemTime,
    ) -> Arc<Host> {
        // Every other way in (API writes, log entries, the file): at once when already shared.
        self.interned.intern_host(&mut host);
        let significant = match inner.get(name.as_str()) {
            Some(old) => !resolver_view_eq(old.object(), &host),
            None => true,
        };
        if significant {
            // Published before the change's resourceVersion, so a reader that sees the new
            // resourceVersion also sees that the resolver's view changed.
            self.mark_significant(inner, inner.next_resource_version());
        }
        let tracking = Tracking {
            last_seen: now,
            health: Health::Reporting,
            beat: inner.extra.log_at.map_or(0, |at| at.seq),
        };
        inner.put(name, host, tracking)
    }

    fn mark_significant(&self, inner: &mut Inner, rv: u64) {
        inner.extra.significant_rv = rv;
        self.significant_rv.store(rv, Ordering::Release);
    }

    fn remove_locked(&self, inner: &mut Inner, name: &str) -> Option<Host> {
        let host_id = inner.get(name)?.object().host_id.clone();
        if inner.extra.by_id.get(&host_id).map(String::as_str) == Some(name) {
            inner.extra.by_id.remove(&host_id);
        }
        self.mark_significant(inner, inner.next_resource_version());
        let removed = inner.remove(name)?;
        Some(Host::clone(&removed.deleted))
    }
}

impl InventorySource for LiveInventory {
    fn snapshot(&self) -> Arc<Snapshot> {
        let cached = self.cache.load();
        let rv = self.store.resource_version();
        let significant = self.significant_rv.load(Ordering::Acquire);
        let fresh = cached.significant_rv == significant
            && (cached.snapshot.resource_version == rv
                || cached.built.elapsed() < SNAPSHOT_MAX_AGE);
        if fresh {
            return cached.snapshot.clone();
        }
        let inner = self.lock();
        let snapshot = Arc::new(Snapshot {
            // The stored hosts are shared, not copied: the lock is held for a pointer per host.
            hosts: Hosts::shared(inner.iter().map(|(_, e)| e.object().clone()).collect()),
            resource_version: inner.resource_version(),
        });
        self.cache.store(Arc::new(Cached {
            snapshot: snapshot.clone(),
            significant_rv: inner.extra.significant_rv,
            built: Instant::now(),
        }));
        snapshot
    }
}

/// Log mode: a heartbeat host's creation time is its `startedAt` (to the second; wasmCloud
/// hosts get a new id at every start, so it is fixed for the object).
fn started_at(host: &Host) -> Option<Time> {
    let t: Timestamp = host.status.as_ref()?.started_at.as_deref()?.parse().ok()?;
    Timestamp::from_second(t.as_second()).ok().map(Time)
}

/// The `lastTransitionTime` of condition `type_` when its status is `status`.
fn condition_since(host: &Host, type_: &str, status: &str) -> Option<String> {
    host.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)?
        .last_transition_time
        .clone()
}

/// Log mode: the uid of a host object, the same on every replica (derived from its name and
/// host id, so a replica replaying the log gives it the same uid).
fn log_uid(name: &str, host_id: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("wasmgate.dev/hosts/{name}/{host_id}").as_bytes(),
    );
    let b = digest.as_ref();
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "{}-{}-5{}-{:x}{}-{}",
        hex(0..4),
        hex(4..6),
        &hex(6..8)[1..],
        8 | (b[8] & 0x03),
        &hex(8..10)[1..],
        hex(10..16)
    )
}

fn elapsed(since: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(since).unwrap_or_default()
}

fn to_timestamp(t: SystemTime) -> Timestamp {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn api_version() -> String {
    format!("{WASMGATE_GROUP}/{WASMGATE_VERSION}")
}

/// Whether `name` is a valid object name (DNS-1123 subdomain).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Required value".into());
    }
    if name.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    if crate::crd::is_dns_subdomain(name) {
        Ok(())
    } else {
        Err(format!(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, \
             '-' or '.', and must start and end with an alphanumeric character (got {name:?})"
        ))
    }
}

/// `host-<id>`, made a valid name whatever the id holds.
fn fallback_name(id: &str) -> String {
    let mut s: String = id
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_matches('-').to_string();
    s.truncate(240);
    let s = s.trim_end_matches('-');
    if s.is_empty() {
        "host-unidentified".into()
    } else {
        format!("host-{s}")
    }
}

fn name_for_heartbeat<L>(hb: &HostHeartbeat<L>) -> String {
    if validate_name(&hb.friendly_name).is_ok() {
        hb.friendly_name.clone()
    } else {
        fallback_name(&hb.id)
    }
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn or_unknown(s: String) -> Option<String> {
    Some(if s.is_empty() {
        "unknown".to_string()
    } else {
        s
    })
}

fn wit(list: Vec<WitInterface>) -> Option<Vec<HostWitInterface>> {
    // Not collected in place (that would keep the larger WitInterface allocation), and the
    // interface lists trimmed to size: these lists live as long as the host.
    let mut out = Vec::with_capacity(list.len());
    out.extend(list.into_iter().map(|mut w| {
        w.interfaces.shrink_to_fit();
        HostWitInterface {
            namespace: w.namespace,
            package: w.package,
            version: non_empty(w.version),
            interfaces: w.interfaces,
            name: non_empty(w.name),
        }
    }));
    Some(out)
}

fn saturating_i64(v: u64) -> Option<i64> {
    Some(i64::try_from(v).unwrap_or(i64::MAX))
}

/// The Host object a heartbeat describes (no metadata beyond labels; no conditions). Required
/// status fields absent from the heartbeat get upstream's placeholders (`unknown`, `0`).
pub fn host_from_heartbeat(hb: StoredHeartbeat, now: SystemTime) -> Host {
    let cpu = if hb.system_cpu_usage.is_finite() {
        hb.system_cpu_usage
    } else {
        0.0
    };
    Host {
        api_version: api_version(),
        kind: "Host".into(),
        metadata: ObjectMeta {
            labels: (!hb.labels.is_empty()).then_some(hb.labels),
            ..ObjectMeta::default()
        },
        host_id: hb.id,
        hostname: non_empty(hb.hostname),
        http_port: (hb.http_port != 0).then_some(hb.http_port),
        environment: non_empty(hb.environment),
        status: Some(HostStatus {
            version: or_unknown(hb.version),
            os_name: or_unknown(hb.os_name),
            os_arch: or_unknown(hb.os_arch),
            os_kernel: or_unknown(hb.os_kernel),
            system_cpu_usage: Some(format!("{cpu}")),
            system_memory_total: saturating_i64(hb.system_memory_total),
            system_memory_free: saturating_i64(hb.system_memory_free),
            component_count: saturating_i64(hb.component_count),
            workload_count: saturating_i64(hb.workload_count),
            last_seen: Some(rfc3339_seconds(now)),
            started_at: hb
                .started_at
                .and_then(|t| Timestamp::try_from(t).ok())
                .map(timestamp::format_proto),
            conditions: None,
            imports: hb.imports,
            exports: hb.exports,
        }),
    }
}

/// A heartbeat's parsed interface list as the inventory stores it (not yet interned).
fn stored_list(list: Vec<WitInterface>) -> Option<InterfaceList> {
    wit(list).map(InterfaceList::from)
}

/// Copies `old`'s conditions into `host` (so transition times carry over).
fn carry_conditions(host: &mut Host, old: &Host) {
    let conditions = old.status.as_ref().and_then(|s| s.conditions.clone());
    host.status
        .get_or_insert_with(HostStatus::default)
        .conditions = conditions;
}

/// Sets Reporting and Ready for `health`, keeping each condition's `lastTransitionTime` while
/// its status stays the same.
fn set_conditions(host: &mut Host, health: Health, now: SystemTime) {
    let (reporting, ready) = match health {
        Health::Reporting => (("True", "Available", None), ("True", "Available", None)),
        Health::NotReporting => (
            ("False", "Reconcile", Some(MSG_NO_HEARTBEAT)),
            ("Unknown", "Reconcile", Some(MSG_NOT_REPORTING)),
        ),
        Health::Lost(_) => (
            ("False", "Reconcile", Some(MSG_NO_HEARTBEAT)),
            ("False", "Reconcile", Some(MSG_NOT_REPORTED_RECENTLY)),
        ),
    };
    let status = host.status.get_or_insert_with(HostStatus::default);
    let old = status.conditions.take().unwrap_or_default();
    let stamp = rfc3339_seconds(now);
    let make = |type_: &str, (st, reason, message): (&str, &str, Option<&str>)| {
        let transition = old
            .iter()
            .find(|c| c.type_ == type_ && c.status == st)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| stamp.clone());
        Condition {
            type_: type_.into(),
            status: st.into(),
            observed_generation: None,
            last_transition_time: Some(transition),
            last_probe_time: None,
            reason: Some(reason.into()),
            message: message.map(Into::into),
        }
    };
    let conditions = [make("Reporting", reporting), make("Ready", ready)];
    // Unchanged (the usual heartbeat): keep the shared copy rather than a new one per host.
    status.conditions = Some(if old[..] == conditions {
        old
    } else {
        Vec::from(conditions).into()
    });
}

/// Equality in everything the resolver reads (all but lastSeen, CPU, memory, counts, metadata
/// versions and condition timestamps).
fn resolver_view_eq(a: &Host, b: &Host) -> bool {
    let conds_eq = |x: &HostStatus, y: &HostStatus| {
        let (x, y) = (
            x.conditions.as_deref().unwrap_or_default(),
            y.conditions.as_deref().unwrap_or_default(),
        );
        x.len() == y.len()
            && x.iter()
                .zip(y)
                .all(|(c, d)| c.type_ == d.type_ && c.status == d.status)
    };
    let status_eq = match (&a.status, &b.status) {
        (None, None) => true,
        (Some(sa), Some(sb)) => {
            sa.version == sb.version
                && sa.os_name == sb.os_name
                && sa.os_arch == sb.os_arch
                && sa.os_kernel == sb.os_kernel
                && sa.started_at == sb.started_at
                && sa.imports == sb.imports
                && sa.exports == sb.exports
                && conds_eq(sa, sb)
        }
        _ => false,
    };
    status_eq
        && a.metadata.name == b.metadata.name
        && a.metadata.labels == b.metadata.labels
        && a.host_id == b.host_id
        && a.hostname == b.hostname
        && a.http_port == b.http_port
        && a.environment == b.environment
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn cfg() -> LiveConfig {
        LiveConfig {
            heartbeat_timeout: Duration::from_secs(60),
            retention: Duration::from_secs(300),
            settle: Duration::from_secs(60),
            history: 100,
        }
    }

    fn inv(config: LiveConfig) -> Arc<LiveInventory> {
        let inv = LiveInventory::new(config);
        // Connected long before t(0): settled.
        inv.mark_connected(t(0) - Duration::from_secs(3600));
        inv
    }

    fn file_host(name: &str, ready: &str) -> Host {
        let mut host = Host::clone(
            &LiveInventory::new(cfg())
                .apply_heartbeat_shared(hb(&format!("id-{name}"), name), t(0)),
        );
        host.metadata.uid = Some("from-the-file".into());
        host.metadata.resource_version = Some("999".into());
        let status = host.status.as_mut().unwrap();
        let mut conditions = status.conditions.as_deref().unwrap_or_default().to_vec();
        for c in &mut conditions {
            if c.type_ == "Ready" {
                c.status = ready.into();
            }
        }
        status.conditions = Some(conditions.into());
        host
    }

    #[test]
    fn file_hosts_replace_everything_keep_their_conditions_and_never_age() {
        let inv = inv(cfg());
        inv.apply_heartbeat(hb("id-x", "from-nats"), t(0));
        assert!(!inv.is_file_backed());
        inv.replace_from_file(vec![file_host("a", "True"), file_host("b", "False")], t(1));
        assert!(inv.is_file_backed());
        let (hosts, rv) = inv.list();
        let names: Vec<_> = hosts
            .iter()
            .filter_map(|h| h.metadata.name.clone())
            .collect();
        assert_eq!(names, ["a", "b"], "the file replaces every host");
        let a = inv.get("a").unwrap();
        assert_ne!(
            a.metadata.uid.as_deref(),
            Some("from-the-file"),
            "server metadata"
        );
        assert_eq!(
            inv.get("b").unwrap().ready_status(),
            Some("False"),
            "the file's conditions"
        );
        let counts = inv.ready_counts();
        assert_eq!((counts.ready, counts.not_ready), (1, 1));
        // Long silence changes nothing: file hosts do not age.
        inv.tick(t(10_000));
        assert_eq!(inv.list().1, rv);
        assert_eq!(inv.get("a").unwrap().ready_status(), Some("True"));
        // The same file again: no change, no event; an edit: only what changed.
        let (_, mut rx) = inv.watch(Some(rv)).unwrap();
        inv.replace_from_file(vec![file_host("a", "True"), file_host("b", "False")], t(2));
        assert_eq!(inv.list().1, rv, "an unchanged file is no change");
        inv.replace_from_file(vec![file_host("a", "False")], t(3));
        let first = rx.try_recv().unwrap();
        let second = rx.try_recv().unwrap();
        let mut seen = vec![
            (first.kind, first.object.metadata.name.clone().unwrap()),
            (second.kind, second.object.metadata.name.clone().unwrap()),
        ];
        seen.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(
            seen,
            [
                (WatchEventType::Modified, "a".to_string()),
                (WatchEventType::Deleted, "b".to_string())
            ]
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(
            inv.get("a").unwrap().metadata.uid,
            a.metadata.uid,
            "same object"
        );
        assert_eq!(
            inv.snapshot().hosts.len(),
            1,
            "admission sees what the list shows"
        );
    }

    fn hb(id: &str, name: &str) -> HostHeartbeat {
        HostHeartbeat {
            id: id.into(),
            friendly_name: name.into(),
            hostname: "10.0.0.1".into(),
            version: "2.7.0".into(),
            labels: [("hostgroup".to_string(), "default".to_string())].into(),
            os_name: "linux".into(),
            os_arch: "x86_64".into(),
            os_kernel: "unix".into(),
            system_cpu_usage: 3.5,
            system_memory_total: 100,
            system_memory_free: 50,
            http_port: 9191,
            environment: "team-a".into(),
            imports: vec![WitInterface {
                namespace: "wasmcloud".into(),
                package: "postgres".into(),
                version: "0.2.0".into(),
                interfaces: vec!["query".into()],
                ..WitInterface::default()
            }],
            ..HostHeartbeat::default()
        }
    }

    fn cond<'a>(h: &'a Host, type_: &str) -> &'a Condition {
        h.status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    fn at(seq: u64, secs: u64) -> LogPosition {
        LogPosition { seq, time: t(secs) }
    }

    /// The same log applied to two inventories: the same hosts, versions and objects.
    #[test]
    fn log_mode_replicas_agree_and_versions_are_sequences() {
        let log = vec![
            (
                at(3, 0),
                LogEntry::Heartbeat(Box::new(stored_lists(hb("a", "a")))),
            ),
            (
                at(5, 1),
                LogEntry::Heartbeat(Box::new(stored_lists(hb("b", "b")))),
            ),
            (
                at(6, 15),
                LogEntry::Heartbeat(Box::new(stored_lists(hb("a", "a")))),
            ),
            // The same heartbeat again: still a change (a replay sees only the latest).
            (
                at(7, 15),
                LogEntry::Heartbeat(Box::new(stored_lists(hb("a", "a")))),
            ),
            (at(9, 16), LogEntry::Delete { name: "b".into() }),
            (at(10, 17), LogEntry::Skip),
        ];
        let replicas = [inv(cfg()), inv(cfg())];
        for r in &replicas {
            for (pos, entry) in log.clone() {
                r.apply_logged(pos, entry).unwrap();
            }
        }
        let (a, rv_a) = replicas[0].list();
        let (b, rv_b) = replicas[1].list();
        assert_eq!((&a, rv_a), (&b, rv_b), "identical objects, uids included");
        assert_eq!(rv_a, 9);
        assert_eq!(rv_of(&a[0]), 7);
        assert_eq!(
            a[0].status.as_ref().unwrap().last_seen,
            Some(rfc3339_seconds(t(15)))
        );
        assert_eq!(replicas[0].applied_sequence(), 10);
        // Applied already: ignored.
        assert_eq!(
            replicas[0].apply_logged(at(7, 99), LogEntry::Delete { name: "a".into() }),
            Ok(LogOutcome::Unchanged)
        );
        let (events, _) = replicas[1].watch(Some(0)).unwrap();
        assert_eq!(
            events
                .iter()
                .map(WatchEvent::resource_version)
                .collect::<Vec<_>>(),
            [3, 5, 6, 7, 9]
        );
        // The memory-mode counter is untouched by this: writes outside the log are refused
        // only when they would go backwards.
        assert!(replicas[0]
            .apply_logged(at(8, 0), LogEntry::Skip)
            .is_ok_and(|o| o == LogOutcome::Unchanged));
    }

    #[test]
    fn log_mode_health_comes_from_transitions_only() {
        let inv = inv(cfg());
        inv.apply_logged(
            at(1, 0),
            LogEntry::Heartbeat(Box::new(stored_lists(hb("id", "h")))),
        )
        .unwrap();
        // No local ageing was asked for: the leader computes what is due.
        assert!(inv.due_transitions(t(30)).is_empty());
        let due = inv.due_transitions(t(31));
        assert_eq!(due.len(), 1);
        let (name, unknown) = due[0].clone();
        assert_eq!(
            (name.as_str(), unknown.state, unknown.beat),
            ("h", HealthState::Unknown, 1)
        );
        assert_eq!(
            inv.get("h").unwrap().ready_status(),
            Some("True"),
            "not applied yet"
        );
        inv.apply_logged(
            at(2, 31),
            LogEntry::Health {
                name: "h".into(),
                transition: unknown.clone(),
            },
        )
        .unwrap();
        let h = inv.get("h").unwrap();
        assert_eq!((h.ready_status(), rv_of(&h)), (Some("Unknown"), 2));
        assert!(
            inv.due_transitions(t(40)).is_empty(),
            "nothing more due yet"
        );
        let (_, lost) = inv.due_transitions(t(61)).remove(0);
        assert_eq!(lost.state, HealthState::False);
        assert_eq!(lost.reporting_since, Some(rfc3339_seconds(t(31))));
        // A heartbeat came in between: the transition is stale.
        inv.apply_logged(
            at(3, 62),
            LogEntry::Heartbeat(Box::new(stored_lists(hb("id", "h")))),
        )
        .unwrap();
        let stale = LogEntry::Health {
            name: "h".into(),
            transition: lost.clone(),
        };
        assert_eq!(
            inv.apply_logged(at(4, 62), stale),
            Ok(LogOutcome::Unchanged)
        );
        assert_eq!(inv.get("h").unwrap().ready_status(), Some("True"));
        // A replica that replays only the latest entries (heartbeat 3, then a False judged from
        // it) gets the same conditions as one that saw every step.
        let full = self::inv(cfg());
        let replay = self::inv(cfg());
        let unknown = HealthTransition { beat: 3, ..unknown };
        let lost = HealthTransition {
            beat: 3,
            reporting_since: Some(rfc3339_seconds(t(100))),
            ..lost
        };
        for r in [&full, &replay] {
            r.apply_logged(
                at(3, 62),
                LogEntry::Heartbeat(Box::new(stored_lists(hb("id", "h")))),
            )
            .unwrap();
        }
        full.apply_logged(
            at(5, 100),
            LogEntry::Health {
                name: "h".into(),
                transition: unknown,
            },
        )
        .unwrap();
        for r in [&full, &replay] {
            r.apply_logged(
                at(6, 130),
                LogEntry::Health {
                    name: "h".into(),
                    transition: lost.clone(),
                },
            )
            .unwrap();
        }
        assert_eq!(full.get("h"), replay.get("h"));
        assert_eq!(full.get("h").unwrap().ready_status(), Some("False"));
        let removed = full.due_transitions(t(130 + 300)).remove(0).1;
        assert_eq!(removed.state, HealthState::Removed);
        full.apply_logged(
            at(7, 431),
            LogEntry::Health {
                name: "h".into(),
                transition: removed,
            },
        )
        .unwrap();
        assert!(full.is_empty());
    }

    #[test]
    fn heartbeat_creates_a_ready_host() {
        let inv = inv(cfg());
        let h = inv.apply_heartbeat(hb("id-1", "brave-otter-1"), t(0));
        assert_eq!(h.metadata.name.as_deref(), Some("brave-otter-1"));
        assert_eq!(h.metadata.resource_version.as_deref(), Some("1"));
        assert!(h.metadata.uid.as_deref().is_some_and(|u| u.len() == 36));
        assert!(h.metadata.creation_timestamp.is_some());
        assert_eq!(h.api_version, "wasmgate.dev/v1alpha1");
        assert_eq!(h.host_id, "id-1");
        assert_eq!(h.labels()["hostgroup"], "default");
        assert_eq!(h.http_port, Some(9191));
        assert_eq!(h.environment.as_deref(), Some("team-a"));
        let s = h.status.as_ref().unwrap();
        assert_eq!(s.system_cpu_usage.as_deref(), Some("3.5"));
        assert_eq!(
            s.imports.as_ref().unwrap()[0].version.as_deref(),
            Some("0.2.0")
        );
        assert_eq!(s.last_seen, Some(rfc3339_seconds(t(0))));
        assert_eq!(h.ready_status(), Some("True"));
        assert_eq!(cond(&h, "Reporting").reason.as_deref(), Some("Available"));
        assert_eq!(inv.resource_version(), 1);
        assert_eq!(inv.get("brave-otter-1"), Some(h.clone()));
        let (list, rv) = inv.list();
        assert_eq!((list, rv), (vec![Arc::new(h)], 1));
    }

    #[test]
    fn ready_counts_follow_health() {
        let inv = inv(cfg());
        assert_eq!(inv.ready_counts(), ReadyCounts::default());
        inv.apply_heartbeat(hb("a", "silent-long"), t(0));
        inv.apply_heartbeat(hb("b", "silent-a-while"), t(35));
        inv.apply_heartbeat(hb("c", "reporting"), t(65));
        inv.tick(t(70));
        let counts = inv.ready_counts();
        assert_eq!(
            (counts.ready, counts.unknown, counts.not_ready),
            (1, 1, 1),
            "{counts:?}"
        );
        for (name, ready) in [
            ("silent-long", "False"),
            ("silent-a-while", "Unknown"),
            ("reporting", "True"),
        ] {
            assert_eq!(inv.get(name).unwrap().ready_status(), Some(ready), "{name}");
        }
    }

    #[test]
    fn fallback_and_collision_names() {
        let inv = inv(cfg());
        let a = inv.apply_heartbeat(hb("AAA-1", ""), t(0));
        assert_eq!(a.metadata.name.as_deref(), Some("host-aaa-1"));
        let b = inv.apply_heartbeat(hb("b", "Not_Valid"), t(0));
        assert_eq!(b.metadata.name.as_deref(), Some("host-b"));
        inv.apply_heartbeat(hb("c", "same-name"), t(0));
        let d = inv.apply_heartbeat(hb("d", "same-name"), t(1));
        assert_eq!(d.metadata.name.as_deref(), Some("host-d"));
        assert_eq!(inv.get("same-name").unwrap().host_id, "c");
        // Stable on the next heartbeat.
        let d = inv.apply_heartbeat(hb("d", "same-name"), t(2));
        assert_eq!(d.metadata.name.as_deref(), Some("host-d"));
        assert_eq!(inv.len(), 4);
        assert_eq!(fallback_name(""), "host-unidentified");
    }

    #[test]
    fn renamed_host_moves() {
        let inv = inv(cfg());
        inv.apply_heartbeat(hb("x", "old-name"), t(0));
        inv.apply_heartbeat(hb("x", "new-name"), t(15));
        let (list, _) = inv.list();
        let names: Vec<_> = list
            .iter()
            .map(|h| h.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, vec!["new-name"]);
    }

    #[test]
    fn every_heartbeat_is_a_modification_unless_identical() {
        let inv = inv(cfg());
        let first = inv.apply_heartbeat(hb("id", "h"), t(0));
        let same = inv.apply_heartbeat(hb("id", "h"), t(0));
        assert_eq!(same, first, "nothing changed: no new version");
        assert_eq!(inv.resource_version(), 1);
        let later = inv.apply_heartbeat(hb("id", "h"), t(15));
        assert_eq!(rv_of(&later), 2);
        assert_eq!(later.metadata.uid, first.metadata.uid);
        assert_eq!(
            later.metadata.creation_timestamp,
            first.metadata.creation_timestamp
        );
        assert_eq!(
            cond(&later, "Ready").last_transition_time,
            cond(&first, "Ready").last_transition_time
        );
    }

    #[test]
    fn ageing_unknown_false_removed() {
        let inv = inv(cfg());
        inv.apply_heartbeat(hb("id", "h"), t(0));
        inv.tick(t(30));
        assert_eq!(inv.get("h").unwrap().ready_status(), Some("True"));
        inv.tick(t(31));
        let h = inv.get("h").unwrap();
        assert_eq!(h.ready_status(), Some("Unknown"));
        assert_eq!(
            cond(&h, "Ready").message.as_deref(),
            Some(MSG_NOT_REPORTING)
        );
        assert_eq!(cond(&h, "Reporting").status, "False");
        assert_eq!(cond(&h, "Ready").reason.as_deref(), Some("Reconcile"));
        inv.tick(t(60));
        assert_eq!(inv.get("h").unwrap().ready_status(), Some("Unknown"));
        inv.tick(t(61));
        let h = inv.get("h").unwrap();
        assert_eq!(h.ready_status(), Some("False"));
        assert_eq!(
            cond(&h, "Ready").message.as_deref(),
            Some(MSG_NOT_REPORTED_RECENTLY)
        );
        assert_eq!(
            cond(&h, "Ready").last_transition_time,
            Some(rfc3339_seconds(t(61)))
        );
        let rv = inv.resource_version();
        inv.tick(t(100));
        assert_eq!(inv.resource_version(), rv, "no change, no event");
        inv.tick(t(360));
        assert!(inv.get("h").is_some());
        inv.tick(t(361));
        assert!(inv.get("h").is_none(), "removed after retention");
        assert!(inv.is_empty());
    }

    #[test]
    fn a_heartbeat_revives() {
        let inv = inv(cfg());
        inv.apply_heartbeat(hb("id", "h"), t(0));
        inv.tick(t(100));
        assert_eq!(inv.get("h").unwrap().ready_status(), Some("False"));
        let h = inv.apply_heartbeat(hb("id", "h"), t(101));
        assert_eq!(h.ready_status(), Some("True"));
        assert_eq!(
            cond(&h, "Ready").last_transition_time,
            Some(rfc3339_seconds(t(101)))
        );
    }

    #[test]
    fn settle_window_after_connect_and_while_disconnected() {
        let inv = inv(cfg());
        inv.apply_heartbeat(hb("id", "h"), t(0));
        inv.mark_disconnected(t(10));
        inv.tick(t(200));
        assert_eq!(
            inv.get("h").unwrap().ready_status(),
            Some("Unknown"),
            "disconnected"
        );
        inv.mark_connected(t(200));
        inv.tick(t(259));
        assert_eq!(
            inv.get("h").unwrap().ready_status(),
            Some("Unknown"),
            "settling"
        );
        inv.tick(t(260));
        assert_eq!(
            inv.get("h").unwrap().ready_status(),
            Some("False"),
            "settled"
        );
        // A False host is not removed while disconnected either.
        inv.mark_disconnected(t(261));
        inv.tick(t(10_000));
        assert!(inv.get("h").is_some());
    }

    #[test]
    fn hosts_with_the_same_plugins_share_one_interface_list() {
        // No watch history: its events would hold the removed host's list.
        let inv = inv(LiveConfig {
            history: 0,
            ..cfg()
        });
        let imports = |name: &str| {
            inv.get(name)
                .and_then(|h| h.status)
                .and_then(|s| s.imports)
                .expect("imports")
        };
        inv.apply_heartbeat(hb("a", "a"), t(0));
        inv.apply_heartbeat(hb("b", "b"), t(0));
        let mut other = hb("c", "c");
        other.imports[0].version = "0.1.1-draft".into();
        inv.apply_heartbeat(other, t(0));
        assert!(imports("a").ptr_eq(&imports("b")), "one copy for a and b");
        assert!(!imports("a").ptr_eq(&imports("c")));
        assert_eq!(imports("c")[0].version.as_deref(), Some("0.1.1-draft"));
        // A later heartbeat of a, and a host written through the API, reuse the shared copy.
        inv.apply_heartbeat(hb("a", "a"), t(15));
        let mut written = inv.get("b").expect("b");
        written.metadata.name = Some("written".into());
        written.host_id = "w".into();
        written.metadata.resource_version = None;
        written.status.as_mut().expect("status").imports = Some(imports("b").to_vec().into());
        inv.upsert(written, t(16)).expect("written");
        assert!(imports("written").ptr_eq(&imports("a")));
        assert!(imports("a").ptr_eq(&imports("b")));
        // Once no stored host holds a list, a tick drops it.
        // (Three lists: the two import lists and the empty export list every host shares.)
        let lists = || inv.interned.interfaces.lists().len();
        assert_eq!(lists(), 3);
        {
            let mut inner = inv.lock();
            inv.remove_locked(&mut inner, "c");
        }
        inv.tick(t(17));
        assert_eq!(lists(), 2);
    }

    #[test]
    fn hosts_that_turned_ready_in_the_same_second_share_their_conditions() {
        let inv = inv(LiveConfig {
            history: 0,
            ..cfg()
        });
        let conditions = |name: &str| {
            inv.get(name)
                .and_then(|h| h.status)
                .and_then(|s| s.conditions)
                .expect("conditions")
        };
        inv.apply_heartbeat(hb("a", "a"), t(0));
        inv.apply_heartbeat(hb("b", "b"), t(0));
        inv.apply_heartbeat(hb("c", "c"), t(1));
        assert!(
            conditions("a").ptr_eq(&conditions("b")),
            "one copy for a and b"
        );
        assert!(
            !conditions("a").ptr_eq(&conditions("c")),
            "c turned Ready later"
        );
        assert_eq!(
            conditions("c")[1].last_transition_time.as_deref(),
            Some(rfc3339_seconds(t(1)).as_str())
        );
        // A later heartbeat changes nothing the conditions say: a keeps the shared copy.
        inv.apply_heartbeat(hb("a", "a"), t(15));
        assert!(conditions("a").ptr_eq(&conditions("b")));
        let lists = || inv.interned.conditions.lists().len();
        assert_eq!(lists(), 2);
        // Silent past half the timeout, all three turn Unknown at the same tick: they share
        // that list, and the next tick drops the Ready lists nobody holds any more.
        inv.tick(t(46));
        assert_eq!(inv.get("c").unwrap().ready_status(), Some("Unknown"));
        assert!(conditions("a").ptr_eq(&conditions("c")));
        assert!(conditions("b").ptr_eq(&conditions("c")));
        assert_eq!(lists(), 3);
        inv.tick(t(47));
        assert!(conditions("a").ptr_eq(&conditions("c")));
        assert_eq!(lists(), 1);
    }

    #[test]
    fn process_start_counts_as_connect() {
        let inv = LiveInventory::new(cfg());
        let now = SystemTime::now();
        inv.apply_heartbeat(hb("id", "h"), now - Duration::from_secs(1000));
        inv.tick(now);
        assert_eq!(inv.get("h").unwrap().ready_status(), Some("Unknown"));
        inv.tick(now + Duration::from_secs(61));
        assert_eq!(inv.get("h").unwrap().ready_status(), Some("False"));
    }

    #[test]
    fn watch_replays_and_streams() {
        let inv = inv(cfg());
        inv.apply_heartbeat(hb("a", "a"), t(0)); // rv 1
        inv.apply_heartbeat(hb("b", "b"), t(0)); // rv 2
        let (replay, mut rx) = inv.watch(Some(1)).unwrap();
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].kind, WatchEventType::Added);
        assert_eq!(replay[0].object.metadata.name.as_deref(), Some("b"));
        let (none, mut rx2) = inv.watch(None).unwrap();
        assert!(none.is_empty());
        inv.apply_heartbeat(hb("a", "a"), t(15)); // rv 3
        inv.delete("b"); // rv 4
        let e = rx.try_recv().unwrap();
        assert_eq!(
            (e.kind, e.resource_version()),
            (WatchEventType::Modified, 3)
        );
        let e = rx.try_recv().unwrap();
        assert_eq!((e.kind, e.resource_version()), (WatchEventType::Deleted, 4));
        assert_eq!(e.object.metadata.name.as_deref(), Some("b"));
        assert_eq!(rx2.try_recv().unwrap().resource_version(), 3);
        let (all, _) = inv.watch(Some(0)).unwrap();
        assert_eq!(
            all.iter()
                .map(WatchEvent::resource_version)
                .collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert!(matches!(
            inv.watch(Some(99)),
            Err(WatchError::TooLarge { requested: 99, .. })
        ));
    }

    #[test]
    fn watch_gone_after_history_trims() {
        let inv = inv(LiveConfig {
            history: 3,
            ..cfg()
        });
        for i in 0..5 {
            inv.apply_heartbeat(hb("a", "a"), t(i * 15));
        }
        // Events 1..=5; history holds 3..=5.
        assert_eq!(
            inv.watch(Some(1)).err(),
            Some(WatchError::Gone { oldest: 2 })
        );
        let (replay, _) = inv.watch(Some(2)).unwrap();
        assert_eq!(replay.len(), 3);
        assert_eq!(inv.watch(Some(5)).unwrap().0.len(), 0);
        // Above the newest version: refused, not a watch that drops events up to it.
        assert_eq!(
            inv.watch(Some(6)).err(),
            Some(WatchError::TooLarge {
                requested: 6,
                current: 5
            })
        );
    }

    #[test]
    fn upsert_validates_and_versions() {
        let inv = inv(cfg());
        let mut h = host_from_heartbeat(stored_lists(hb("id-9", "")), t(0));
        assert!(matches!(
            inv.upsert(h.clone(), t(0)),
            Err(InventoryError::Invalid {
                field: "metadata.name",
                ..
            })
        ));
        h.metadata.name = Some("Bad_Name".into());
        assert!(inv.upsert(h.clone(), t(0)).is_err());
        h.metadata.name = Some("http-host".into());
        h.host_id.clear();
        assert!(matches!(
            inv.upsert(h.clone(), t(0)),
            Err(InventoryError::Invalid {
                field: "hostId",
                ..
            })
        ));
        h.host_id = "id-9".into();
        h.metadata.uid = Some("client-chosen".into());
        let stored = inv.upsert(h.clone(), t(0)).unwrap();
        assert_ne!(stored.metadata.uid.as_deref(), Some("client-chosen"));
        assert_eq!(stored.ready_status(), Some("True"));
        assert_eq!(rv_of(&stored), 1);
        // Optimistic concurrency.
        let mut stale = stored.clone();
        stale.metadata.resource_version = Some("0".into());
        assert!(matches!(
            inv.upsert(stale, t(1)),
            Err(InventoryError::Conflict { .. })
        ));
        let mut update = stored.clone();
        update.environment = Some("prod".into());
        let updated = inv.upsert(update, t(1)).unwrap();
        assert_eq!(updated.environment.as_deref(), Some("prod"));
        assert_eq!(rv_of(&updated), 2);
        assert_eq!(updated.metadata.uid, stored.metadata.uid);
        // Ages like a heartbeating host.
        inv.tick(t(100));
        assert_eq!(inv.get("http-host").unwrap().ready_status(), Some("False"));
    }

    #[test]
    fn snapshot_is_cached_until_a_resolver_visible_change() {
        let inv = inv(cfg());
        inv.apply_heartbeat(hb("a", "a"), t(0));
        let s1 = inv.snapshot();
        assert_eq!(s1.hosts.len(), 1);
        assert!(Arc::ptr_eq(&s1, &inv.snapshot()));
        // lastSeen/CPU only: same snapshot (within SNAPSHOT_MAX_AGE).
        let mut beat = hb("a", "a");
        beat.system_cpu_usage = 9.0;
        inv.apply_heartbeat(beat, t(15));
        assert!(Arc::ptr_eq(&s1, &inv.snapshot()));
        // A new plugin: rebuilt.
        let mut beat = hb("a", "a");
        beat.imports.push(WitInterface {
            namespace: "wasi".into(),
            package: "otel".into(),
            ..WitInterface::default()
        });
        inv.apply_heartbeat(beat, t(30));
        let s2 = inv.snapshot();
        assert!(!Arc::ptr_eq(&s1, &s2));
        assert_eq!(
            s2.hosts[0]
                .status
                .as_ref()
                .unwrap()
                .imports
                .as_ref()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(s2.resource_version, inv.resource_version());
        // Going Unknown is visible.
        inv.tick(t(70));
        assert_eq!(inv.snapshot().hosts[0].ready_status(), Some("Unknown"));
    }

    #[test]
    fn watch_and_list_interleave_without_gaps() {
        let inv = inv(LiveConfig {
            history: 5000,
            ..cfg()
        });
        let writer = {
            let inv = inv.clone();
            std::thread::spawn(move || {
                for i in 0..2000u64 {
                    inv.apply_heartbeat(
                        hb(&format!("id-{}", i % 20), &format!("h-{}", i % 20)),
                        t(i),
                    );
                }
            })
        };
        let (_, rv) = inv.list();
        let (_, mut rx) = inv.watch(Some(rv)).unwrap();
        writer.join().unwrap();
        let mut last = rv;
        let mut replayed = inv.watch(Some(rv)).unwrap().0.into_iter();
        // The receiver sees exactly rv+1.. in order.
        while let Ok(e) = rx.try_recv() {
            assert_eq!(e.resource_version(), last + 1);
            last = e.resource_version();
            if let Some(r) = replayed.next() {
                assert_eq!(r.resource_version(), last);
            }
        }
        assert_eq!(last, inv.resource_version());
    }

    /// The subject and payload of `hb`, as a host publishes it.
    fn published(hb: &HostHeartbeat) -> (String, Vec<u8>) {
        (format!("runtime.operator.heartbeat.{}", hb.id), hb.encode())
    }

    /// A host stored from its heartbeat payload, both ways in: parsed whole, and through the
    /// list texts.
    fn stored_both_ways(subject: &str, payload: &[u8]) -> (Host, Host) {
        let parsed = LiveInventory::new(cfg());
        let whole = HostHeartbeat::decode_from_subject(subject, payload).expect("decodes");
        let parsed = Host::clone(&parsed.apply_heartbeat_shared(whole, t(0)));
        let texts = LiveInventory::new(cfg());
        let hb = texts.decode_heartbeat(subject, payload).expect("decodes");
        let texts = Host::clone(&texts.apply_stored_heartbeat(hb, t(0)));
        // Each inventory gives its objects their own uid.
        let without_uid = |mut h: Host| {
            h.metadata.uid = None;
            h
        };
        (without_uid(parsed), without_uid(texts))
    }

    #[test]
    fn a_heartbeat_stores_the_same_host_with_its_lists_read_as_text() {
        let mut with_exports = hb("id-1", "alpha");
        with_exports.exports = vec![WitInterface {
            namespace: "wasi".into(),
            package: "http".into(),
            version: "0.2.2".into(),
            interfaces: vec!["incoming-handler".into()],
            name: "api".into(),
            ..WitInterface::default()
        }];
        for hb in [
            hb("id-1", "alpha"),
            with_exports,
            HostHeartbeat {
                id: "id-2".into(),
                ..HostHeartbeat::default()
            },
        ] {
            let (subject, payload) = published(&hb);
            let (parsed, texts) = stored_both_ways(&subject, &payload);
            assert_eq!(parsed, texts, "{}", String::from_utf8_lossy(&payload));
        }
        // `null` and absent lists, and a list that does not parse: as the whole parse says.
        for payload in [
            r#"{"id":"id-3","imports":null}"#,
            r#"{"id":"id-3","imports":[],"exports":null}"#,
        ] {
            let (parsed, texts) =
                stored_both_ways("runtime.operator.heartbeat.id-3", payload.as_bytes());
            assert_eq!(parsed, texts, "{payload}");
        }
        let inv = LiveInventory::new(cfg());
        for payload in [
            &br#"{"id":"id-4","imports":[5]}"#[..],
            br#"{"id":"id-4","exports":{"a":1}}"#,
            br#"{"id":"id-4","imports":[{"interfaces":"query"}]}"#,
            // Invalid UTF-8 in a field neither path reads (found by the heartbeat fuzz target:
            // the whole parse skipped it, the text path did not).
            b"{\"id\":\"id-4\",\"imports\":[{\"unknownField\":[\"\x9e\x90ainer\"]}]}",
        ] {
            let subject = "runtime.operator.heartbeat.id-4";
            let whole = HostHeartbeat::decode_from_subject(subject, payload);
            let texts = inv.decode_heartbeat(subject, payload);
            let payload = String::from_utf8_lossy(payload);
            assert!(
                whole.is_err() && texts.is_err(),
                "{payload}: {whole:?} / {texts:?}"
            );
        }
    }

    #[test]
    fn a_fleet_s_identical_lists_are_read_once_and_shared() {
        // No watch history, which would hold removed hosts (and their lists) for a while.
        let inv = LiveInventory::new(LiveConfig {
            history: 0,
            ..cfg()
        });
        let stored: Vec<Arc<Host>> = ["a", "b", "c"]
            .iter()
            .map(|id| {
                let (subject, payload) = published(&hb(id, id));
                let hb = inv.decode_heartbeat(&subject, &payload).expect("decodes");
                inv.apply_stored_heartbeat(hb, t(0))
            })
            .collect();
        let imports = |h: &Host| {
            h.status
                .as_ref()
                .and_then(|s| s.imports.clone())
                .expect("imports")
        };
        assert!(imports(&stored[0]).ptr_eq(&imports(&stored[1])));
        assert!(imports(&stored[0]).ptr_eq(&imports(&stored[2])));
        // One text remembered (the imports; absent exports have no text), standing for the
        // list the hosts share.
        assert_eq!(inv.interned.texts().lists.len(), 1);
        // A host sent through the parsed path shares them too.
        let parsed = inv.apply_heartbeat_shared(hb("d", "d"), t(0));
        assert!(imports(&stored[0]).ptr_eq(&imports(&parsed)));
        // Once no host holds a list, pruning forgets its text.
        drop((stored, parsed));
        for name in ["a", "b", "c", "d"] {
            assert!(inv.delete(name).is_some(), "{name}");
        }
        inv.interned.prune();
        assert!(inv.interned.texts().lists.is_empty());
        assert_eq!(inv.interned.texts().bytes, 0);
    }

    #[test]
    fn list_texts_are_bounded() {
        let inv = LiveInventory::new(cfg());
        let package = "p".repeat(MAX_LIST_TEXT_BYTES / 2);
        for (i, version) in ["1.0.0", "2.0.0", "3.0.0"].iter().enumerate() {
            let mut hb = hb(&format!("id-{i}"), &format!("h-{i}"));
            hb.imports[0].package = package.clone();
            hb.imports[0].version = (*version).into();
            let (subject, payload) = published(&hb);
            let hb = inv.decode_heartbeat(&subject, &payload).expect("decodes");
            inv.apply_stored_heartbeat(hb, t(0));
            let texts = inv.interned.texts();
            assert!(texts.bytes <= MAX_LIST_TEXT_BYTES, "{}", texts.bytes);
            assert!(!texts.lists.is_empty());
        }
    }
}
