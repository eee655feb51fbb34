//! Reconciler cost per inventory change: 10,000 tracked workloads, 1,000 hosts.
//!
//! Method: hosts in 10 host groups of 100, each offering wasi:keyvalue, wasmcloud:messaging and
//! wasmcloud:postgres; workloads spread over the groups by `hostSelector`, 3 components each
//! (built-ins, keyvalue, and messaging or postgres: half each). Every workload is prepared
//! (worlds + defaults) and tracked by a [`ReconcileCore`] first; then each benchmark feeds it a
//! new inventory snapshot and measures `inventory_changed` (diff the hosts, find the affected
//! workloads in the index, re-resolve them, write changed resolutions to the store):
//! - `heartbeat_noise`: every host's `lastSeen` and memory moved (what 15 s of heartbeats
//!   look like): nothing to re-resolve;
//! - `host_not_ready`: one host flips Ready: its group's 1,000 workloads are re-resolved;
//! - `imports_change`: one host changes its postgres version: only its group's 500 postgres
//!   users are re-resolved;
//! - `naive_full_pass`: for comparison, re-resolving all 10,000 workloads (what a reconciler
//!   without the index would do on every change).
//!
//! Workloads of one group and plugin have the same spec (as the workloads a replica set stamps
//! out), and one pass resolves equal inputs once. The `distinct` group repeats
//! `host_not_ready` with every workload's spec different (its images' tags), so nothing is
//! shared: the cost per workload when no two are alike.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta as K8sMeta;

use wasmgate::components::WorldResolver;
use wasmgate::crd::{
    Condition, Host, HostInterface, HostStatus, HostWitInterface, Workload, WorkloadComponent,
    WorkloadSpec,
};
use wasmgate::engine::{AdmittedObject, Engine, Prepared};
use wasmgate::inventory::{SharedInventory, Snapshot};
use wasmgate::policy::Policy;
use wasmgate::reconcile::core::ObjectMeta;
use wasmgate::reconcile::{ObjectKey, ReconcileCore, TargetKind};
use wasmgate::resolve::{apply_defaults, WorldState};
use wasmgate::store::ResolutionStore;
use wasmgate::wit::{ComponentWorld, WorldItemRef};

const HOSTS: usize = 1_000;
const GROUPS: usize = 10;
const WORKLOADS: usize = 10_000;

fn wit(ns: &str, pkg: &str, v: &str, ifaces: &[&str]) -> HostWitInterface {
    HostWitInterface {
        namespace: ns.into(),
        package: pkg.into(),
        version: Some(v.into()),
        interfaces: ifaces.iter().map(|s| s.to_string()).collect(),
        name: None,
    }
}

fn host(i: usize, ready: bool, postgres: &str, tick: u64) -> Host {
    Host {
        api_version: "wasmgate.dev/v1alpha1".into(),
        kind: "Host".into(),
        metadata: K8sMeta {
            name: Some(format!("host-{i}")),
            labels: Some(BTreeMap::from([(
                "hostgroup".to_string(),
                format!("g{}", i % GROUPS),
            )])),
            ..Default::default()
        },
        host_id: format!("id-{i}"),
        status: Some(HostStatus {
            conditions: Some(
                vec![Condition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]
                .into(),
            ),
            last_seen: Some(format!("tick-{tick}")),
            system_memory_free: Some(tick as i64),
            imports: Some(
                vec![
                    wit("wasi", "keyvalue", "0.2.0-draft", &["store", "atomics"]),
                    wit("wasmcloud", "messaging", "0.3.0", &["consumer", "types"]),
                    wit("wasmcloud", "postgres", postgres, &["types", "query"]),
                ]
                .into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn snapshot(rv: u64, f: impl Fn(usize) -> Host) -> Arc<Snapshot> {
    Arc::new(Snapshot {
        hosts: wasmgate::resolve::Hosts::new((0..HOSTS).map(f).collect()),
        resource_version: rv,
    })
}

fn entry(ns: &str, pkg: &str, iface: &str, v: &str) -> HostInterface {
    HostInterface {
        namespace: ns.into(),
        package: pkg.into(),
        interfaces: vec![iface.into()],
        version: Some(v.into()),
        ..Default::default()
    }
}

/// Workload `i`; with `distinct`, its images carry a tag of their own, so no two specs are equal.
fn workload(i: usize, policy: &Policy, distinct: bool) -> (ObjectKey, AdmittedObject, Prepared) {
    let plugin = if (i / GROUPS).is_multiple_of(2) {
        ("wasmcloud", "messaging", "consumer", "0.3.0")
    } else {
        ("wasmcloud", "postgres", "query", "0.2.0")
    };
    let mut worlds = BTreeMap::new();
    let mut components = Vec::new();
    for c in 0..3 {
        let name = format!("c{c}");
        let imports = [
            "wasi:io/streams@0.2.6".to_string(),
            "wasi:clocks/wall-clock@0.2.0".to_string(),
            "wasi:keyvalue/store@0.2.0-draft".to_string(),
            format!("{}:{}/{}@{}", plugin.0, plugin.1, plugin.2, plugin.3),
        ]
        .iter()
        .map(|s| WorldItemRef::Interface(s.parse().expect("ref")))
        .collect();
        worlds.insert(
            name.clone(),
            WorldState::Known(ComponentWorld::new(imports, vec![]).into()),
        );
        components.push(WorkloadComponent {
            name,
            image: if distinct {
                format!("ghcr.io/acme/c{c}:1.0.{i}")
            } else {
                format!("ghcr.io/acme/c{c}:1.0.0")
            },
            ..Default::default()
        });
    }
    let spec = WorkloadSpec {
        host_selector: Some(BTreeMap::from([(
            "hostgroup".to_string(),
            format!("g{}", i % GROUPS),
        )])),
        components: Some(components),
        host_interfaces: Some(vec![
            entry("wasi", "keyvalue", "store", "0.2.0-draft"),
            entry(plugin.0, plugin.1, plugin.2, plugin.3),
        ]),
        ..Default::default()
    };
    let defaulted = apply_defaults(&spec, &worlds, policy);
    let name = format!("w{i}");
    let key = ObjectKey {
        kind: TargetKind::Workload,
        namespace: "team-a".into(),
        name: name.clone(),
    };
    let object = AdmittedObject::Workload(Box::new(Workload::new(&name, spec)));
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

struct Fixture {
    core: ReconcileCore,
    admission: Arc<Engine>,
    tracked: Vec<(ObjectKey, AdmittedObject, Prepared)>,
}

/// What the watcher's digest of a spec is for (`reconcile::run`'s `meta_of`): equal specs, equal
/// digests.
fn spec_digest(object: &AdmittedObject) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(object.spec())
        .expect("spec JSON")
        .hash(&mut h);
    h.finish()
}

fn fixture(distinct: bool) -> Fixture {
    let policy = Policy::default();
    let admission = Arc::new(Engine::new(
        Arc::new(WorldResolver::new(vec![])),
        Arc::new(SharedInventory::default()),
        Arc::new(policy.clone()),
    ));
    let mut core = ReconcileCore::new(admission.clone(), ResolutionStore::new());
    let now = SystemTime::now();
    core.inventory_changed(snapshot(1, |i| host(i, true, "0.2.0", 0)), now);
    let tracked: Vec<_> = (0..WORKLOADS)
        .map(|i| workload(i, &policy, distinct))
        .collect();
    for (key, object, prepared) in &tracked {
        let meta = ObjectMeta {
            spec_digest: spec_digest(object),
            ..ObjectMeta::default()
        };
        core.upsert(key.clone(), object.clone(), prepared.clone(), meta, now);
    }
    assert_eq!(core.len(), WORKLOADS);
    assert!(core.unresolved_counts().values().all(|n| *n == 0));
    Fixture {
        core,
        admission,
        tracked,
    }
}

/// One host of group 0 turns NotReady, then Ready again, alternately: its group's workloads are
/// re-resolved each time.
fn host_not_ready(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    fx: &mut Fixture,
    rv: &mut u64,
) {
    let mut down = false;
    g.bench_function("host_not_ready", |b| {
        b.iter_batched(
            || {
                *rv += 1;
                down = !down;
                let d = down;
                snapshot(*rv, move |i| host(i, !(d && i == 0), "0.2.0", 0))
            },
            |snap| fx.core.inventory_changed(snap, SystemTime::now()),
            BatchSize::LargeInput,
        )
    });
}

fn bench(c: &mut Criterion) {
    let mut fx = fixture(false);
    let mut rv = 1u64;
    let mut g = c.benchmark_group("reconcile_10000_workloads_1000_hosts");
    g.sample_size(20);

    g.bench_function("heartbeat_noise", |b| {
        b.iter_batched(
            || {
                rv += 1;
                snapshot(rv, |i| host(i, true, "0.2.0", rv))
            },
            |snap| {
                let out = fx.core.inventory_changed(snap, SystemTime::now());
                assert!(out.is_empty());
            },
            BatchSize::LargeInput,
        )
    });

    host_not_ready(&mut g, &mut fx, &mut rv);

    let mut old_pg = false;
    g.bench_function("imports_change", |b| {
        b.iter_batched(
            || {
                rv += 1;
                old_pg = !old_pg;
                let o = old_pg;
                snapshot(rv, move |i| {
                    host(
                        i,
                        true,
                        if o && i == 0 { "0.1.1-draft" } else { "0.2.0" },
                        0,
                    )
                })
            },
            |snap| fx.core.inventory_changed(snap, SystemTime::now()),
            BatchSize::LargeInput,
        )
    });

    let hosts = snapshot(rv + 1, |i| host(i, true, "0.2.0", 0));
    g.sample_size(10);
    g.bench_function("naive_full_pass", |b| {
        b.iter(|| {
            fx.tracked
                .iter()
                .filter(|(key, object, prepared)| {
                    !fx.admission
                        .resolve_prepared(&key.namespace, object, prepared, &hosts.hosts)
                        .allowed()
                })
                .count()
        })
    });
    g.finish();
    drop(fx);

    let mut fx = fixture(true);
    let mut g = c.benchmark_group("reconcile_10000_distinct_workloads_1000_hosts");
    g.sample_size(20);
    host_not_ready(&mut g, &mut fx, &mut rv);
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
