//! The reconciler's async driver: one watcher per kind, a single task owning the
//! [`ReconcileCore`], world lookups off that task, inventory polling, and Events.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder, Reporter};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::runtime::WatchStreamExt;
use kube::Client;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use super::core::{ObjectKey, ObjectMeta, Outcome, ReconcileCore, TargetKind};
use super::metrics::ReconcileMetrics;
use crate::crd::{WASMCLOUD_GROUP, WASMCLOUD_VERSION};
use crate::engine::{AdmittedObject, Engine, Prepared};
use crate::platform::duration::parse_duration;
use crate::platform::metrics::ObjectKind;
use crate::store::ResolutionStore;

/// Annotations that carry component worlds (a change means preparing again).
const WIT_ANNOTATION_PREFIX: &str = "wit.wasmgate.dev/";
/// Longest Event note kube-apiserver accepts.
const MAX_NOTE: usize = 1024;

/// Options of the reconciler (part of `wasmgate serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct ReconcileArgs {
    /// Watch Workloads, WorkloadReplicaSets and WorkloadDeployments and re-resolve them as the
    /// inventory changes (needs a Kubernetes API; off with --dev unless --kubeconfig is given).
    #[arg(long, action = clap::ArgAction::Set, env = "WASMGATE_RECONCILE")]
    pub reconcile: Option<bool>,
    /// How often the inventory is checked for changes.
    #[arg(long, default_value = "1s", value_parser = parse_duration, env = "WASMGATE_RECONCILE_INTERVAL")]
    pub reconcile_interval: Duration,
    /// Publish Events on objects whose verdict changes (leader only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, env = "WASMGATE_EVENTS")]
    pub events: bool,
    /// Component world lookups running at once (registry pulls are cached and single-flight).
    #[arg(long, default_value_t = 8, env = "WASMGATE_RECONCILE_LOOKUPS")]
    pub reconcile_lookups: usize,
}

/// The running reconciler.
pub struct ReconcilerHandle {
    /// Its tasks (watchers, the core loop, the Event writer).
    pub tasks: Vec<JoinHandle<()>>,
}

enum Msg {
    Watch(TargetKind, Box<WatchEvent<DynamicObject>>),
    Prepared {
        key: ObjectKey,
        meta: ObjectMeta,
        object: Box<AdmittedObject>,
        prepared: Box<Prepared>,
    },
}

fn api_resource(kind: TargetKind) -> ApiResource {
    let gvk = GroupVersionKind::gvk(WASMCLOUD_GROUP, WASMCLOUD_VERSION, kind.kind());
    ApiResource::from_gvk_with_plural(&gvk, kind.plural())
}

fn key_of(kind: TargetKind, obj: &DynamicObject) -> ObjectKey {
    ObjectKey {
        kind,
        namespace: obj.metadata.namespace.clone().unwrap_or_default(),
        name: obj.metadata.name.clone().unwrap_or_default(),
    }
}

fn meta_of(obj: &DynamicObject) -> ObjectMeta {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    obj.data.get("spec").map(|s| s.to_string()).hash(&mut h);
    let wit: BTreeMap<&String, &String> = obj
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(WIT_ANNOTATION_PREFIX))
        .collect();
    wit.hash(&mut h);
    ObjectMeta {
        uid: obj.metadata.uid.clone().unwrap_or_default(),
        labels: obj.metadata.labels.clone().unwrap_or_default(),
        generation: obj.metadata.generation,
        spec_digest: h.finish(),
    }
}

/// What the reconciler runs with.
pub struct ReconcilerParts {
    /// The Kubernetes API (watches, Events).
    pub client: Client,
    /// The admission engine: world lookups, policy, and the inventory it resolves against.
    pub admission: Arc<Engine>,
    /// Where verdicts go (served as `workloadresolutions`).
    pub store: Arc<ResolutionStore>,
    /// Whether this replica leads (only the leader publishes Events).
    pub leader: watch::Receiver<bool>,
    /// This replica's identity (the Events' reporting instance).
    pub identity: String,
    /// Where the reconcile series go.
    pub metrics: Option<ReconcileMetrics>,
    /// Set once the inventory is worth judging by (after the live inventory's warm-up): until
    /// then nothing is resolved, so a restart does not report every object as without hosts.
    pub inventory_ready: Arc<AtomicBool>,
}

/// Starts the reconciler: watchers on the three kinds, re-resolution on inventory changes,
/// results into the store, Events while this replica leads.
pub fn spawn(parts: ReconcilerParts, args: &ReconcileArgs) -> ReconcilerHandle {
    let ReconcilerParts {
        client,
        admission,
        store,
        leader,
        identity,
        metrics,
        inventory_ready,
    } = parts;
    let (tx, rx) = mpsc::channel::<Msg>(1024);
    let mut tasks = Vec::new();
    for kind in TargetKind::ALL {
        // Dynamic, not typed, on purpose: a typed watch fails its whole list when one object
        // does not decode as our types (upstream's CRDs accept objects without `spec`, say);
        // here each object decodes on its own and an undecodable one is one Undecodable
        // resolution.
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource(kind));
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(ev) => {
                        if tx.send(Msg::Watch(kind, Box::new(ev))).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(kind = kind.kind(), error = %e, "watch failed; retrying with backoff"),
                }
            }
        }));
    }
    let (events_tx, events_rx) = mpsc::channel::<Outcome>(1024);
    if args.events {
        let recorder = Recorder::new(
            client,
            Reporter {
                controller: "wasmgate".into(),
                instance: Some(identity),
            },
        );
        tasks.push(tokio::spawn(write_events(
            recorder,
            events_rx,
            leader,
            metrics.clone(),
        )));
    }
    let core = ReconcileCore::new(admission, store);
    let args = args.clone();
    tasks.push(tokio::spawn(async move {
        while !inventory_ready.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let events = args.events.then_some(events_tx);
        drive(core, rx, tx, args, events, metrics).await
    }));
    ReconcilerHandle { tasks }
}

/// The core loop: owns the state, so no lock is ever held across an await.
async fn drive(
    mut core: ReconcileCore,
    mut rx: mpsc::Receiver<Msg>,
    tx: mpsc::Sender<Msg>,
    args: ReconcileArgs,
    events: Option<mpsc::Sender<Outcome>>,
    metrics: Option<ReconcileMetrics>,
) {
    let lookups = Arc::new(Semaphore::new(args.reconcile_lookups.max(1)));
    // The digest each key was last sent to preparation with: stale results are dropped.
    let mut pending: HashMap<ObjectKey, u64> = HashMap::new();
    let mut relisting: HashMap<TargetKind, HashSet<ObjectKey>> = HashMap::new();
    let mut ticker = tokio::time::interval(args.reconcile_interval.max(Duration::from_millis(50)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut outcomes = Vec::new();
        tokio::select! {
            msg = rx.recv() => {
                let Some(msg) = msg else { return };
                let now = SystemTime::now();
                match msg {
                    Msg::Watch(kind, ev) => match *ev {
                        WatchEvent::Init => {
                            relisting.insert(kind, HashSet::new());
                        }
                        WatchEvent::InitApply(obj) | WatchEvent::Apply(obj) => {
                            let key = key_of(kind, &obj);
                            if let Some(seen) = relisting.get_mut(&kind) {
                                seen.insert(key.clone());
                            }
                            outcomes.extend(applied(&mut core, &mut pending, &lookups, &tx, key, obj, now));
                        }
                        WatchEvent::Delete(obj) => {
                            let key = key_of(kind, &obj);
                            pending.remove(&key);
                            core.remove(&key);
                        }
                        WatchEvent::InitDone => {
                            if let Some(seen) = relisting.remove(&kind) {
                                for key in core.keys_of(kind) {
                                    if !seen.contains(&key) {
                                        pending.remove(&key);
                                        core.remove(&key);
                                    }
                                }
                            }
                            tracing::info!(kind = kind.kind(), tracked = core.len(), "reconciler synced");
                        }
                    },
                    Msg::Prepared { key, meta, object, prepared } => {
                        if pending.get(&key) == Some(&meta.spec_digest) {
                            pending.remove(&key);
                            // Judged against the inventory as it is now, not as of the last
                            // tick: the first objects after the warm-up gate would otherwise meet
                            // the empty inventory of before the first tick (a false Unresolved
                            // Event), and a host that arrived since the tick would be missed.
                            let snapshot = core.admission().inventory.snapshot();
                            outcomes.extend(core.inventory_changed(snapshot, now));
                            outcomes.extend(core.upsert(key, *object, *prepared, meta, now));
                        }
                    }
                }
            }
            _ = ticker.tick() => {
                let started = Instant::now();
                let snapshot = core.admission().inventory.snapshot();
                outcomes = core.inventory_changed(snapshot, SystemTime::now());
                if let Some(m) = &metrics {
                    m.observe_pass(started.elapsed());
                }
            }
        }
        if outcomes.is_empty() {
            continue;
        }
        if let Some(m) = &metrics {
            for (kind, n) in core.unresolved_counts() {
                m.set_unresolved(ObjectKind::from_kind(kind.kind()), n);
            }
        }
        for o in outcomes {
            tracing::info!(
                kind = o.key.kind.kind(),
                namespace = %o.key.namespace,
                name = %o.key.name,
                resolved = o.status.resolved,
                reason = %o.status.reason,
                eligible_hosts = o.status.eligible_hosts,
                message = %o.status.message,
                "resolution changed"
            );
            if o.verdict_changed() {
                if let Some(events) = &events {
                    if events.try_send(o).is_err() {
                        tracing::warn!("event queue full; an Event was dropped");
                    }
                }
            }
        }
    }
}

/// Handles an added or modified object: decode, then prepare its worlds off this task when its
/// spec changed, else just refresh its metadata.
fn applied(
    core: &mut ReconcileCore,
    pending: &mut HashMap<ObjectKey, u64>,
    lookups: &Arc<Semaphore>,
    tx: &mpsc::Sender<Msg>,
    key: ObjectKey,
    obj: DynamicObject,
    now: SystemTime,
) -> Option<Outcome> {
    let meta = meta_of(&obj);
    if !core.needs_prepare(&key, meta.spec_digest) {
        pending.remove(&key);
        return core.touch(&key, meta, now);
    }
    if pending.get(&key) == Some(&meta.spec_digest) {
        return None;
    }
    let raw = match serde_json::to_value(&obj) {
        Ok(v) => v,
        Err(e) => return core.undecodable(key, format!("cannot read the object: {e}"), meta, now),
    };
    let object = match AdmittedObject::from_request(WASMCLOUD_GROUP, key.kind.kind(), raw) {
        Ok(Some(o)) => o,
        Ok(None) => return None,
        Err(e) => return core.undecodable(key, e.to_string(), meta, now),
    };
    pending.insert(key.clone(), meta.spec_digest);
    let admission = core.admission().clone();
    let lookups = lookups.clone();
    let tx = tx.clone();
    tokio::spawn(async move {
        let Ok(_permit) = lookups.acquire_owned().await else {
            return;
        };
        let prepared = admission.prepare(&key.namespace, &object).await;
        // A stored object: its annotation worlds serve the Workloads a replica set stamps out.
        admission.remember(&key.namespace, &prepared);
        let _ = tx
            .send(Msg::Prepared {
                key,
                meta,
                object: Box::new(object),
                prepared: Box::new(prepared),
            })
            .await;
    });
    None
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// The Event for a verdict change.
pub fn event_for(o: &Outcome) -> KubeEvent {
    if o.status.resolved {
        KubeEvent {
            type_: EventType::Normal,
            reason: "Resolved".into(),
            note: Some(truncate(
                &format!(
                    "wasmgate: every import resolves; {} eligible hosts",
                    o.status.eligible_hosts
                ),
                MAX_NOTE,
            )),
            action: "Resolve".into(),
            secondary: None,
        }
    } else {
        KubeEvent {
            type_: EventType::Warning,
            reason: o.status.reason.clone(),
            note: Some(truncate(
                &format!("wasmgate: {}", o.status.message),
                MAX_NOTE,
            )),
            action: "Resolve".into(),
            secondary: None,
        }
    }
}

async fn write_events(
    recorder: Recorder,
    mut rx: mpsc::Receiver<Outcome>,
    leader: watch::Receiver<bool>,
    metrics: Option<ReconcileMetrics>,
) {
    while let Some(o) = rx.recv().await {
        if !*leader.borrow() {
            continue;
        }
        let reference = ObjectReference {
            api_version: Some(format!("{WASMCLOUD_GROUP}/{WASMCLOUD_VERSION}")),
            kind: Some(o.key.kind.kind().into()),
            name: Some(o.key.name.clone()),
            namespace: Some(o.key.namespace.clone()),
            uid: (!o.uid.is_empty()).then(|| o.uid.clone()),
            ..ObjectReference::default()
        };
        match recorder.publish(&event_for(&o), &reference).await {
            Ok(()) => {
                if let Some(m) = &metrics {
                    m.event_emitted();
                }
            }
            Err(e) => tracing::warn!(
                kind = o.key.kind.kind(),
                namespace = %o.key.namespace,
                name = %o.key.name,
                error = %e,
                "could not publish an Event"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::resolution::ResolutionStatus;

    #[test]
    fn events_name_the_problem_and_fit() {
        let mut o = Outcome {
            key: ObjectKey {
                kind: TargetKind::Workload,
                namespace: "ns".into(),
                name: "w".into(),
            },
            uid: "u".into(),
            was_resolved: Some(true),
            status: ResolutionStatus {
                resolved: false,
                reason: "Unresolved".into(),
                message: "x".repeat(5000),
                ..ResolutionStatus::default()
            },
        };
        assert!(o.verdict_changed());
        let ev = event_for(&o);
        assert_eq!(ev.reason, "Unresolved");
        assert!(matches!(ev.type_, EventType::Warning));
        assert_eq!(ev.note.as_ref().map(String::len), Some(MAX_NOTE));
        o.status.resolved = true;
        o.status.eligible_hosts = 2;
        assert!(!o.verdict_changed());
        let ev = event_for(&o);
        assert_eq!(ev.reason, "Resolved");
        assert_eq!(
            ev.note.as_deref(),
            Some("wasmgate: every import resolves; 2 eligible hosts")
        );
        o.was_resolved = None;
        assert!(
            !o.verdict_changed(),
            "first sight of a resolved object is no news"
        );
    }
}
