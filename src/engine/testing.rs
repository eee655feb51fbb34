//! Fixtures shared by the engine's and the reconciler's unit tests.

use std::collections::BTreeMap;

use crate::crd::{Condition, Host, HostStatus, HostWitInterface};

/// A host of host group `data`, Ready or not, whose plugin offers `wasmcloud:postgres/query` at
/// version `postgres`.
pub fn postgres_host(name: &str, ready: bool, postgres: &str) -> Host {
    let mut h = Host {
        host_id: format!("id-{name}"),
        ..Host::default()
    };
    h.metadata.name = Some(name.into());
    h.metadata.labels = Some(BTreeMap::from([("hostgroup".into(), "data".into())]));
    h.status = Some(HostStatus {
        conditions: Some(
            vec![Condition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Condition::default()
            }]
            .into(),
        ),
        imports: Some(
            vec![HostWitInterface {
                namespace: "wasmcloud".into(),
                package: "postgres".into(),
                version: Some(postgres.into()),
                interfaces: vec!["query".into()],
                name: None,
            }]
            .into(),
        ),
        ..HostStatus::default()
    });
    h
}
