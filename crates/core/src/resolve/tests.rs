//! Unit tests of the pure resolver ([`resolve`]) and the defaults ([`apply_defaults`]).
//!
//! Every test builds a small workload with the helpers below, resolves it against a hand-made
//! inventory, and checks the verdict, the finding code and the parts of the message a user acts
//! on (component, import, fix).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::crd::{
    Condition, EphemeralVolume, Host, HostInterface, HostPathVolume, HostStatus, HostWitInterface,
    LocalResources, Volume, VolumeMount, WorkloadComponent, WorkloadService, WorkloadSpec,
};
use crate::policy::{Enforcement, Policy};
use crate::wit::{ComponentWorld, WorldItemRef};

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

/// `ns:pkg/iface[@version]` as an unnamed world item.
fn item(s: &str) -> WorldItemRef {
    WorldItemRef::Interface(s.parse().unwrap_or_else(|e| panic!("{s}: {e}")))
}

/// `label: ns:pkg/iface[@version]` as a named world item.
fn named(label: &str, s: &str) -> WorldItemRef {
    WorldItemRef::Named {
        name: label.to_string(),
        interface: s.parse().unwrap_or_else(|e| panic!("{s}: {e}")),
    }
}

/// A known world from interface strings.
fn world(imports: &[&str], exports: &[&str]) -> WorldState {
    world_items(
        imports.iter().map(|s| item(s)).collect(),
        exports.iter().map(|s| item(s)).collect(),
    )
}

/// A known world from world items.
fn world_items(imports: Vec<WorldItemRef>, exports: Vec<WorldItemRef>) -> WorldState {
    WorldState::Known(ComponentWorld::new(imports, exports).into())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A `hostInterfaces` entry for `ns:pkg`.
fn entry(ns_pkg: &str, interfaces: &[&str]) -> HostInterface {
    let (namespace, package) = ns_pkg.split_once(':').expect("ns:pkg");
    HostInterface {
        namespace: namespace.into(),
        package: package.into(),
        interfaces: strings(interfaces),
        ..Default::default()
    }
}

trait EntryExt {
    fn version(self, v: &str) -> Self;
    fn name(self, n: &str) -> Self;
    fn config(self, k: &str, v: &str) -> Self;
}

impl EntryExt for HostInterface {
    fn version(mut self, v: &str) -> Self {
        self.version = Some(v.into());
        self
    }
    fn name(mut self, n: &str) -> Self {
        self.name = Some(n.into());
        self
    }
    fn config(mut self, k: &str, v: &str) -> Self {
        self.config
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }
}

fn wit(ns_pkg: &str, version: Option<&str>, interfaces: &[&str]) -> HostWitInterface {
    let (namespace, package) = ns_pkg.split_once(':').expect("ns:pkg");
    HostWitInterface {
        namespace: namespace.into(),
        package: package.into(),
        version: version.map(str::to_string),
        interfaces: strings(interfaces),
        name: None,
    }
}

fn condition(type_: &str, status: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: status.into(),
        ..Default::default()
    }
}

/// A Ready host in environment `default` with label `hostgroup=default` and no plugins.
fn host(id: &str) -> Host {
    Host {
        api_version: "wasmgate.dev/v1alpha1".into(),
        kind: "Host".into(),
        metadata: ObjectMeta {
            name: Some(format!("host-{id}")),
            labels: Some(BTreeMap::from([(
                "hostgroup".to_string(),
                "default".to_string(),
            )])),
            ..Default::default()
        },
        host_id: id.into(),
        environment: Some("default".into()),
        status: Some(HostStatus {
            conditions: Some(
                vec![condition("Reporting", "True"), condition("Ready", "True")].into(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

trait HostExt {
    /// A plugin that components import (`status.imports`).
    fn offers(self, ns_pkg: &str, version: Option<&str>, interfaces: &[&str]) -> Self;
    /// A plugin that calls component exports (`status.exports`).
    fn calls(self, ns_pkg: &str, version: Option<&str>, interfaces: &[&str]) -> Self;
    fn ready(self, status: &str) -> Self;
    fn label(self, k: &str, v: &str) -> Self;
    fn env(self, e: &str) -> Self;
}

impl HostExt for Host {
    fn offers(mut self, ns_pkg: &str, version: Option<&str>, interfaces: &[&str]) -> Self {
        let status = self.status.get_or_insert_with(Default::default);
        let mut list = status
            .imports
            .take()
            .map(|l| l.to_vec())
            .unwrap_or_default();
        list.push(wit(ns_pkg, version, interfaces));
        status.imports = Some(list.into());
        self
    }
    fn calls(mut self, ns_pkg: &str, version: Option<&str>, interfaces: &[&str]) -> Self {
        let status = self.status.get_or_insert_with(Default::default);
        let mut list = status
            .exports
            .take()
            .map(|l| l.to_vec())
            .unwrap_or_default();
        list.push(wit(ns_pkg, version, interfaces));
        status.exports = Some(list.into());
        self
    }
    fn ready(mut self, s: &str) -> Self {
        let status = self.status.get_or_insert_with(Default::default);
        if let Some(shared) = status.conditions.as_mut() {
            let mut conditions = shared.to_vec();
            for c in &mut conditions {
                if c.type_ == "Ready" {
                    c.status = s.into();
                }
            }
            *shared = conditions.into();
        }
        self
    }
    fn label(mut self, k: &str, v: &str) -> Self {
        self.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(k.into(), v.into());
        self
    }
    fn env(mut self, e: &str) -> Self {
        self.environment = Some(e.into());
        self
    }
}

/// A host running what `wash host` registers by default (digest section 6.2).
fn wash_host(id: &str) -> Host {
    host(id)
        .offers("wasi:config", Some("0.2.0-rc.1"), &["store"])
        .offers("wasi:logging", None, &["logging"])
        .offers("wasi:keyvalue", None, &["store", "atomics", "batch"])
        .offers(
            "wasi:blobstore",
            Some("0.2.0-draft"),
            &["blobstore", "container", "types"],
        )
        .offers("wasmcloud:messaging", Some("0.2.0"), &["consumer", "types"])
        .offers("wasmcloud:messaging", Some("0.3.0"), &["consumer", "types"])
        .calls("wasmcloud:messaging", Some("0.2.0"), &["handler"])
        .calls("wasmcloud:messaging", Some("0.3.0"), &["handler"])
}

fn component(name: &str) -> WorkloadComponent {
    WorkloadComponent {
        name: name.into(),
        image: format!("ghcr.io/acme/{name}:1.0.0"),
        ..Default::default()
    }
}

/// One resolver input under construction.
struct Case {
    namespace: String,
    spec: WorkloadSpec,
    worlds: BTreeMap<String, WorldState>,
    hosts: Vec<Host>,
    policy: Policy,
    deployment: Option<DeploymentContext>,
}

impl Case {
    /// An empty workload in namespace `default`, one plain Ready host, the default policy.
    fn new() -> Self {
        Self {
            namespace: "default".into(),
            spec: WorkloadSpec::default(),
            worlds: BTreeMap::new(),
            hosts: vec![host("h1")],
            policy: Policy::default(),
            deployment: None,
        }
    }

    /// Adds a component with this world.
    fn with(self, name: &str, state: WorldState) -> Self {
        self.with_component(component(name), state)
    }

    fn with_component(mut self, c: WorkloadComponent, state: WorldState) -> Self {
        self.worlds.insert(c.name.clone(), state);
        self.spec.components.get_or_insert_with(Vec::new).push(c);
        self
    }

    fn entry(mut self, e: HostInterface) -> Self {
        self.spec
            .host_interfaces
            .get_or_insert_with(Vec::new)
            .push(e);
        self
    }

    fn hosts(mut self, hosts: Vec<Host>) -> Self {
        self.hosts = hosts;
        self
    }

    fn spec(mut self, f: impl FnOnce(&mut WorkloadSpec)) -> Self {
        f(&mut self.spec);
        self
    }

    fn policy(mut self, f: impl FnOnce(&mut Policy)) -> Self {
        f(&mut self.policy);
        self
    }

    fn namespace(mut self, ns: &str) -> Self {
        self.namespace = ns.into();
        self
    }

    fn deployment(mut self, d: DeploymentContext) -> Self {
        self.deployment = Some(d);
        self
    }

    fn resolve(&self) -> Report {
        resolve(&ResolveInput {
            namespace: &self.namespace,
            spec: &self.spec,
            worlds: &self.worlds,
            hosts: &Hosts::new(self.hosts.clone()),
            policy: &self.policy,
            deployment: self.deployment.as_ref(),
        })
    }

    fn defaults(&self) -> Defaulted {
        apply_defaults(&self.spec, &self.worlds, &self.policy)
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions
// ---------------------------------------------------------------------------------------------

fn codes(findings: &[Finding]) -> Vec<Code> {
    findings.iter().map(|f| f.code).collect()
}

/// Admitted with no violations and no warnings at all.
#[track_caller]
fn assert_clean(report: &Report) {
    assert!(
        report.allowed() && report.warnings.is_empty(),
        "expected a clean report, got {report:#?}"
    );
}

/// Admitted (warnings allowed).
#[track_caller]
fn assert_allowed(report: &Report) {
    assert!(report.allowed(), "expected admission, got {report:#?}");
}

/// Denied by exactly one violation, of this code; returns it.
#[track_caller]
fn only_violation(report: &Report, code: Code) -> &Finding {
    assert!(!report.allowed(), "expected a denial, got {report:#?}");
    assert_eq!(
        codes(&report.violations),
        vec![code],
        "unexpected violations: {report:#?}"
    );
    &report.violations[0]
}

/// The one violation of this code (others may exist).
#[track_caller]
fn violation(report: &Report, code: Code) -> &Finding {
    let found: Vec<&Finding> = report
        .violations
        .iter()
        .filter(|f| f.code == code)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {code:?} violation: {report:#?}"
    );
    found[0]
}

/// The one warning of this code (others may exist).
#[track_caller]
fn warning(report: &Report, code: Code) -> &Finding {
    let found: Vec<&Finding> = report.warnings.iter().filter(|f| f.code == code).collect();
    assert_eq!(found.len(), 1, "expected one {code:?} warning: {report:#?}");
    found[0]
}

/// The message contains every part.
#[track_caller]
fn assert_says(f: &Finding, parts: &[&str]) {
    for p in parts {
        assert!(
            f.message.contains(p),
            "message lacks {p:?}:\n  {}",
            f.message
        );
    }
}

/// Some InvalidSpec violation says all of `parts`.
#[track_caller]
fn assert_spec_error(report: &Report, parts: &[&str]) {
    assert!(
        report
            .violations
            .iter()
            .any(|f| f.code == Code::InvalidSpec && parts.iter().all(|p| f.message.contains(p))),
        "no invalid-spec violation says {parts:?}: {report:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Built-ins
// ---------------------------------------------------------------------------------------------

#[test]
fn builtin_wasi_p2_resolves_without_entries() {
    let report = Case::new()
        .with(
            "app",
            world(
                &[
                    "wasi:io/streams@0.2.0",
                    "wasi:io/error@0.2.0",
                    "wasi:io/poll@0.2.0",
                    "wasi:clocks/monotonic-clock@0.2.0",
                    "wasi:clocks/wall-clock@0.2.0",
                    "wasi:random/random@0.2.0",
                    "wasi:random/insecure-seed@0.2.0",
                    "wasi:cli/environment@0.2.0",
                    "wasi:cli/stdout@0.2.0",
                    "wasi:cli/exit@0.2.0",
                    "wasi:filesystem/preopens@0.2.0",
                    "wasi:filesystem/types@0.2.0",
                    "wasi:sockets/tcp@0.2.0",
                    "wasi:sockets/network@0.2.0",
                ],
                &[],
            ),
        )
        .resolve();
    assert_clean(&report);
    assert_eq!(report.eligible_hosts, 1);
}

#[test]
fn builtin_matches_by_canonical_semver() {
    // 0.2.6 and 0.2.0 share the canonical version 0.2, as in wasmtime's linker.
    let report = Case::new()
        .with(
            "app",
            world(
                &[
                    "wasi:io/streams@0.2.6",
                    "wasi:clocks/wall-clock@0.2.3",
                    "wasi:cli/stderr@0.2.1",
                ],
                &[],
            ),
        )
        .resolve();
    assert_clean(&report);
}

#[test]
fn builtin_wasi_http_outgoing_handler_resolves() {
    let report = Case::new()
        .with_component(
            WorkloadComponent {
                local_resources: Some(LocalResources {
                    allowed_hosts: Some(strings(&["api.example.com"])),
                    ..Default::default()
                }),
                ..component("app")
            },
            world(
                &["wasi:http/outgoing-handler@0.2.3", "wasi:http/types@0.2.3"],
                &[],
            ),
        )
        .resolve();
    assert_clean(&report);
}

#[test]
fn builtin_wasi_http_p3_resolves() {
    let report = Case::new()
        .with("app", world(&["wasi:http/types@0.3.0"], &[]))
        .resolve();
    assert_clean(&report);
}

#[test]
fn builtin_at_other_major_fails_with_version_hint() {
    let report = Case::new()
        .with("app", world(&["wasi:io/streams@0.3.0"], &[]))
        .resolve();
    let f = only_violation(&report, Code::UnresolvedImport);
    assert_eq!(f.component.as_deref(), Some("app"));
    assert_eq!(f.item.as_deref(), Some("wasi:io/streams@0.3.0"));
    assert_says(
        f,
        &[
            "component \"app\" imports wasi:io/streams@0.3.0",
            "version mismatch",
            "the host has wasi:io/streams@0.2.12 built in",
        ],
    );
}

#[test]
fn builtin_unversioned_import_does_not_match_versioned_builtin() {
    // The linker needs both sides unversioned or the same canonical version.
    let report = Case::new()
        .with("app", world(&["wasi:io/streams"], &[]))
        .resolve();
    let f = only_violation(&report, Code::UnresolvedImport);
    assert_says(f, &["imports wasi:io/streams,", "version mismatch"]);
}

#[test]
fn builtin_set_is_configuration() {
    let report = Case::new()
        .with("app", world(&["wasi:io/streams@0.2.0"], &[]))
        .policy(|p| p.builtins.retain(|b| !b.package.is("wasi", "io")))
        .resolve();
    let f = only_violation(&report, Code::UnresolvedImport);
    assert_says(
        f,
        &["wasi:io/streams@0.2.0", "no hostInterfaces entry declares"],
    );
    assert!(!f.message.contains("version mismatch"), "{}", f.message);
}

#[test]
fn wasi_http_not_built_in_is_not_routed_to_an_entry() {
    // wasi:http is never bound to a plugin, so an entry cannot fix an unsupported version.
    let report = Case::new()
        .with("app", world(&["wasi:http/outgoing-handler@0.4.0"], &[]))
        .entry(entry("wasi:http", &["outgoing-handler"]))
        .resolve();
    let f = violation(&report, Code::UnresolvedImport);
    assert_says(
        f,
        &[
            "wasi:http/outgoing-handler@0.4.0",
            "wasi:http is served by the host itself",
            "rebuild the component",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Siblings
// ---------------------------------------------------------------------------------------------

#[test]
fn sibling_export_satisfies_import() {
    let report = Case::new()
        .with("a", world(&["acme:x/y@0.1.0"], &[]))
        .with("b", world(&[], &["acme:x/y@0.1.0"]))
        .resolve();
    // b's export is called by a, so no uncalled-export warning either.
    assert_clean(&report);
}

#[test]
fn sibling_at_a_semver_compatible_version_does_not_link() {
    // Siblings link by exact export name (wash-runtime 2.7.0 `build_export_map`), unlike the
    // linker's own lookups.
    let report = Case::new()
        .with("a", world(&["acme:x/y@1.2.0"], &[]))
        .with("b", world(&[], &["acme:x/y@1.0.3"]))
        .resolve();
    violation(&report, Code::UnresolvedImport);
}

#[test]
fn sibling_bare_function_export_does_not_satisfy_a_bare_import() {
    // Only instances link between components (wash-runtime 2.7.0 `component_exports`).
    let report = Case::new()
        .with(
            "a",
            world_items(vec![WorldItemRef::Bare("log".into())], vec![]),
        )
        .with(
            "b",
            world_items(vec![], vec![WorldItemRef::Bare("log".into())]),
        )
        .resolve();
    violation(&report, Code::UnresolvedImport);
}

#[test]
fn bare_import_nobody_exports_is_unresolved() {
    let report = Case::new()
        .with(
            "a",
            world_items(vec![WorldItemRef::Bare("log".into())], vec![]),
        )
        .resolve();
    let f = only_violation(&report, Code::UnresolvedImport);
    assert_says(
        f,
        &[
            "component \"a\" imports \"log\"",
            "export it from another component",
        ],
    );
}

#[test]
fn two_sibling_exporters_are_ambiguous() {
    let report = Case::new()
        .with("a", world(&["acme:x/y@0.1.0"], &[]))
        .with("b", world(&[], &["acme:x/y@0.1.0"]))
        .with("c", world(&[], &["acme:x/y@0.1.0"]))
        .resolve();
    let f = only_violation(&report, Code::AmbiguousProvider);
    assert_eq!(f.component.as_deref(), Some("a"));
    assert_eq!(f.item.as_deref(), Some("acme:x/y@0.1.0"));
    assert_says(
        f,
        &[
            "component \"a\" imports acme:x/y@0.1.0",
            "exported by multiple components",
            "\"b\", \"c\"",
            "keep exactly one exporter",
        ],
    );
}

#[test]
fn exporters_of_other_versions_are_not_ambiguous() {
    // c's @0.1.2 is another name: a links to b alone.
    let report = Case::new()
        .with("a", world(&["acme:x/y@0.1.0"], &[]))
        .with("b", world(&[], &["acme:x/y@0.1.0"]))
        .with("c", world(&[], &["acme:x/y@0.1.2"]))
        .resolve();
    assert!(report.allowed(), "{report:#?}");
}

#[test]
fn sibling_cycle_is_denied() {
    let report = Case::new()
        .with(
            "a",
            world(&["acme:x/from-b@0.1.0"], &["acme:x/from-a@0.1.0"]),
        )
        .with(
            "b",
            world(&["acme:x/from-a@0.1.0"], &["acme:x/from-b@0.1.0"]),
        )
        .resolve();
    let f = only_violation(&report, Code::DependencyCycle);
    assert_says(
        f,
        &[
            "circular dependency detected among components: a -> b -> a",
            "break the cycle",
        ],
    );
}

#[test]
fn longer_cycle_is_reported_once() {
    let report = Case::new()
        .with("a", world(&["acme:x/b@0.1.0"], &["acme:x/a@0.1.0"]))
        .with("b", world(&["acme:x/c@0.1.0"], &["acme:x/b@0.1.0"]))
        .with("c", world(&["acme:x/a@0.1.0"], &["acme:x/c@0.1.0"]))
        .resolve();
    let f = only_violation(&report, Code::DependencyCycle);
    assert_says(f, &["a -> b -> c -> a"]);
}

#[test]
fn cycle_search_is_iterative() {
    // A chain far deeper than a recursive search could follow on a thread's stack.
    let names: Vec<String> = (0..200_000).map(|i| format!("c{i:06}")).collect();
    let mut graph: BTreeMap<&str, Vec<&str>> = names
        .windows(2)
        .map(|w| (w[0].as_str(), vec![w[1].as_str()]))
        .collect();
    assert_eq!(super::first_cycle(&graph), None);
    let (first, last) = (names[0].as_str(), names[names.len() - 1].as_str());
    graph.insert(last, vec![first]);
    let cycle = super::first_cycle(&graph).expect("the closed chain is a cycle");
    assert_eq!(cycle.len(), names.len() + 1);
    assert_eq!((cycle[0], cycle[cycle.len() - 1]), (first, first));
}

#[test]
fn sibling_chain_without_cycle_is_fine() {
    let report = Case::new()
        .with("a", world(&["acme:x/b@0.1.0"], &[]))
        .with("b", world(&["acme:x/c@0.1.0"], &["acme:x/b@0.1.0"]))
        .with("c", world(&[], &["acme:x/c@0.1.0"]))
        .resolve();
    assert_clean(&report);
}

#[test]
fn sibling_at_other_canonical_version_does_not_satisfy() {
    let report = Case::new()
        .with("a", world(&["acme:x/y@0.2.0"], &[]))
        .with("b", world(&[], &["acme:x/y@0.1.0"]))
        .resolve();
    let f = only_violation(&report, Code::UnresolvedImport);
    assert_eq!(f.component.as_deref(), Some("a"));
    assert_says(
        f,
        &[
            "component \"a\" imports acme:x/y@0.2.0",
            "version mismatch: \"b\" exports acme:x/y@0.1.0",
        ],
    );
    // Nobody calls b's export at 0.1.
    let w = warning(&report, Code::UncalledExport);
    assert_eq!(w.component.as_deref(), Some("b"));
}

#[test]
fn sibling_wins_over_a_declared_plugin() {
    // The host binds a plugin only when no other component serves the interface.
    let report = Case::new()
        .with("a", world(&["wasi:keyvalue/store@0.2.0-draft"], &[]))
        .with("b", world(&[], &["wasi:keyvalue/store@0.2.0-draft"]))
        .resolve();
    assert_clean(&report);
}

// ---------------------------------------------------------------------------------------------
// Host plugins
// ---------------------------------------------------------------------------------------------

#[test]
fn unversioned_import_does_not_link_to_the_binding_of_an_unversioned_world() {
    // The keyvalue plugin advertises an unversioned world but defines
    // wasi:keyvalue/store@0.2.0-draft in the linker; an unversioned name matches only exactly.
    let report = Case::new()
        .with("app", world(&["wasi:keyvalue/store"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]))
        .hosts(vec![host("h1").offers(
            "wasi:keyvalue",
            None,
            &["store", "atomics", "batch"],
        )])
        .resolve();
    only_violation(&report, Code::PluginUnavailable);
}

#[test]
fn unversioned_import_does_not_link_to_a_versioned_plugin() {
    let report = Case::new()
        .with("app", world(&["wasi:keyvalue/store"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]))
        .hosts(vec![host("h1").offers(
            "wasi:keyvalue",
            Some("0.2.0-draft"),
            &["store", "atomics", "batch"],
        )])
        .resolve();
    only_violation(&report, Code::PluginUnavailable);
}

#[test]
fn versioned_import_against_unversioned_host_plugin() {
    let report = Case::new()
        .with("app", world(&["wasi:keyvalue/store@0.2.0-draft"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]).version("0.2.0-draft"))
        .hosts(vec![host("h1").offers("wasi:keyvalue", None, &["store"])])
        .resolve();
    assert_clean(&report);
}

#[test]
fn entry_version_must_equal_import_version() {
    // The host's rule is exact equality, not the linker's canonical semver.
    let report = Case::new()
        .with("app", world(&["acme:kv/store@0.2.1"], &[]))
        .entry(entry("acme:kv", &["store"]).version("0.2.0"))
        .hosts(vec![host("h1").offers(
            "acme:kv",
            Some("0.2.0"),
            &["store"],
        )])
        .resolve();
    let f = only_violation(&report, Code::VersionMismatch);
    assert_eq!(f.component.as_deref(), Some("app"));
    assert_eq!(f.item.as_deref(), Some("acme:kv/store@0.2.1"));
    assert_says(
        f,
        &[
            "component \"app\" imports acme:kv/store@0.2.1",
            "hostInterfaces entry acme:kv pins version 0.2.0",
            "equal",
            "set the entry's version to 0.2.1",
        ],
    );
}

#[test]
fn plugin_links_semver_compatibly_at_its_binding_version() {
    // The unversioned entry binds the 0.2.0 plugin; wasmtime's linker finds @0.2.1 on the
    // 0.2 track. Across tracks it does not.
    let case = |import: &str| {
        Case::new()
            .with("app", world(&[import], &[]))
            .entry(entry("acme:kv", &["store"]))
            .hosts(vec![host("h1").offers(
                "acme:kv",
                Some("0.2.0"),
                &["store"],
            )])
            .resolve()
    };
    assert_clean(&case("acme:kv/store@0.2.1"));
    let other_track = case("acme:kv/store@0.3.0");
    let f = only_violation(&other_track, Code::PluginUnavailable);
    assert_says(f, &["acme:kv@0.3.0", "(they offer 0.2.0)"]);
}

#[test]
fn entry_must_list_the_interface() {
    let report = Case::new()
        .with("app", world(&["wasi:keyvalue/store"], &[]))
        .entry(entry("wasi:keyvalue", &["atomics"]))
        .hosts(vec![wash_host("h1")])
        .resolve();
    let f = only_violation(&report, Code::InterfaceNotListed);
    assert_eq!(f.item.as_deref(), Some("wasi:keyvalue/store"));
    assert_says(
        f,
        &[
            "component \"app\" imports wasi:keyvalue/store",
            "hostInterfaces entry wasi:keyvalue lists [atomics]",
            "does not use [atomics]",
        ],
    );
}

#[test]
fn plugin_import_without_entry_names_the_entry_to_add() {
    let report = Case::new()
        .with("app", world(&["wasi:keyvalue/store@0.2.0-draft"], &[]))
        .hosts(vec![wash_host("h1"), wash_host("h2")])
        .resolve();
    let f = only_violation(&report, Code::UnresolvedImport);
    assert_eq!(f.component.as_deref(), Some("app"));
    assert_eq!(f.item.as_deref(), Some("wasi:keyvalue/store@0.2.0-draft"));
    assert_says(
        f,
        &[
            "component \"app\" imports wasi:keyvalue/store@0.2.0-draft",
            "no hostInterfaces entry declares",
            "add the hostInterfaces entry {namespace: wasi, package: keyvalue, interfaces: [store], version: \"0.2.0-draft\"}",
            "2 of the 2 Ready hosts offer it",
        ],
    );
}

#[test]
fn plugin_import_without_entry_or_plugin() {
    let report = Case::new()
        .with("app", world(&["acme:billing/invoices@1.0.0"], &[]))
        .resolve();
    let f = only_violation(&report, Code::UnresolvedImport);
    assert_says(
        f,
        &[
            "add the hostInterfaces entry {namespace: acme, package: billing, interfaces: [invoices], version: \"1.0.0\"}",
            "run hosts with a plugin for it (none of the 1 Ready hosts offers it)",
        ],
    );
}

#[test]
fn unnamed_import_with_only_named_entries() {
    let report = Case::new()
        .with("app", world(&["wasi:keyvalue/store"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]).name("cache"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    let f = violation(&report, Code::UnresolvedImport);
    assert_says(
        f,
        &[
            "every entry for wasi:keyvalue is named (cache)",
            "an unnamed import needs an unnamed entry",
        ],
    );
}

#[test]
fn plugin_resolves_when_some_eligible_host_offers_it() {
    let report = Case::new()
        .with("app", world(&["wasi:blobstore/container@0.2.0-draft"], &[]))
        .entry(entry("wasi:blobstore", &["container"]).version("0.2.0-draft"))
        .hosts(vec![host("h1"), wash_host("h2")])
        .resolve();
    assert_allowed(&report);
    assert_says(
        warning(&report, Code::PartialPlacement),
        &["only 1 of the 2 Ready hosts can run this workload (host-h2)"],
    );
    assert_eq!(report.eligible_hosts, 2);
}

#[test]
fn plugin_must_cover_all_interfaces_of_the_entry() {
    // The plugin bound to an entry must cover every interface the entry lists.
    let report = Case::new()
        .with(
            "app",
            world(&["acme:kv/store@0.1.0", "acme:kv/cas@0.1.0"], &[]),
        )
        .entry(entry("acme:kv", &["store", "cas"]).version("0.1.0"))
        .hosts(vec![host("h1").offers(
            "acme:kv",
            Some("0.1.0"),
            &["store"],
        )])
        .resolve();
    // Both imports fail: the entry binds no plugin.
    assert_eq!(
        codes(&report.violations),
        vec![Code::PluginUnavailable, Code::PluginUnavailable]
    );
    let f = &report.violations[0];
    assert_says(
        f,
        &[
            "provides acme:kv@0.1.0 with [store, cas]",
            "(they offer 0.1.0)",
        ],
    );
}

#[test]
fn messaging_consumer_03_with_hosts_offering_both() {
    let report = Case::new()
        .with("app", world(&["wasmcloud:messaging/consumer@0.3.0"], &[]))
        .entry(entry("wasmcloud:messaging", &["consumer"]).version("0.3.0"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_clean(&report);
}

#[test]
fn messaging_consumer_02_with_hosts_offering_both() {
    let report = Case::new()
        .with("app", world(&["wasmcloud:messaging/consumer@0.2.0"], &[]))
        .entry(entry("wasmcloud:messaging", &["consumer"]).version("0.2.0"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_clean(&report);
}

#[test]
fn messaging_consumer_03_with_hosts_offering_only_02() {
    let report = Case::new()
        .with("app", world(&["wasmcloud:messaging/consumer@0.3.0"], &[]))
        .entry(entry("wasmcloud:messaging", &["consumer"]).version("0.3.0"))
        .hosts(vec![
            host("h1").offers("wasmcloud:messaging", Some("0.2.0"), &["consumer", "types"]),
            host("h2").offers("wasmcloud:messaging", Some("0.2.0"), &["consumer", "types"]),
        ])
        .resolve();
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_eq!(f.component.as_deref(), Some("app"));
    assert_says(
        f,
        &[
            "component \"app\" imports wasmcloud:messaging/consumer@0.3.0 through hostInterfaces entry wasmcloud:messaging",
            "none of the 2 Ready hosts provides wasmcloud:messaging@0.3.0 (they offer 0.2.0)",
        ],
    );
}

#[test]
fn messaging_consumer_02_with_hosts_offering_only_03() {
    let report = Case::new()
        .with("app", world(&["wasmcloud:messaging/consumer@0.2.0"], &[]))
        .entry(entry("wasmcloud:messaging", &["consumer"]))
        .hosts(vec![host("h1").offers(
            "wasmcloud:messaging",
            Some("0.3.0"),
            &["consumer", "types"],
        )])
        .resolve();
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_says(
        f,
        &["provides wasmcloud:messaging@0.2.0 (they offer 0.3.0)"],
    );
}

#[test]
fn messaging_consumer_and_handler_in_one_entry() {
    // The usual declaration lists both the import (consumer) and the export the host calls
    // (handler); the plugin covers the entry through its imports and exports together.
    let report = Case::new()
        .with(
            "app",
            world(
                &["wasmcloud:messaging/consumer@0.2.0"],
                &["wasmcloud:messaging/handler@0.2.0"],
            ),
        )
        .entry(entry("wasmcloud:messaging", &["consumer", "handler"]).version("0.2.0"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_clean(&report);
}

#[test]
fn messaging_entry_with_handler_needs_a_host_that_calls_it() {
    // The host offers consumer but no plugin there calls handler: the entry cannot be bound,
    // and nothing calls the export either.
    let report = Case::new()
        .with(
            "app",
            world(
                &["wasmcloud:messaging/consumer@0.2.0"],
                &["wasmcloud:messaging/handler@0.2.0"],
            ),
        )
        .entry(entry("wasmcloud:messaging", &["consumer", "handler"]).version("0.2.0"))
        .hosts(vec![host("h1").offers(
            "wasmcloud:messaging",
            Some("0.2.0"),
            &["consumer", "types"],
        )])
        .resolve();
    assert_eq!(
        codes(&report.violations),
        vec![Code::PluginUnavailable, Code::PluginUnavailable],
        "{report:#?}"
    );
    assert_says(
        &report.violations[0],
        &[
            "imports wasmcloud:messaging/consumer@0.2.0",
            "wasmcloud:messaging@0.2.0 with [consumer, handler]",
        ],
    );
    assert_says(
        &report.violations[1],
        &["exports wasmcloud:messaging/handler@0.2.0 for the host to call"],
    );
}

#[test]
fn postgres_only_older_version_on_selected_hosts() {
    let pg = |id: &str| {
        host(id).offers(
            "wasmcloud:postgres",
            Some("0.1.1-draft"),
            &["types", "query", "prepared"],
        )
    };
    let report = Case::new()
        .with(
            "api",
            world_items(
                vec![named("orders-db", "wasmcloud:postgres/query@0.2.0")],
                vec![],
            ),
        )
        .entry(
            entry("wasmcloud:postgres", &["query"])
                .name("orders-db")
                .version("0.2.0")
                .config("url", "postgres://orders"),
        )
        .spec(|s| s.host_selector = Some(BTreeMap::from([("hostgroup".into(), "default".into())])))
        .hosts(vec![
            pg("h1"),
            pg("h2"),
            pg("h3"),
            // Not selected: offers 0.2.0 but is in another host group.
            host("h4").label("hostgroup", "batch").offers(
                "wasmcloud:postgres",
                Some("0.2.0"),
                &["types", "query", "prepared"],
            ),
        ])
        .resolve();
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_eq!(f.component.as_deref(), Some("api"));
    assert_eq!(f.item.as_deref(), Some("wasmcloud:postgres/query@0.2.0"));
    assert_eq!(
        f.message,
        "component \"api\" imports wasmcloud:postgres/query@0.2.0 through hostInterfaces entry \"orders-db\": none of the 3 hosts matching hostSelector {hostgroup=default} provides wasmcloud:postgres@0.2.0 (they offer 0.1.1-draft)"
    );
    assert_eq!(report.denial_message(), f.message);
}

#[test]
fn plugin_without_any_offer_says_so() {
    let report = Case::new()
        .with("api", world(&["wasmcloud:postgres/query@0.2.0"], &[]))
        .entry(entry("wasmcloud:postgres", &["query"]))
        .hosts(vec![wash_host("h1")])
        .resolve();
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_says(f, &["none of them has a plugin for wasmcloud:postgres"]);
}

#[test]
fn non_semver_entry_version_is_unversioned_for_matching() {
    // "0.2" is flagged as a spec error, but (like the host) it matches any version.
    let report = Case::new()
        .with("app", world(&["wasi:keyvalue/store@0.2.0-draft"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]).version("0.2"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_says(f, &["version \"0.2\"", "not semver", "\"0.2.0\""]);
}

// ---------------------------------------------------------------------------------------------
// Named entries
// ---------------------------------------------------------------------------------------------

#[test]
fn named_import_routes_to_named_entry() {
    let report = Case::new()
        .with(
            "api",
            world_items(
                vec![named("orders-db", "wasmcloud:postgres/query@0.2.0")],
                vec![],
            ),
        )
        .entry(entry("wasmcloud:postgres", &["query"]).name("orders-db"))
        .hosts(vec![host("h1").offers(
            "wasmcloud:postgres",
            Some("0.2.0"),
            &["types", "query", "prepared"],
        )])
        .resolve();
    assert_clean(&report);
}

#[test]
fn named_import_ignores_unnamed_entry_of_the_package() {
    let report = Case::new()
        .with(
            "api",
            world_items(
                vec![named("orders-db", "wasmcloud:postgres/query@0.2.0")],
                vec![],
            ),
        )
        .entry(entry("wasmcloud:postgres", &["query"]))
        .hosts(vec![host("h1").offers(
            "wasmcloud:postgres",
            Some("0.2.0"),
            &["query"],
        )])
        .resolve();
    let f = only_violation(&report, Code::NamedEntryMissing);
    assert_eq!(f.component.as_deref(), Some("api"));
    assert_eq!(
        f.item.as_deref(),
        Some("orders-db: wasmcloud:postgres/query@0.2.0")
    );
    assert_says(
        f,
        &[
            "component \"api\" imports wasmcloud:postgres/query@0.2.0 as \"orders-db\"",
            "no hostInterfaces entry is named \"orders-db\"",
            "add {name: orders-db, namespace: wasmcloud, package: postgres, interfaces: [query], version: \"0.2.0\"}",
        ],
    );
    // The unnamed entry is not used by anyone.
    warning(&report, Code::UnusedHostInterface);
}

#[test]
fn named_entry_for_another_package_is_a_violation() {
    let report = Case::new()
        .with(
            "api",
            world_items(
                vec![named("orders-db", "wasmcloud:postgres/query@0.2.0")],
                vec![],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]).name("orders-db"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    let f = only_violation(&report, Code::NamedEntryMissing);
    assert_says(
        f,
        &[
            "imports wasmcloud:postgres/query@0.2.0 as \"orders-db\"",
            "hostInterfaces entry \"orders-db\" is for wasi:keyvalue",
            "point the entry at wasmcloud:postgres",
        ],
    );
    // The mismatched entry is reported once, not again as unused.
    assert!(report.warnings.is_empty(), "{report:#?}");
}

#[test]
fn same_name_on_two_packages_routes_by_package() {
    // The CEL rules allow one name on entries of different packages; each named import routes
    // to the entry of its own package.
    let report = Case::new()
        .with(
            "app",
            world_items(
                vec![
                    named("cache", "wasi:keyvalue/store@0.2.0-draft"),
                    named("cache", "wasi:blobstore/container@0.2.0-draft"),
                ],
                vec![],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]).name("cache"))
        .entry(entry("wasi:blobstore", &["container"]).name("cache"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_clean(&report);
}

#[test]
fn named_entries_beside_an_unnamed_one() {
    let report = Case::new()
        .with(
            "app",
            world_items(
                vec![
                    item("wasi:keyvalue/store@0.2.0-draft"),
                    named("sessions", "wasi:keyvalue/store@0.2.0-draft"),
                ],
                vec![],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]))
        .entry(entry("wasi:keyvalue", &["store"]).name("sessions"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_clean(&report);
}

#[test]
fn named_entry_checks_listing_and_version() {
    let report = Case::new()
        .with(
            "app",
            world_items(
                vec![named("orders-db", "wasmcloud:postgres/query@0.2.0")],
                vec![],
            ),
        )
        .entry(
            entry("wasmcloud:postgres", &["query"])
                .name("orders-db")
                .version("0.1.1-draft"),
        )
        .hosts(vec![host("h1").offers(
            "wasmcloud:postgres",
            Some("0.2.0"),
            &["query"],
        )])
        .resolve();
    let f = only_violation(&report, Code::VersionMismatch);
    assert_says(
        f,
        &["hostInterfaces entry \"orders-db\" pins version 0.1.1-draft"],
    );
}

// ---------------------------------------------------------------------------------------------
// Eligibility
// ---------------------------------------------------------------------------------------------

fn kv_case() -> Case {
    Case::new()
        .with("app", world(&["wasi:keyvalue/store@0.2.0-draft"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]))
}

#[test]
fn not_ready_host_does_not_count() {
    let report = kv_case()
        .hosts(vec![wash_host("h1").ready("False"), host("h2")])
        .resolve();
    assert_eq!(report.eligible_hosts, 1);
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_says(
        f,
        &[
            "none of the 1 Ready hosts provides wasi:keyvalue",
            "none of them has a plugin for wasi:keyvalue",
        ],
    );
}

#[test]
fn no_ready_host_at_all_with_plugin_needs() {
    let report = kv_case()
        .hosts(vec![
            wash_host("h1").ready("Unknown"),
            wash_host("h2").ready("False"),
        ])
        .resolve();
    assert_eq!(report.eligible_hosts, 0);
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_says(f, &["no Ready host matches (2 hosts in the inventory)"]);
    // The violation already says it; no separate no-eligible-host warning.
    assert!(report.warnings.is_empty(), "{report:#?}");
}

#[test]
fn host_without_conditions_is_not_ready() {
    let mut h = wash_host("h1");
    h.status.as_mut().unwrap().conditions = None;
    let report = kv_case().hosts(vec![h]).resolve();
    assert_eq!(report.eligible_hosts, 0);
    only_violation(&report, Code::PluginUnavailable);
}

#[test]
fn host_id_pins_the_host() {
    let hosts = vec![host("plain"), wash_host("kv")];
    let pinned_plain = kv_case()
        .hosts(hosts.clone())
        .spec(|s| s.host_id = Some("plain".into()))
        .resolve();
    assert_eq!(pinned_plain.eligible_hosts, 1);
    let f = only_violation(&pinned_plain, Code::PluginUnavailable);
    assert_says(
        f,
        &["none of the 1 host with hostId plain provides wasi:keyvalue"],
    );

    let pinned_kv = kv_case()
        .hosts(hosts)
        .spec(|s| s.host_id = Some("kv".into()))
        .resolve();
    assert_eq!(pinned_kv.eligible_hosts, 1);
    assert_clean(&pinned_kv);
}

#[test]
fn pinned_host_must_still_be_ready() {
    // Upstream skips the readiness check for hostId; a pinned host that is not Ready still
    // cannot run the workload, so it is not eligible.
    let report = kv_case()
        .hosts(vec![wash_host("kv").ready("False")])
        .spec(|s| s.host_id = Some("kv".into()))
        .resolve();
    assert_eq!(report.eligible_hosts, 0);
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_says(
        f,
        &[
            "host with hostId kv",
            "no Ready host matches (1 hosts in the inventory)",
        ],
    );
}

#[test]
fn host_id_bypasses_environment_filter() {
    let report = kv_case()
        .hosts(vec![wash_host("kv").env("elsewhere")])
        .policy(|p| p.allow_shared_hosts = false)
        .spec(|s| s.host_id = Some("kv".into()))
        .resolve();
    assert_eq!(report.eligible_hosts, 1);
    assert_clean(&report);
}

#[test]
fn host_selector_is_exact_label_match() {
    let hosts = vec![
        wash_host("gpu").label("hostgroup", "gpu"),
        host("default"),
        wash_host("partial").label("zone", "b"),
    ];
    let report = kv_case()
        .hosts(hosts.clone())
        .spec(|s| {
            s.host_selector = Some(BTreeMap::from([
                ("hostgroup".into(), "default".into()),
                ("zone".into(), "a".into()),
            ]))
        })
        .resolve();
    assert_eq!(report.eligible_hosts, 0);
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_says(
        f,
        &["hosts matching hostSelector {hostgroup=default,zone=a}"],
    );

    let report = kv_case()
        .hosts(hosts.clone())
        .spec(|s| s.host_selector = Some(BTreeMap::from([("hostgroup".into(), "gpu".into())])))
        .resolve();
    assert_eq!(report.eligible_hosts, 1);
    assert_clean(&report);

    // An empty selector matches every Ready host (one of which lacks keyvalue).
    let report = kv_case()
        .hosts(hosts)
        .spec(|s| s.host_selector = Some(BTreeMap::new()))
        .resolve();
    assert_eq!(report.eligible_hosts, 3);
    assert_allowed(&report);
    warning(&report, Code::PartialPlacement);
}

/// Hosts in three environments; only the one in `tenant-b` has the keyvalue plugin.
fn env_hosts() -> Vec<Host> {
    vec![
        host("a").env("tenant-a"),
        wash_host("b").env("tenant-b"),
        host("c").env("shared"),
    ]
}

#[test]
fn environment_unset_shared_hosts_allowed_means_no_filter() {
    let report = kv_case().namespace("tenant-a").hosts(env_hosts()).resolve();
    assert_eq!(report.eligible_hosts, 3);
    assert_allowed(&report);
    // Only one of the three offers keyvalue: the operator may pick another.
    assert_says(
        warning(&report, Code::PartialPlacement),
        &["only 1 of the 3 Ready hosts"],
    );
}

#[test]
fn environment_unset_shared_hosts_denied_filters_to_namespace() {
    let report = kv_case()
        .namespace("tenant-a")
        .hosts(env_hosts())
        .policy(|p| p.allow_shared_hosts = false)
        .resolve();
    assert_eq!(report.eligible_hosts, 1);
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_says(f, &["Ready hosts in environment \"tenant-a\""]);
}

#[test]
fn environment_equal_to_namespace_filters_to_it() {
    for shared in [true, false] {
        let report = kv_case()
            .namespace("tenant-b")
            .hosts(env_hosts())
            .spec(|s| s.environment = Some("tenant-b".into()))
            .policy(|p| p.allow_shared_hosts = shared)
            .resolve();
        assert_eq!(report.eligible_hosts, 1, "allowSharedHosts={shared}");
        assert_clean(&report);
    }
}

#[test]
fn environment_other_than_namespace_with_shared_hosts_filters_to_it() {
    let report = kv_case()
        .namespace("tenant-a")
        .hosts(env_hosts())
        .spec(|s| s.environment = Some("tenant-b".into()))
        .resolve();
    assert_eq!(report.eligible_hosts, 1);
    assert_clean(&report);
}

#[test]
fn environment_other_than_namespace_without_shared_hosts_is_denied() {
    let report = kv_case()
        .namespace("tenant-a")
        .hosts(env_hosts())
        .spec(|s| s.environment = Some("tenant-b".into()))
        .policy(|p| p.allow_shared_hosts = false)
        .resolve();
    let f = only_violation(&report, Code::CrossEnvironment);
    assert_eq!(f.component, None);
    assert_says(
        f,
        &[
            "environment \"tenant-b\" outside its namespace \"tenant-a\"",
            "allowSharedHosts=false",
            "remove spec.environment or set it to \"tenant-a\"",
        ],
    );
}

#[test]
fn eligible_hosts_describes_targeting() {
    let hosts = env_hosts();
    let spec = WorkloadSpec {
        host_selector: Some(BTreeMap::from([("hostgroup".into(), "default".into())])),
        environment: Some("tenant-b".into()),
        ..Default::default()
    };
    let e = eligible_hosts(&spec, "tenant-b", &hosts, &Policy::default());
    assert_eq!(e.hosts.len(), 1);
    assert_eq!(e.hosts[0].host_id, "b");
    assert_eq!(
        e.description,
        "hosts matching hostSelector {hostgroup=default} in environment \"tenant-b\""
    );
    assert!(e.rejection.is_none());
}

#[test]
fn zero_eligible_hosts_without_plugin_needs_only_warns() {
    let report = Case::new()
        .with(
            "app",
            world(&["wasi:io/streams@0.2.0"], &["acme:x/api@0.1.0"]),
        )
        .with("client", world(&["acme:x/api@0.1.0"], &[]))
        .hosts(vec![])
        .resolve();
    assert_allowed(&report);
    assert_eq!(report.eligible_hosts, 0);
    assert_eq!(codes(&report.warnings), vec![Code::NoEligibleHost]);
    assert_says(
        &report.warnings[0],
        &["Ready hosts", "0 hosts in the inventory"],
    );
}

#[test]
fn zero_eligible_hosts_for_an_http_component_only_warns() {
    // wasi:http is served by the host itself: an HTTP entry is not a plugin need.
    let report = Case::new()
        .with("app", world(&[], &["wasi:http/incoming-handler@0.2.0"]))
        .entry(entry("wasi:http", &["incoming-handler"]).config("host", "shop.example.test"))
        .hosts(vec![host("h1").ready("False")])
        .resolve();
    assert_allowed(&report);
    assert_eq!(codes(&report.warnings), vec![Code::NoEligibleHost]);
    assert_says(&report.warnings[0], &["1 hosts in the inventory"]);
}

// ---------------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------------

#[test]
fn http_export_with_entry_and_host() {
    let report = Case::new()
        .with("web", world(&[], &["wasi:http/incoming-handler@0.2.0"]))
        .entry(entry("wasi:http", &["incoming-handler"]).config("host", "shop.example.test"))
        .resolve();
    assert_clean(&report);
}

#[test]
fn http_p3_handler_export_with_entry() {
    let report = Case::new()
        .with("web", world(&[], &["wasi:http/handler@0.3.0"]))
        .entry(entry("wasi:http", &["handler"]).config("host", "shop"))
        .resolve();
    assert_clean(&report);
}

#[test]
fn http_entry_without_config_host_is_invalid() {
    let report = Case::new()
        .with("web", world(&[], &["wasi:http/incoming-handler@0.2.0"]))
        .entry(entry("wasi:http", &["incoming-handler"]))
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_says(
        f,
        &["no config.host", "no host header found", "set config.host"],
    );
}

#[test]
fn http_entry_with_invalid_config_host_is_invalid() {
    let report = Case::new()
        .with("web", world(&[], &["wasi:http/incoming-handler@0.2.0"]))
        .entry(entry("wasi:http", &["incoming-handler"]).config("host", "shop_example.test"))
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_says(
        f,
        &[
            "config.host \"shop_example.test\"",
            "not a valid RFC 1123 hostname",
        ],
    );
}

#[test]
fn http_export_without_entry_warns() {
    let report = Case::new()
        .with("web", world(&[], &["wasi:http/incoming-handler@0.2.0"]))
        .resolve();
    assert_allowed(&report);
    let w = warning(&report, Code::UncalledExport);
    assert_eq!(w.component.as_deref(), Some("web"));
    assert_eq!(w.item.as_deref(), Some("wasi:http/incoming-handler@0.2.0"));
    assert_says(
        w,
        &[
            "component \"web\" exports wasi:http/incoming-handler@0.2.0, but nothing calls it",
            "add {namespace: wasi, package: http, interfaces: [incoming-handler], config: {host: <hostname>}}",
        ],
    );
}

#[test]
fn messaging_handler_without_calling_host_is_unavailable() {
    let report = Case::new()
        .with("sub", world(&[], &["wasmcloud:messaging/handler@0.2.0"]))
        .entry(entry("wasmcloud:messaging", &["handler"]).config("subscriptions", "orders"))
        .hosts(vec![host("h1").offers(
            "wasmcloud:messaging",
            Some("0.2.0"),
            &["consumer"],
        )])
        .resolve();
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_eq!(f.component.as_deref(), Some("sub"));
    assert_eq!(f.item.as_deref(), Some("wasmcloud:messaging/handler@0.2.0"));
    assert_says(
        f,
        &[
            "component \"sub\" exports wasmcloud:messaging/handler@0.2.0 for the host to call",
            "none of the 1 Ready hosts calls it (none of them has a plugin that calls it)",
        ],
    );
}

#[test]
fn messaging_handler_at_other_version_is_unavailable() {
    let report = Case::new()
        .with("sub", world(&[], &["wasmcloud:messaging/handler@0.3.0"]))
        .entry(entry("wasmcloud:messaging", &["handler"]))
        .hosts(vec![host("h1").calls(
            "wasmcloud:messaging",
            Some("0.2.0"),
            &["handler"],
        )])
        .resolve();
    let f = only_violation(&report, Code::PluginUnavailable);
    assert_says(f, &["they call wasmcloud:messaging at 0.2.0"]);
}

#[test]
fn messaging_handler_with_calling_host() {
    let report = Case::new()
        .with("sub", world(&[], &["wasmcloud:messaging/handler@0.3.0"]))
        .entry(entry("wasmcloud:messaging", &["handler"]))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_clean(&report);
}

#[test]
fn messaging_handler_without_entry_warns() {
    let report = Case::new()
        .with("sub", world(&[], &["wasmcloud:messaging/handler@0.2.0"]))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_allowed(&report);
    let w = warning(&report, Code::UncalledExport);
    assert_says(
        w,
        &["no hostInterfaces entry for its package asks the host to call it"],
    );
}

#[test]
fn service_run_export_is_called_by_the_host() {
    let report = Case::new()
        .spec(|s| {
            s.service = Some(WorkloadService {
                image: "ghcr.io/acme/svc:1.0.0".into(),
                ..Default::default()
            })
        })
        .policy(|_| {})
        .resolve_with_service(world(&["wasi:cli/stdout@0.2.0"], &["wasi:cli/run@0.2.0"]));
    assert_clean(&report);
}

impl Case {
    /// Resolves with `state` as the service's world.
    fn resolve_with_service(mut self, state: WorldState) -> Report {
        self.worlds.insert(SERVICE_KEY.into(), state);
        self.resolve()
    }
}

// ---------------------------------------------------------------------------------------------
// Unused entries
// ---------------------------------------------------------------------------------------------

#[test]
fn unused_entry_warns() {
    let report = Case::new()
        .with("app", world(&["wasi:io/streams@0.2.0"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]))
        .entry(entry("wasmcloud:postgres", &["query"]).name("orders-db"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_allowed(&report);
    assert_eq!(
        codes(&report.warnings),
        vec![Code::UnusedHostInterface, Code::UnusedHostInterface]
    );
    assert_says(
        &report.warnings[0],
        &[
            "hostInterfaces entry wasi:keyvalue is not used",
            "remove it",
        ],
    );
    assert_says(
        &report.warnings[1],
        &[
            "hostInterfaces entry \"orders-db\" is not used",
            "wasmcloud:postgres as \"orders-db\"",
        ],
    );
}

#[test]
fn unused_entry_not_reported_when_a_world_is_unknown() {
    let report = Case::new()
        .with("app", world(&["wasi:io/streams@0.2.0"], &[]))
        .with(
            "other",
            WorldState::Unknown("no annotation and no registry access".into()),
        )
        .entry(entry("wasi:keyvalue", &["store"]))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_allowed(&report);
    assert_eq!(codes(&report.warnings), vec![Code::WorldUnavailable]);
}

// ---------------------------------------------------------------------------------------------
// Unknown and invalid worlds
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_world_warns_under_warn() {
    let report = Case::new()
        .with("app", WorldState::Unknown("registry unreachable".into()))
        .resolve();
    assert_allowed(&report);
    let w = warning(&report, Code::WorldUnavailable);
    assert_eq!(w.component.as_deref(), Some("app"));
    assert_says(
        w,
        &["component \"app\": imports not checked: registry unreachable"],
    );
}

#[test]
fn unknown_world_denies_under_deny() {
    let report = Case::new()
        .with("app", WorldState::Unknown("registry unreachable".into()))
        .policy(|p| p.unknown_world = Enforcement::Deny)
        .resolve();
    let f = only_violation(&report, Code::WorldUnavailable);
    assert_says(f, &["component \"app\"", "registry unreachable"]);
}

#[test]
fn invalid_world_is_denied_even_under_warn() {
    let report = Case::new()
        .with(
            "app",
            WorldState::Invalid("not a WebAssembly component".into()),
        )
        .with("ok", world(&["wasi:io/streams@0.2.0"], &[]))
        .resolve();
    let f = only_violation(&report, Code::InvalidComponent);
    assert_eq!(f.component.as_deref(), Some("app"));
    assert_says(f, &["component \"app\": not a WebAssembly component"]);
}

#[test]
fn known_worlds_are_still_checked_next_to_unknown_ones() {
    let report = Case::new()
        .with("app", WorldState::Unknown("no source".into()))
        .with("kv", world(&["wasi:keyvalue/store"], &[]))
        .hosts(vec![wash_host("h1")])
        .resolve();
    let f = only_violation(&report, Code::UnresolvedImport);
    assert_eq!(f.component.as_deref(), Some("kv"));
}

// ---------------------------------------------------------------------------------------------
// Static checks
// ---------------------------------------------------------------------------------------------

fn plain() -> Case {
    Case::new().with("app", world(&["wasi:io/streams@0.2.0"], &[]))
}

#[test]
fn static_duplicate_component_names() {
    let report = plain()
        .spec(|s| s.components.as_mut().unwrap().push(component("app")))
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_eq!(f.component.as_deref(), Some("app"));
    assert_says(f, &["component name \"app\" is used twice", "unique"]);
}

#[test]
fn static_component_named_service_next_to_service() {
    let report = Case::new()
        .with("service", world(&[], &[]))
        .spec(|s| {
            s.service = Some(WorkloadService {
                image: "ghcr.io/acme/svc:1".into(),
                ..Default::default()
            })
        })
        .resolve();
    assert_spec_error(&report, &["a component named \"service\" is ambiguous"]);
}

#[test]
fn static_empty_workload() {
    let report = Case::new().resolve();
    assert_spec_error(&report, &["no components and no service"]);
}

#[test]
fn static_host_id_and_selector() {
    let report = plain()
        .spec(|s| {
            s.host_id = Some("h1".into());
            s.host_selector = Some(BTreeMap::from([("hostgroup".into(), "default".into())]));
        })
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_says(
        f,
        &["spec.hostId and spec.hostSelector are both set", "keep one"],
    );
}

fn volume(name: &str) -> Volume {
    Volume {
        name: name.into(),
        ephemeral: Some(EphemeralVolume {}),
        host_path: None,
    }
}

fn mounting(volume: &str) -> WorkloadComponent {
    WorkloadComponent {
        local_resources: Some(LocalResources {
            volume_mounts: Some(vec![VolumeMount {
                name: volume.into(),
                mount_path: "/data".into(),
                read_only: None,
            }]),
            ..Default::default()
        }),
        ..component("app")
    }
}

#[test]
fn static_volume_mount_must_name_a_volume() {
    let ok = Case::new()
        .with_component(mounting("data"), world(&[], &[]))
        .spec(|s| s.volumes = Some(vec![volume("data")]))
        .resolve();
    assert_clean(&ok);

    let report = Case::new()
        .with_component(mounting("scratch"), world(&[], &[]))
        .spec(|s| s.volumes = Some(vec![volume("data")]))
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_eq!(f.component.as_deref(), Some("app"));
    assert_says(
        f,
        &[
            "\"app\" mounts volume \"scratch\" at /data",
            "spec.volumes declares no such volume",
        ],
    );
}

#[test]
fn static_volume_both_or_neither_source() {
    let both = plain()
        .spec(|s| {
            s.volumes = Some(vec![Volume {
                host_path: Some(HostPathVolume {
                    path: "/srv".into(),
                }),
                ..volume("data")
            }])
        })
        .resolve();
    let f = only_violation(&both, Code::InvalidSpec);
    assert_says(f, &["volume \"data\" sets both ephemeral and hostPath"]);

    let neither = plain()
        .spec(|s| {
            s.volumes = Some(vec![Volume {
                ephemeral: None,
                ..volume("data")
            }])
        })
        .resolve();
    let f = only_violation(&neither, Code::InvalidSpec);
    assert_says(f, &["volume \"data\" sets neither ephemeral nor hostPath"]);
}

#[test]
fn static_volume_name_must_be_dns_label_and_unique() {
    let report = plain()
        .spec(|s| s.volumes = Some(vec![volume("Data_1")]))
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_says(f, &["volume name \"Data_1\" is not a DNS-1123 label"]);

    let report = plain()
        .spec(|s| s.volumes = Some(vec![volume("data"), volume("data")]))
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_says(f, &["volume \"data\" is declared twice"]);
}

#[test]
fn static_bad_pull_policy() {
    let report = Case::new()
        .with_component(
            WorkloadComponent {
                image_pull_policy: Some("Sometimes".into()),
                ..component("app")
            },
            world(&[], &[]),
        )
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_eq!(f.component.as_deref(), Some("app"));
    assert_says(
        f,
        &[
            "imagePullPolicy \"Sometimes\"",
            "Always, IfNotPresent, Never",
        ],
    );

    let report = Case::new()
        .spec(|s| {
            s.service = Some(WorkloadService {
                image: "ghcr.io/acme/svc:1".into(),
                image_pull_policy: Some("always".into()),
                ..Default::default()
            })
        })
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_eq!(f.component.as_deref(), Some("service"));
}

#[test]
fn static_deploy_policy() {
    let bad = plain()
        .deployment(DeploymentContext {
            deploy_policy: Some("BlueGreen".into()),
            artifact_names: vec![],
        })
        .resolve();
    let f = only_violation(&bad, Code::InvalidSpec);
    assert_says(
        f,
        &["deployPolicy \"BlueGreen\" is not RollingUpdate or Recreate"],
    );

    for ok in ["RollingUpdate", "Recreate"] {
        let report = plain()
            .deployment(DeploymentContext {
                deploy_policy: Some(ok.into()),
                artifact_names: vec![],
            })
            .resolve();
        assert_clean(&report);
    }
}

#[test]
fn static_artifact_images() {
    let art = WorkloadComponent {
        image: "artifact://api".into(),
        ..component("app")
    };
    let matching = Case::new()
        .with_component(art.clone(), world(&[], &[]))
        .deployment(DeploymentContext {
            deploy_policy: None,
            artifact_names: vec!["api".into()],
        })
        .resolve();
    assert_clean(&matching);

    let missing = Case::new()
        .with_component(art.clone(), world(&[], &[]))
        .deployment(DeploymentContext {
            deploy_policy: None,
            artifact_names: vec!["web".into()],
        })
        .resolve();
    let f = only_violation(&missing, Code::InvalidSpec);
    assert_eq!(f.component.as_deref(), Some("app"));
    assert_says(
        f,
        &[
            "uses image artifact://api",
            "spec.artifacts has no entry named \"api\"",
            "add {name: api, artifactFrom: {name: <Artifact>}}",
        ],
    );

    let plain_workload = Case::new().with_component(art, world(&[], &[])).resolve();
    let f = only_violation(&plain_workload, Code::InvalidSpec);
    assert_says(
        f,
        &["artifact:// images are resolved only in a WorkloadDeployment"],
    );
}

#[test]
fn static_empty_image() {
    let report = Case::new()
        .with_component(
            WorkloadComponent {
                image: " ".into(),
                image_pull_policy: Some("Always".into()),
                ..component("app")
            },
            world(&[], &[]),
        )
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_says(f, &["\"app\" has an empty image"]);
}

#[test]
fn static_non_semver_entry_version() {
    let report = Case::new()
        .with("app", world(&["wasmcloud:postgres/query@0.2.0"], &[]))
        .entry(entry("wasmcloud:postgres", &["query"]).version("0.2"))
        .hosts(vec![host("h1").offers(
            "wasmcloud:postgres",
            Some("0.2.0"),
            &["query"],
        )])
        .resolve();
    let f = only_violation(&report, Code::InvalidSpec);
    assert_says(
        f,
        &[
            "hostInterfaces entry wasmcloud:postgres has version \"0.2\", which is not semver",
            "treat the entry as unversioned",
            "\"0.2.0\"",
        ],
    );
}

#[test]
fn static_entry_without_interfaces() {
    let report = plain().entry(entry("wasi:keyvalue", &[])).resolve();
    assert_spec_error(
        &report,
        &["hostInterfaces entry wasi:keyvalue lists no interfaces"],
    );
}

#[test]
fn static_cel_duplicate_entries() {
    let report = Case::new()
        .with(
            "app",
            world_items(
                vec![named("cache", "wasi:keyvalue/store@0.2.0-draft")],
                vec![],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]).name("cache"))
        .entry(entry("wasi:keyvalue", &["store"]).name("cache"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_eq!(
        codes(&report.violations),
        vec![Code::InvalidSpec],
        "{report:#?}"
    );
    assert_says(
        &report.violations[0],
        &["hostInterfaces must not contain duplicate entries with the same namespace, package, name, and version"],
    );
}

#[test]
fn static_cel_two_unnamed_entries() {
    let report = Case::new()
        .with("app", world(&["wasi:keyvalue/store"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]).version("0.2.0-draft"))
        .entry(entry("wasi:keyvalue", &["store"]))
        .hosts(vec![wash_host("h1")])
        .resolve();
    let f = violation(&report, Code::InvalidSpec);
    assert_says(
        f,
        &["at most one unnamed hostInterface is allowed per namespace:package (wasi:keyvalue)"],
    );
}

#[test]
fn static_cel_unnamed_plus_named_is_fine() {
    let report = Case::new()
        .with(
            "app",
            world_items(
                vec![
                    item("wasi:keyvalue/store@0.2.0-draft"),
                    named("a", "wasi:keyvalue/store@0.2.0-draft"),
                    named("b", "wasi:keyvalue/store@0.2.0-draft"),
                ],
                vec![],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]))
        .entry(entry("wasi:keyvalue", &["store"]).name("a"))
        .entry(entry("wasi:keyvalue", &["store"]).name("b"))
        .hosts(vec![wash_host("h1")])
        .resolve();
    assert_clean(&report);
}

#[test]
fn static_allowed_hosts_bad_entry() {
    let report = Case::new()
        .with_component(
            WorkloadComponent {
                local_resources: Some(LocalResources {
                    allowed_hosts: Some(strings(&["api.example.com", "example.com/v1"])),
                    allowed_ip_name_lookups: Some(strings(&["*foo"])),
                    allowed_host_loopback_ports: Some(strings(&["5432/tcp", "80/sctp"])),
                    ..Default::default()
                }),
                ..component("app")
            },
            world(&["wasi:http/outgoing-handler@0.2.0"], &[]),
        )
        .resolve();
    assert_eq!(
        codes(&report.violations),
        vec![Code::InvalidSpec, Code::InvalidSpec, Code::InvalidSpec],
        "{report:#?}"
    );
    assert_says(
        &report.violations[0],
        &[
            "\"app\" has an invalid localResources.allowedHosts entry \"example.com/v1\"",
            "paths, queries and fragments are not allowed",
        ],
    );
    assert_says(
        &report.violations[1],
        &["allowedIpNameLookups entry \"*foo\""],
    );
    assert_says(
        &report.violations[2],
        &["allowedHostLoopbackPorts entry \"80/sctp\""],
    );
    assert!(report
        .violations
        .iter()
        .all(|f| f.component.as_deref() == Some("app")));
}

#[test]
fn static_checks_apply_to_the_service() {
    let report = Case::new()
        .spec(|s| {
            s.service = Some(WorkloadService {
                image: "artifact://svc".into(),
                local_resources: Some(LocalResources {
                    volume_mounts: Some(vec![VolumeMount {
                        name: "nope".into(),
                        mount_path: "/x".into(),
                        read_only: Some(true),
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .resolve_with_service(world(&[], &["wasi:cli/run@0.2.0"]));
    assert_eq!(
        codes(&report.violations),
        vec![Code::InvalidSpec, Code::InvalidSpec]
    );
    assert!(report
        .violations
        .iter()
        .all(|f| f.component.as_deref() == Some("service")));
}

#[test]
fn denial_message_numbers_several_problems() {
    let report = Case::new()
        .with("a", world(&["acme:x/y@0.1.0"], &[]))
        .spec(|s| s.components.as_mut().unwrap().push(component("a")))
        .resolve();
    assert_eq!(report.violations.len(), 2, "{report:#?}");
    let msg = report.denial_message();
    assert!(msg.starts_with("2 problems: (1) "), "{msg}");
    assert!(msg.contains("; (2) "), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Egress
// ---------------------------------------------------------------------------------------------

#[test]
fn egress_without_allowed_hosts_warns() {
    let report = Case::new()
        .with("app", world(&["wasi:http/outgoing-handler@0.2.0"], &[]))
        .resolve();
    assert_allowed(&report);
    let w = warning(&report, Code::EgressDenied);
    assert_eq!(w.component.as_deref(), Some("app"));
    assert_says(
        w,
        &[
            "component \"app\" imports wasi:http/outgoing-handler@0.2.0",
            "localResources.allowedHosts is empty",
            "list the hosts it calls (or \"*\")",
        ],
    );
}

#[test]
fn egress_with_empty_allowed_hosts_list_warns() {
    let report = Case::new()
        .with_component(
            WorkloadComponent {
                local_resources: Some(LocalResources {
                    allowed_hosts: Some(vec![]),
                    ..Default::default()
                }),
                ..component("app")
            },
            world(&["wasi:http/outgoing-handler@0.2.0"], &[]),
        )
        .resolve();
    warning(&report, Code::EgressDenied);
}

#[test]
fn egress_lookup_without_allowed_names_warns() {
    let report = Case::new()
        .with("app", world(&["wasi:sockets/ip-name-lookup@0.2.0"], &[]))
        .resolve();
    let w = warning(&report, Code::EgressDenied);
    assert_says(
        w,
        &[
            "wasi:sockets/ip-name-lookup@0.2.0",
            "allowedIpNameLookups is empty",
        ],
    );

    let report = Case::new()
        .with_component(
            WorkloadComponent {
                local_resources: Some(LocalResources {
                    allowed_ip_name_lookups: Some(strings(&["*.example.com"])),
                    ..Default::default()
                }),
                ..component("app")
            },
            world(&["wasi:sockets/ip-name-lookup@0.2.0"], &[]),
        )
        .resolve();
    assert_clean(&report);
}

#[test]
fn egress_of_the_service_uses_its_own_local_resources() {
    let report = Case::new()
        .spec(|s| {
            s.service = Some(WorkloadService {
                image: "ghcr.io/acme/svc:1".into(),
                local_resources: Some(LocalResources {
                    allowed_hosts: Some(strings(&["*"])),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .resolve_with_service(world(
            &["wasi:http/outgoing-handler@0.2.0"],
            &["wasi:cli/run@0.2.0"],
        ));
    assert_clean(&report);

    let report = Case::new()
        .spec(|s| {
            s.service = Some(WorkloadService {
                image: "ghcr.io/acme/svc:1".into(),
                ..Default::default()
            })
        })
        .resolve_with_service(world(
            &["wasi:http/outgoing-handler@0.2.0"],
            &["wasi:cli/run@0.2.0"],
        ));
    let w = warning(&report, Code::EgressDenied);
    assert_eq!(w.component.as_deref(), Some("service"));
}

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

fn entries(spec: &WorkloadSpec) -> &[HostInterface] {
    spec.host_interfaces.as_deref().unwrap_or_default()
}

fn pinned(mut c: WorkloadComponent) -> WorkloadComponent {
    c.image_pull_policy = Some("IfNotPresent".into());
    c
}

#[test]
fn defaults_never_set_an_entry_version() {
    // A versioned entry binds only a plugin of exactly that version, while the import links to
    // the plugin's version semver-compatibly: pinning the import's version can only hurt.
    for empty in [None, Some(String::new())] {
        let case = Case::new()
            .with_component(
                pinned(component("app")),
                world(&["wasmcloud:postgres/query@0.2.0"], &[]),
            )
            .entry(HostInterface {
                version: empty.clone(),
                ..entry("wasmcloud:postgres", &["query"])
            });
        let d = case.defaults();
        assert_eq!(entries(&d.spec)[0].version, empty, "{empty:?}");
        assert!(d.notes.is_empty(), "{:?}", d.notes);
    }
}

#[test]
fn defaults_leave_version_empty_when_components_disagree() {
    let case = Case::new()
        .with_component(
            pinned(component("a")),
            world(&["wasmcloud:messaging/consumer@0.2.0"], &[]),
        )
        .with_component(
            pinned(component("b")),
            world(&["wasmcloud:messaging/consumer@0.3.0"], &[]),
        )
        .entry(entry("wasmcloud:messaging", &["consumer"]));
    let d = case.defaults();
    assert_eq!(entries(&d.spec)[0].version, None);
    assert!(d.notes.is_empty(), "{:?}", d.notes);
}

#[test]
fn defaults_keep_a_set_version() {
    let case = Case::new()
        .with_component(
            pinned(component("app")),
            world(&["acme:kv/store@0.2.1"], &[]),
        )
        .entry(entry("acme:kv", &["store"]).version("0.2.0"));
    let d = case.defaults();
    assert_eq!(entries(&d.spec)[0].version.as_deref(), Some("0.2.0"));
    assert!(d.notes.is_empty(), "{:?}", d.notes);
}

#[test]
fn defaults_complete_interfaces() {
    let case = Case::new()
        .with_component(
            pinned(component("app")),
            world(
                &[
                    "wasi:keyvalue/store@0.2.0-draft",
                    "wasi:keyvalue/atomics@0.2.0-draft",
                    "wasi:io/streams@0.2.0",
                ],
                &[],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]).version("0.2.0-draft"));
    let d = case.defaults();
    assert_eq!(entries(&d.spec).len(), 1);
    assert_eq!(
        entries(&d.spec)[0].interfaces,
        strings(&["store", "atomics"])
    );
    assert_eq!(
        d.notes,
        vec!["hostInterfaces entry wasi:keyvalue: added interfaces [atomics] that the components import".to_string()]
    );
}

#[test]
fn defaults_complete_named_entries() {
    let case = Case::new()
        .with_component(
            pinned(component("api")),
            world_items(
                vec![
                    named("orders-db", "wasmcloud:postgres/query@0.2.0"),
                    named("orders-db", "wasmcloud:postgres/types@0.2.0"),
                ],
                vec![],
            ),
        )
        .entry(entry("wasmcloud:postgres", &["query"]).name("orders-db"));
    let d = case.defaults();
    let e = &entries(&d.spec)[0];
    assert_eq!(e.interfaces, strings(&["query", "types"]));
    assert_eq!(e.version, None);
    assert_eq!(d.notes.len(), 1, "{:?}", d.notes);
    assert!(
        d.notes.iter().all(|n| n.contains("\"orders-db\"")),
        "{:?}",
        d.notes
    );
}

#[test]
fn defaults_route_same_name_by_package() {
    let case = Case::new()
        .with_component(
            pinned(component("app")),
            world_items(
                vec![
                    named("cache", "wasi:keyvalue/store@0.2.0-draft"),
                    named("cache", "wasi:blobstore/container@0.2.0-draft"),
                ],
                vec![],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]).name("cache"))
        .entry(entry("wasi:blobstore", &["container"]).name("cache"));
    let d = case.defaults();
    assert_eq!(entries(&d.spec)[0].interfaces, strings(&["store"]));
    assert_eq!(entries(&d.spec)[1].interfaces, strings(&["container"]));
}

#[test]
fn defaults_auto_declare_wasi_config() {
    let case = Case::new().with_component(
        pinned(component("app")),
        world(&["wasi:config/store@0.2.0-rc.1"], &[]),
    );
    let d = case.defaults();
    assert_eq!(entries(&d.spec), &[entry("wasi:config", &["store"])]);
    assert_eq!(
        d.notes,
        vec!["hostInterfaces entry wasi:config: added for the imported [store]".to_string()]
    );
}

#[test]
fn defaults_do_not_auto_declare_postgres() {
    let case = Case::new().with_component(
        pinned(component("api")),
        world(&["wasmcloud:postgres/query@0.2.0"], &[]),
    );
    let d = case.defaults();
    assert_eq!(d.spec.host_interfaces, None);
    assert!(d.notes.is_empty(), "{:?}", d.notes);
    assert_eq!(d.spec, case.spec);
}

#[test]
fn defaults_do_not_declare_builtins_siblings_or_http() {
    let case = Case::new()
        .with_component(
            pinned(component("a")),
            world(
                &[
                    "wasi:io/streams@0.2.6",
                    "wasi:http/outgoing-handler@0.2.0",
                    "wasi:http/outgoing-handler@0.9.0",
                    "wasi:keyvalue/store@0.2.0-draft",
                ],
                &[],
            ),
        )
        .with_component(
            pinned(component("b")),
            world(&[], &["wasi:keyvalue/store@0.2.0-draft"]),
        );
    let d = case.defaults();
    assert_eq!(d.spec.host_interfaces, None);
    assert!(d.notes.is_empty(), "{:?}", d.notes);
}

#[test]
fn defaults_do_not_auto_declare_beside_a_named_entry() {
    let case = Case::new()
        .with_component(
            pinned(component("app")),
            world(&["wasi:keyvalue/store"], &[]),
        )
        .entry(entry("wasi:keyvalue", &["store"]).name("sessions"));
    let d = case.defaults();
    assert_eq!(entries(&d.spec).len(), 1);
    assert!(d.notes.is_empty(), "{:?}", d.notes);
}

#[test]
fn defaults_image_pull_policy() {
    let case = Case::new()
        .with_component(
            WorkloadComponent {
                image: "ghcr.io/acme/a:latest".into(),
                ..component("a")
            },
            world(&[], &[]),
        )
        .with_component(component("b"), world(&[], &[]))
        .with_component(
            WorkloadComponent {
                image: "ghcr.io/acme/c".into(),
                ..component("c")
            },
            world(&[], &[]),
        )
        .with_component(
            WorkloadComponent {
                image_pull_policy: Some("Never".into()),
                ..component("d")
            },
            world(&[], &[]),
        )
        .spec(|s| {
            s.service = Some(WorkloadService {
                image: "ghcr.io/acme/svc@sha256:0123".into(),
                ..Default::default()
            })
        });
    let d = case.defaults();
    let policies: Vec<Option<&str>> = d
        .spec
        .components
        .iter()
        .flatten()
        .map(|c| c.image_pull_policy.as_deref())
        .collect();
    assert_eq!(
        policies,
        vec![
            Some("Always"),
            Some("IfNotPresent"),
            Some("Always"),
            Some("Never")
        ]
    );
    assert_eq!(
        d.spec
            .service
            .as_ref()
            .unwrap()
            .image_pull_policy
            .as_deref(),
        Some("IfNotPresent")
    );
    assert_eq!(
        d.notes,
        vec![
            "component \"a\": imagePullPolicy defaulted to Always".to_string(),
            "component \"b\": imagePullPolicy defaulted to IfNotPresent".to_string(),
            "component \"c\": imagePullPolicy defaulted to Always".to_string(),
            "service: imagePullPolicy defaulted to IfNotPresent".to_string(),
        ]
    );
}

#[test]
fn defaults_skip_unknown_worlds() {
    let case = Case::new()
        .with_component(
            pinned(component("app")),
            WorldState::Unknown("offline".into()),
        )
        .entry(entry("wasi:keyvalue", &["store"]));
    let d = case.defaults();
    assert_eq!(d.spec, case.spec);
    assert!(d.notes.is_empty());
}

#[test]
fn defaults_are_idempotent() {
    let case = Case::new()
        .with(
            "app",
            world_items(
                vec![
                    item("wasi:config/store@0.2.0-rc.1"),
                    item("wasi:keyvalue/store@0.2.0-draft"),
                    item("wasi:keyvalue/batch@0.2.0-draft"),
                    item("wasi:logging/logging"),
                    item("wasmcloud:postgres/query@0.2.0"),
                    named("orders-db", "wasmcloud:postgres/query@0.2.0"),
                    named("orders-db", "wasmcloud:postgres/types@0.2.0"),
                    item("wasi:io/streams@0.2.0"),
                ],
                vec![item("wasi:http/incoming-handler@0.2.0")],
            ),
        )
        .with("b", world(&["wasmcloud:messaging/consumer@0.3.0"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]))
        .entry(entry("wasmcloud:postgres", &["query"]).name("orders-db"))
        .entry(entry("wasi:http", &["incoming-handler"]).config("host", "shop"))
        .spec(|s| {
            s.service = Some(WorkloadService {
                image: "ghcr.io/acme/svc".into(),
                ..Default::default()
            })
        });
    let first = case.defaults();
    assert!(!first.notes.is_empty());
    let second = apply_defaults(&first.spec, &case.worlds, &case.policy);
    assert!(
        second.notes.is_empty(),
        "second pass notes: {:?}",
        second.notes
    );
    assert_eq!(second.spec, first.spec);
}

#[test]
fn defaults_of_an_already_complete_spec_change_nothing() {
    let case = Case::new().with_component(
        pinned(component("app")),
        world(&["wasi:io/streams@0.2.0"], &[]),
    );
    let d = case.defaults();
    assert_eq!(d.spec, case.spec);
    assert!(d.notes.is_empty());
    // An explicit empty list stays as written.
    let case = case.spec(|s| s.host_interfaces = Some(vec![]));
    assert_eq!(case.defaults().spec.host_interfaces, Some(vec![]));
}

#[test]
fn defaulted_spec_with_auto_declared_entry_resolves() {
    let mut case = Case::new()
        .with(
            "app",
            world(
                &[
                    "wasi:config/store@0.2.0-rc.1",
                    "wasi:logging/logging@0.1.0-draft",
                ],
                &[],
            ),
        )
        .hosts(vec![wash_host("h1")]);
    let before = case.resolve();
    assert_eq!(
        codes(&before.violations),
        vec![Code::UnresolvedImport, Code::UnresolvedImport],
        "{before:#?}"
    );

    let d = case.defaults();
    assert_eq!(entries(&d.spec).len(), 2, "{:?}", d.notes);
    case.spec = d.spec;
    let after = case.resolve();
    assert_clean(&after);
}

#[test]
fn defaulted_spec_with_completed_entry_resolves() {
    let mut case = Case::new()
        .with(
            "app",
            world(
                &[
                    "wasi:keyvalue/store@0.2.0-draft",
                    "wasi:keyvalue/atomics@0.2.0-draft",
                ],
                &[],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]))
        .hosts(vec![wash_host("h1")]);
    // The bound plugin adds its whole package, so atomics links without being listed.
    assert_clean(&case.resolve());
    let defaulted = case.defaults();
    assert_eq!(
        entries(&defaulted.spec)[0].interfaces,
        strings(&["store", "atomics"])
    );
    case.spec = defaulted.spec;
    assert_clean(&case.resolve());
}

// ---------------------------------------------------------------------------------------------
// Upstream's verdicts (examples/upstream; wash-runtime 2.7.0 on wasmtime 47.0.3, proven against
// the real linker in tests/fidelity.rs)
// ---------------------------------------------------------------------------------------------

fn http_entry(interface: &str) -> HostInterface {
    entry("wasi:http", &[interface]).config("host", "app.example.test")
}

#[test]
fn upstream_p3_wasi_is_built_in() {
    let report = Case::new()
        .with(
            "api",
            world(
                &[
                    "wasi:clocks/monotonic-clock@0.3.0",
                    "wasi:random/random@0.3.0",
                    "wasi:cli/stdout@0.3.0",
                ],
                &["wasi:http/handler@0.3.0"],
            ),
        )
        .entry(http_entry("handler"))
        .resolve();
    assert_clean(&report);
}

#[test]
fn upstream_p3_http_client_is_built_in() {
    let report = Case::new()
        .with(
            "proxy",
            world(
                &["wasi:http/client@0.3.0", "wasi:http/types@0.3.0"],
                &["wasi:http/handler@0.3.0"],
            ),
        )
        .entry(http_entry("handler"))
        .resolve();
    assert_allowed(&report);
}

#[test]
fn upstream_secrets_link_semver_compatibly_through_an_unversioned_entry() {
    let case = Case::new()
        .with("api", world(&["wasmcloud:secrets/store@2.0.0"], &[]))
        .entry(entry("wasmcloud:secrets", &["store"]))
        .hosts(vec![host("h1").offers(
            "wasmcloud:secrets",
            Some("2.1.0"),
            &["store", "reveal", "secret"],
        )]);
    assert_clean(&case.resolve());
    // The default never pins the entry to the import's version (2.0.0 would find no plugin).
    let defaulted = case.defaults();
    let entries = defaulted.spec.host_interfaces.expect("entries");
    assert_eq!(entries[0].version, None, "{:?}", defaulted.notes);
    // Pinned by hand to the import's version: the host finds no plugin of exactly 2.0.0.
    let pinned = Case::new()
        .with("api", world(&["wasmcloud:secrets/store@2.0.0"], &[]))
        .entry(entry("wasmcloud:secrets", &["store"]).version("2.0.0"))
        .hosts(vec![host("h1").offers(
            "wasmcloud:secrets",
            Some("2.1.0"),
            &["store", "reveal", "secret"],
        )])
        .resolve();
    let f = only_violation(&pinned, Code::PluginUnavailable);
    assert_says(f, &["pins version 2.0.0", "they offer 2.1.0"]);
}

#[test]
fn upstream_keyvalue_prerelease_matches_only_exactly() {
    let case = |import: &str| {
        Case::new()
            .with("counter", world(&[import], &[]))
            .entry(entry("wasi:keyvalue", &["store"]))
            .hosts(vec![wash_host("h1")])
            .resolve()
    };
    let draft2 = case("wasi:keyvalue/store@0.2.0-draft2");
    let f = only_violation(&draft2, Code::PluginUnavailable);
    assert_says(
        f,
        &[
            "wasi:keyvalue/store@0.2.0-draft2",
            "provides wasi:keyvalue@0.2.0-draft2",
        ],
    );
    assert_allowed(&case("wasi:keyvalue/store@0.2.0-draft"));
}

#[test]
fn upstream_siblings_link_by_exact_name() {
    let report = Case::new()
        .with("front", world(&["example:greet/api@0.2.0"], &[]))
        .with("greeter", world(&[], &["example:greet/api@0.2.1"]))
        .resolve();
    let f = violation(&report, Code::UnresolvedImport);
    assert_says(
        f,
        &[
            "component \"front\" imports example:greet/api@0.2.0, which no sibling component exports",
            "\"greeter\" exports example:greet/api@0.2.1, and components link only by the exact name",
        ],
    );
}

#[test]
fn bare_function_imports_never_link_to_siblings() {
    let report = Case::new()
        .with(
            "a",
            world_items(vec![WorldItemRef::Bare("log".into())], vec![]),
        )
        .with(
            "b",
            world_items(vec![], vec![WorldItemRef::Bare("log".into())]),
        )
        .resolve();
    violation(&report, Code::UnresolvedImport);
}

#[test]
fn an_entry_binds_only_for_a_component_holding_every_listed_interface() {
    // wash-runtime 2.7.0 `bind_plugins`: `includes_bidirectional` needs all of them.
    let case = |imports: &[&str]| {
        Case::new()
            .with("app", world(imports, &[]))
            .entry(entry("wasi:keyvalue", &["store", "atomics"]))
            .hosts(vec![wash_host("h1")])
            .resolve()
    };
    let store_only = case(&["wasi:keyvalue/store@0.2.0-draft"]);
    let f = only_violation(&store_only, Code::InterfaceNotListed);
    assert_says(f, &["lists [store, atomics]", "does not use [atomics]"]);
    assert_allowed(&case(&[
        "wasi:keyvalue/store@0.2.0-draft",
        "wasi:keyvalue/atomics@0.2.0-draft",
    ]));
    // A bound plugin adds its whole package: batch links although the entry does not list it.
    assert_allowed(&case(&[
        "wasi:keyvalue/store@0.2.0-draft",
        "wasi:keyvalue/atomics@0.2.0-draft",
        "wasi:keyvalue/batch@0.2.0-draft",
    ]));
}

#[test]
fn newer_hosts_bind_an_entry_for_any_listed_interface() {
    let mut h = wash_host("h1");
    h.status.as_mut().expect("status").version = Some("2.8.0".into());
    let report = Case::new()
        .with("app", world(&["wasi:keyvalue/store@0.2.0-draft"], &[]))
        .entry(entry("wasi:keyvalue", &["store", "atomics"]))
        .hosts(vec![h])
        .resolve();
    assert_allowed(&report);
}

#[test]
fn an_unversioned_entry_binds_the_oldest_of_several_plugin_versions() {
    // wasmcloud-postgres binds 0.1.1-draft unless the entry asks for 0.2.0.
    let postgres = || {
        host("h1")
            .offers(
                "wasmcloud:postgres",
                Some("0.1.1-draft"),
                &["types", "query", "prepared"],
            )
            .offers(
                "wasmcloud:postgres",
                Some("0.2.0"),
                &["types", "query", "prepared"],
            )
    };
    let unversioned = Case::new()
        .with("api", world(&["wasmcloud:postgres/query@0.2.0"], &[]))
        .entry(entry("wasmcloud:postgres", &["query"]))
        .hosts(vec![postgres()])
        .resolve();
    only_violation(&unversioned, Code::PluginUnavailable);
    let pinned = Case::new()
        .with("api", world(&["wasmcloud:postgres/query@0.2.0"], &[]))
        .entry(entry("wasmcloud:postgres", &["query"]).version("0.2.0"))
        .hosts(vec![postgres()])
        .resolve();
    assert_allowed(&pinned);
}

#[test]
fn types_only_imports_need_nothing() {
    let mut w = ComponentWorld::new(vec![item("acme:shapes/types@1.0.0")], vec![]);
    w.types_only
        .insert("acme:shapes/types@1.0.0".parse().expect("ref"));
    let report = Case::new()
        .with("app", WorldState::Known(w.into()))
        .resolve();
    assert_clean(&report);
}

#[test]
fn only_some_eligible_hosts_can_run_it() {
    let with_kv = || wash_host("kv-1");
    let plain = || host("plain-1");
    let case = Case::new()
        .with("app", world(&["wasi:keyvalue/store@0.2.0-draft"], &[]))
        .entry(entry("wasi:keyvalue", &["store"]))
        .hosts(vec![with_kv(), plain()]);
    let report = case.resolve();
    assert_allowed(&report);
    assert_says(
        warning(&report, Code::PartialPlacement),
        &["only 1 of the 2", "(host-kv-1)", "narrow hostSelector"],
    );
    let strict = case.policy(|p| p.require_all_eligible = true).resolve();
    only_violation(&strict, Code::PartialPlacement);
}

#[test]
fn needs_met_on_different_hosts_are_not_met() {
    let report = Case::new()
        .with(
            "app",
            world(
                &[
                    "wasi:keyvalue/store@0.2.0-draft",
                    "wasmcloud:secrets/store@2.1.0",
                ],
                &[],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]))
        .entry(entry("wasmcloud:secrets", &["store"]))
        .hosts(vec![
            host("kv").offers("wasi:keyvalue", None, &["store"]),
            host("secrets").offers("wasmcloud:secrets", Some("2.1.0"), &["store", "reveal"]),
        ])
        .resolve();
    assert_says(
        only_violation(&report, Code::PluginUnavailable),
        &["no single host offers all of them"],
    );
}

#[test]
fn checked_defaults_never_turn_a_verdict_worse() {
    // Component a imports [store]; b imports [store, atomics]. Completing the entry with
    // atomics would unbind it for a on a 2.7 host: the check keeps the entry as written.
    let case = Case::new()
        .with("a", world(&["wasi:keyvalue/store@0.2.0-draft"], &[]))
        .with(
            "b",
            world(
                &[
                    "wasi:keyvalue/store@0.2.0-draft",
                    "wasi:keyvalue/atomics@0.2.0-draft",
                ],
                &[],
            ),
        )
        .entry(entry("wasi:keyvalue", &["store"]))
        .hosts(vec![wash_host("h1")]);
    assert_allowed(&case.resolve());
    let judge = |spec: &WorkloadSpec| {
        resolve(&ResolveInput {
            namespace: &case.namespace,
            spec,
            worlds: &case.worlds,
            hosts: &Hosts::new(case.hosts.clone()),
            policy: &case.policy,
            deployment: None,
        })
    };
    let defaulted = apply_defaults_checked(&case.spec, &case.worlds, &case.policy, judge);
    let after = judge(&defaulted.spec);
    assert!(after.allowed(), "{:?}", after.violations);
    assert_eq!(
        defaulted.spec.host_interfaces.expect("entries")[0].interfaces,
        strings(&["store"])
    );
}

#[test]
fn a_wasi_http_entry_listing_types_needs_a_plugin_that_does_not_exist() {
    let case = |interfaces: &[&str]| {
        Case::new()
            .with(
                "api",
                world(
                    &["wasi:http/types@0.2.3"],
                    &["wasi:http/incoming-handler@0.2.3"],
                ),
            )
            .entry(entry("wasi:http", interfaces).config("host", "api.example.test"))
            .resolve()
    };
    let with_types = case(&["incoming-handler", "types"]);
    let f = violation(&with_types, Code::PluginUnavailable);
    assert_says(
        f,
        &[
            "uses every interface hostInterfaces entry wasi:http lists ([incoming-handler, types])",
            "has a plugin advertising wasi:http",
        ],
    );
    assert_allowed(&case(&["incoming-handler"]));
}

#[test]
fn a_sibling_interface_using_host_resources_does_not_link() {
    // front imports wasi:http/handler from back: the host's shim for it has its own request
    // type, not the host's wasi:http/types one (tests/fidelity.rs, oracle "mismatched resource
    // types").
    let report = Case::new()
        .with(
            "front",
            world(
                &["wasi:http/handler@0.3.0", "wasi:http/types@0.3.0"],
                &["acme:app/api@0.1.0"],
            ),
        )
        .with("back", world(&[], &["wasi:http/handler@0.3.0"]))
        .entry(http_entry("handler"))
        .resolve();
    let f = violation(&report, Code::UnresolvedImport);
    assert_says(
        f,
        &[
            "imports wasi:http/handler@0.3.0 from component \"back\"",
            "uses resources of wasi:http/types@0.3.0",
        ],
    );
    // An interface whose resources are its own links through the shims.
    let own = Case::new()
        .with("front", world(&["acme:greet/api@0.1.0"], &[]))
        .with("back", world(&[], &["acme:greet/api@0.1.0"]))
        .resolve();
    assert_allowed(&own);
}

#[test]
fn an_entry_for_a_built_in_interface_needs_a_plugin_too() {
    // The component holds wasi:cli/exit, so the host binds the entry, and no plugin advertises
    // wasi:cli (tests/fidelity.rs, oracle: "requested interfaces that are not available").
    let case = |with_entry: bool| {
        let c = Case::new().with("api", world(&["wasi:cli/exit@0.2.12"], &[]));
        if with_entry {
            c.entry(entry("wasi:cli", &["exit"])).resolve()
        } else {
            c.resolve()
        }
    };
    let with_entry = case(true);
    let f = violation(&with_entry, Code::PluginUnavailable);
    assert_says(
        f,
        &["component \"api\" uses every interface hostInterfaces entry wasi:cli lists"],
    );
    assert_clean(&case(false));
}

#[test]
fn an_entry_held_through_an_export_needs_a_plugin_advertising_all_of_it() {
    let report = Case::new()
        .with("api", world(&[], &["acme:msg/handler@0.2.0"]))
        .entry(entry("acme:msg", &["handler", "types"]).version("0.2.0"))
        .hosts(vec![host("h1")
            .offers("acme:msg", Some("0.2.0"), &["consumer"])
            .calls("acme:msg", Some("0.2.0"), &["handler"])])
        .resolve();
    // The component exports handler and (types-only) imports types; no plugin advertises types.
    let mut w = ComponentWorld::new(
        vec![item("acme:msg/types@0.2.0")],
        vec![item("acme:msg/handler@0.2.0")],
    );
    w.types_only
        .insert("acme:msg/types@0.2.0".parse().expect("ref"));
    let with_types = Case::new()
        .with("api", WorldState::Known(w.into()))
        .entry(entry("acme:msg", &["handler", "types"]).version("0.2.0"))
        .hosts(vec![host("h1")
            .offers("acme:msg", Some("0.2.0"), &["consumer"])
            .calls("acme:msg", Some("0.2.0"), &["handler"])])
        .resolve();
    assert_says(
        violation(&with_types, Code::PluginUnavailable),
        &[
            "lists ([handler, types])",
            "acme:msg@0.2.0 with all of them",
        ],
    );
    // Without the types import the entry does not bind at all (not every interface is held):
    // nothing to serve, and the export is left uncalled.
    assert!(report.allowed(), "{report:#?}");
}

#[test]
fn a_name_the_importer_also_exports_is_ambiguous_or_unlinkable() {
    // wash-runtime 2.7.0 `build_export_map` counts the importer's own exports.
    let both = Case::new()
        .with(
            "mw",
            world(&["example:greet/api@0.2.0"], &["example:greet/api@0.2.0"]),
        )
        .with("greeter", world(&[], &["example:greet/api@0.2.0"]))
        .resolve();
    assert_says(
        violation(&both, Code::AmbiguousProvider),
        &["\"mw\", \"greeter\""],
    );
    let alone = Case::new()
        .with(
            "mw",
            world(&["example:greet/api@0.2.0"], &["example:greet/api@0.2.0"]),
        )
        .resolve();
    assert_says(
        violation(&alone, Code::UnresolvedImport),
        &["which only it exports"],
    );
}

#[test]
fn an_export_whose_entry_does_not_bind_is_only_uncalled() {
    // The entry pins 0.3.0 and the component exports handler@0.2.0: the host binds nothing
    // for it and starts the workload; the export is simply never called.
    let mut w = ComponentWorld::new(
        vec![item("acme:msg/types@0.2.0")],
        vec![item("acme:msg/handler@0.2.0")],
    );
    w.types_only
        .insert("acme:msg/types@0.2.0".parse().expect("ref"));
    let report = Case::new()
        .with("c0", WorldState::Known(w.into()))
        .entry(entry("acme:msg", &["handler", "types"]).version("0.3.0"))
        .resolve();
    assert!(report.allowed(), "{report:#?}");
    warning(&report, Code::UncalledExport);
}

mod properties;
