//! Fixtures shared by the engine's and the reconciler's unit tests.

use std::collections::BTreeMap;

use crate::crd::{
    Condition, Host, HostInterface, HostStatus, HostWitInterface, WorkloadComponent, WorkloadSpec,
};
use crate::resolve::WorldState;
use crate::wit::{ComponentWorld, WorldItemRef};

/// A host of host group `group`, Ready or not, whose plugins offer `imports`.
pub fn host(name: &str, group: &str, ready: bool, imports: Vec<HostWitInterface>) -> Host {
    let mut h = Host {
        host_id: format!("id-{name}"),
        ..Host::default()
    };
    h.metadata.name = Some(name.into());
    h.metadata.labels = Some(BTreeMap::from([("hostgroup".into(), group.into())]));
    h.status = Some(HostStatus {
        conditions: Some(
            vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Condition::default()
            }]
            .into(),
        ),
        imports: Some(imports.into()),
        ..HostStatus::default()
    });
    h
}

/// A host of host group `data`, Ready or not, whose plugin offers `wasmcloud:postgres/query` at
/// version `postgres`.
pub fn postgres_host(name: &str, ready: bool, postgres: &str) -> Host {
    host(
        name,
        "data",
        ready,
        vec![HostWitInterface {
            namespace: "wasmcloud".into(),
            package: "postgres".into(),
            version: Some(postgres.into()),
            interfaces: vec!["query".into()],
            name: None,
        }],
    )
}

/// The `orders` spec: one component `api` on host group `data`, with a `wasmcloud:postgres`
/// entry pinned to 0.2.0.
pub fn orders_spec() -> WorkloadSpec {
    WorkloadSpec {
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
    }
}

/// A known world importing `import` and exporting nothing.
pub fn importing(import: &str) -> WorldState {
    WorldState::Known(
        ComponentWorld::new(
            vec![WorldItemRef::Interface(
                import.parse().expect("an interface reference"),
            )],
            vec![],
        )
        .into(),
    )
}
