//! Resolver cost: a 20-component workload against a 1,000-host inventory (issue: foundation).
//!
//! Method: every component imports wasi:io (built-in), one plugin package at a pinned version
//! and, for half of them, an interface exported by a sibling; hosts carry the plugin set
//! `wash host` registers. The hosts matching the selector are a quarter of the inventory.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, Criterion};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use wasmgate::crd::{
    Condition, Host, HostInterface, HostStatus, HostWitInterface, WorkloadComponent, WorkloadSpec,
};
use wasmgate::policy::Policy;
use wasmgate::resolve::{apply_defaults, resolve, Hosts, ResolveInput, WorldState};
use wasmgate::wit::{ComponentWorld, WorldItemRef};

fn wit(ns: &str, pkg: &str, v: Option<&str>, ifaces: &[&str]) -> HostWitInterface {
    HostWitInterface {
        namespace: ns.into(),
        package: pkg.into(),
        version: v.map(Into::into),
        interfaces: ifaces.iter().map(|s| s.to_string()).collect(),
        name: None,
    }
}

fn hosts(n: usize) -> Vec<Host> {
    (0..n)
        .map(|i| {
            let group = ["default", "data", "edge", "gpu"][i % 4];
            let mut imports = vec![
                wit("wasi", "config", Some("0.2.0-rc.1"), &["store"]),
                wit("wasi", "logging", None, &["logging"]),
                wit("wasi", "keyvalue", None, &["store", "atomics", "batch"]),
                wit(
                    "wasmcloud",
                    "messaging",
                    Some("0.2.0"),
                    &["consumer", "types"],
                ),
                wit(
                    "wasmcloud",
                    "messaging",
                    Some("0.3.0"),
                    &["consumer", "types"],
                ),
                wit(
                    "wasi",
                    "blobstore",
                    Some("0.2.0-draft"),
                    &["blobstore", "container", "types"],
                ),
            ];
            // Only the last host of the group offers postgres 0.2.0: the worst case scans all.
            imports.push(wit(
                "wasmcloud",
                "postgres",
                Some(if i == n - 3 { "0.2.0" } else { "0.1.1-draft" }),
                &["types", "query", "prepared"],
            ));
            Host {
                api_version: "wasmgate.dev/v1alpha1".into(),
                kind: "Host".into(),
                metadata: ObjectMeta {
                    name: Some(format!("host-{i}")),
                    labels: Some(BTreeMap::from([(
                        "hostgroup".to_string(),
                        group.to_string(),
                    )])),
                    ..Default::default()
                },
                host_id: format!("id-{i}"),
                environment: Some("team-a".into()),
                status: Some(HostStatus {
                    conditions: Some(
                        vec![Condition {
                            type_: "Ready".into(),
                            status: "True".into(),
                            ..Default::default()
                        }]
                        .into(),
                    ),
                    imports: Some(imports.into()),
                    exports: Some(
                        vec![wit("wasmcloud", "messaging", Some("0.3.0"), &["handler"])].into(),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect()
}

fn workload(components: usize) -> (WorkloadSpec, BTreeMap<String, WorldState>) {
    let mut worlds = BTreeMap::new();
    let mut list = Vec::new();
    for i in 0..components {
        let name = format!("c{i}");
        let mut imports: Vec<WorldItemRef> = [
            "wasi:io/streams@0.2.6",
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:config/store@0.2.0-rc.1",
            "wasmcloud:messaging/consumer@0.3.0",
        ]
        .iter()
        .map(|s| WorldItemRef::Interface(s.parse().expect("ref")))
        .collect();
        imports.push(WorldItemRef::Named {
            name: "orders-db".into(),
            interface: "wasmcloud:postgres/query@0.2.0".parse().expect("ref"),
        });
        let mut exports = vec![WorldItemRef::Interface(
            format!("acme:c{i}/api@1.0.0").parse().expect("ref"),
        )];
        if i > 0 {
            imports.push(WorldItemRef::Interface(
                format!("acme:c{}/api@1.0.0", i - 1).parse().expect("ref"),
            ));
        }
        if i == components - 1 {
            exports.push(WorldItemRef::Interface(
                "wasmcloud:messaging/handler@0.3.0".parse().expect("ref"),
            ));
        }
        worlds.insert(
            name.clone(),
            WorldState::Known(ComponentWorld::new(imports, exports).into()),
        );
        list.push(WorkloadComponent {
            name,
            image: format!("ghcr.io/acme/c{i}:1.0.0"),
            ..Default::default()
        });
    }
    let spec = WorkloadSpec {
        host_selector: Some(BTreeMap::from([(
            "hostgroup".to_string(),
            "data".to_string(),
        )])),
        components: Some(list),
        host_interfaces: Some(vec![
            HostInterface {
                namespace: "wasi".into(),
                package: "keyvalue".into(),
                interfaces: vec!["store".into()],
                ..Default::default()
            },
            HostInterface {
                namespace: "wasi".into(),
                package: "config".into(),
                interfaces: vec!["store".into()],
                ..Default::default()
            },
            HostInterface {
                namespace: "wasmcloud".into(),
                package: "messaging".into(),
                version: Some("0.3.0".into()),
                interfaces: vec!["consumer".into()],
                ..Default::default()
            },
            HostInterface {
                name: Some("orders-db".into()),
                namespace: "wasmcloud".into(),
                package: "postgres".into(),
                version: Some("0.2.0".into()),
                interfaces: vec!["query".into()],
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    (spec, worlds)
}

fn bench(c: &mut Criterion) {
    let hosts = Hosts::new(hosts(1000));
    let policy = Policy::default();
    let (spec, worlds) = workload(20);
    let input = ResolveInput {
        namespace: "team-a",
        spec: &spec,
        worlds: &worlds,
        hosts: &hosts,
        policy: &policy,
        deployment: None,
    };
    let report = resolve(&input);
    assert!(
        report.allowed(),
        "benchmark workload must resolve: {:?}",
        report.violations
    );

    c.bench_function("resolve 20 components x 1000 hosts", |b| {
        b.iter(|| resolve(std::hint::black_box(&input)))
    });
    c.bench_function("defaults 20 components", |b| {
        b.iter(|| apply_defaults(std::hint::black_box(&spec), &worlds, &policy))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
