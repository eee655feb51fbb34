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
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::broadcast;

use crate::crd::{Condition, Host, HostStatus, HostWitInterface, WASMGATE_GROUP, WASMGATE_VERSION};

use super::heartbeat::{rfc3339_seconds, timestamp, HostHeartbeat, WitInterface};
use super::{InventoryError, InventorySource, Snapshot};
use crate::resolve::Hosts;
use crate::store::{State, Store, Versioned};

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
    /// Last heartbeat (or API write), by this process's clock.
    last_seen: SystemTime,
    health: Health,
}

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

    /// Every host, sorted by name, and the resource version the list is consistent with.
    pub fn list(&self) -> (Vec<Host>, u64) {
        let inner = self.lock();
        let hosts = inner.iter().map(|(_, e)| Host::clone(e.object())).collect();
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

    /// [`Self::apply_heartbeat`] without copying the result (the ingestion path).
    pub fn apply_heartbeat_shared(&self, hb: HostHeartbeat, now: SystemTime) -> Arc<Host> {
        let preferred = name_for_heartbeat(&hb);
        let fallback = fallback_name(&hb.id);
        // Built before taking the lock, by moving the heartbeat's strings and lists.
        let host = host_from_heartbeat(hb, now);
        let id = host.host_id.as_str();
        let mut inner = self.lock();
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
                    self.remove_locked(&mut inner, &old);
                }
                inner.extra.by_id.insert(id.to_string(), name.clone());
            }
            None => {
                inner.extra.by_id.insert(id.to_string(), name.clone());
            }
        }
        self.store_locked(&mut inner, name, host, now)
    }

    /// Creates or replaces a host written through the API (create, update, patch: the caller
    /// has merged the request into the stored object). Returns it as stored.
    ///
    /// The write counts as a heartbeat at `now`: `status.lastSeen` and the conditions are the
    /// server's (the client's are ignored), as are `uid`, `creationTimestamp` and
    /// `resourceVersion`. `metadata.name` (a DNS-1123 subdomain) and `hostId` are required. If
    /// `metadata.resourceVersion` is set and the host exists at another version, the write is a
    /// [`InventoryError::Conflict`] (optimistic concurrency: clear it for an unconditional write).
    pub fn upsert(&self, mut host: Host, now: SystemTime) -> Result<Host, InventoryError> {
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
        let mut inner = self.lock();
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
        host.api_version = api_version();
        host.kind = "Host".into();
        let status = host.status.get_or_insert_with(HostStatus::default);
        status.last_seen = Some(rfc3339_seconds(now));
        inner.extra.by_id.insert(host.host_id.clone(), name.clone());
        Ok(Host::clone(&self.store_locked(&mut inner, name, host, now)))
    }

    /// Removes a host; returns its last state (with the deletion's resourceVersion).
    pub fn delete(&self, name: &str) -> Option<Host> {
        let mut inner = self.lock();
        self.remove_locked(&mut inner, name)
    }

    /// Ages hosts at `now`: conditions follow the silence of each host (see the module docs);
    /// hosts `Ready=False` for longer than `retention` are removed. Emits `Modified`/`Deleted`.
    pub fn tick(&self, now: SystemTime) {
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
        match inner.meta_mut(name.as_str()) {
            Some(tracking) => {
                tracking.last_seen = now;
                tracking.health = Health::Reporting;
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
                carry_conditions(&mut host, &old);
                set_conditions(&mut host, Health::Reporting, now);
                if host == *old {
                    return old;
                }
                self.commit_locked(inner, name, host, now)
            }
            None => {
                host.metadata.uid = Some(self.new_uid());
                host.metadata.creation_timestamp = Some(Time(to_timestamp(now)));
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
        host: Host,
        now: SystemTime,
    ) -> Arc<Host> {
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
            hosts: Hosts::new(inner.iter().map(|(_, e)| Host::clone(e.object())).collect()),
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

fn name_for_heartbeat(hb: &HostHeartbeat) -> String {
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
pub fn host_from_heartbeat(hb: HostHeartbeat, now: SystemTime) -> Host {
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
            imports: wit(hb.imports),
            exports: wit(hb.exports),
        }),
    }
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
    status.conditions = Some(vec![make("Reporting", reporting), make("Ready", ready)]);
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
        for c in host
            .status
            .iter_mut()
            .flat_map(|s| s.conditions.iter_mut().flatten())
        {
            if c.type_ == "Ready" {
                c.status = ready.into();
            }
        }
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
        assert_eq!((list, rv), (vec![h], 1));
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
        let mut h = host_from_heartbeat(hb("id-9", ""), t(0));
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
}
