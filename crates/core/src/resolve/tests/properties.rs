//! Property tests of the resolver's invariants, over workloads and inventories drawn from a small
//! universe of interfaces (WASI built-ins, versioned plugins, sibling interfaces) so that links,
//! version mismatches, missing plugins and host selection all happen often:
//! - the verdict does not depend on the order of components or of hosts;
//! - defaults are idempotent (defaulting a defaulted spec changes nothing);
//! - a defaulted spec (as the mutating webhook writes it) resolves at least as well as the
//!   original: admitted stays admitted, and no new violation code appears.

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;

use super::*;

/// Imports a component may have: built-ins, plugins at several versions, sibling interfaces.
const IMPORTS: &[&str] = &[
    "wasi:keyvalue/store@0.2.0-draft",
    "wasi:keyvalue/atomics@0.2.0-draft",
    "wasi:config/store@0.2.0-rc.1",
    "wasi:logging/logging",
    "wasmcloud:postgres/query@0.1.1-draft",
    "wasmcloud:postgres/query@0.2.0",
    "wasmcloud:messaging/consumer@0.2.0",
    "wasmcloud:messaging/consumer@0.3.0",
    "wasi:http/outgoing-handler@0.2.0",
    "acme:lib/api@1.0.0",
    "acme:lib/api@1.1.0",
    "acme:other/tool@0.1.0",
];

/// Exports a component may have.
const EXPORTS: &[&str] = &[
    "wasi:http/incoming-handler@0.2.0",
    "acme:lib/api@1.0.0",
    "acme:lib/api@1.2.0",
    "acme:other/tool@0.1.0",
    "wasmcloud:messaging/handler@0.2.0",
];

/// Plugins a host may offer: (ns:pkg, version, interfaces).
const PLUGINS: &[(&str, Option<&str>, &[&str])] = &[
    (
        "wasmcloud:postgres",
        Some("0.1.1-draft"),
        &["query", "types"],
    ),
    ("wasmcloud:postgres", Some("0.2.0"), &["query", "types"]),
    ("wasi:keyvalue", Some("0.2.0-draft"), &["store", "atomics"]),
    ("wasi:keyvalue", None, &["store", "atomics", "batch"]),
    ("wasi:config", Some("0.2.0-rc.1"), &["store"]),
    ("wasmcloud:messaging", Some("0.2.0"), &["consumer", "types"]),
    ("wasmcloud:messaging", Some("0.3.0"), &["consumer", "types"]),
];

/// `hostInterfaces` entries a workload may list: (ns:pkg, version pin, interfaces).
const ENTRIES: &[(&str, Option<&str>, &[&str])] = &[
    ("wasmcloud:postgres", None, &["query"]),
    ("wasmcloud:postgres", Some("0.2.0"), &["query"]),
    ("wasi:keyvalue", None, &["store", "atomics"]),
    ("wasi:config", None, &["store"]),
    ("wasmcloud:messaging", Some("0.3.0"), &["consumer"]),
    ("wasi:http", None, &["incoming-handler"]),
];

#[derive(Clone, Debug)]
struct HostSpec {
    plugins: BTreeSet<usize>,
    group: &'static str,
    ready: &'static str,
}

fn host_spec() -> impl Strategy<Value = HostSpec> {
    (
        btree_set(0..PLUGINS.len(), 0..4),
        prop_oneof![Just("a"), Just("b")],
        prop_oneof![4 => Just("True"), 1 => Just("False"), 1 => Just("Unknown")],
    )
        .prop_map(|(plugins, group, ready)| HostSpec {
            plugins,
            group,
            ready,
        })
}

#[derive(Clone, Debug)]
struct ComponentSpec {
    imports: BTreeSet<usize>,
    exports: BTreeSet<usize>,
    /// Known world (else Unknown).
    known: bool,
}

fn component_spec() -> impl Strategy<Value = ComponentSpec> {
    (
        btree_set(0..IMPORTS.len(), 0..4),
        btree_set(0..EXPORTS.len(), 0..3),
        prop_oneof![5 => Just(true), 1 => Just(false)],
    )
        .prop_map(|(imports, exports, known)| ComponentSpec {
            imports,
            exports,
            known,
        })
}

#[derive(Clone, Debug)]
struct CaseSpec {
    components: Vec<ComponentSpec>,
    hosts: Vec<HostSpec>,
    entries: BTreeSet<usize>,
    selector: Option<&'static str>,
}

fn case_spec() -> impl Strategy<Value = CaseSpec> {
    (
        vec(component_spec(), 1..5),
        vec(host_spec(), 1..5),
        btree_set(0..ENTRIES.len(), 0..4),
        prop_oneof![Just(None), Just(Some("a")), Just(Some("b"))],
    )
        .prop_map(|(components, hosts, entries, selector)| CaseSpec {
            components,
            hosts,
            entries,
            selector,
        })
}

fn build(c: &CaseSpec) -> Case {
    let mut case = Case::new().hosts(
        c.hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mut host = host(&format!("h{i}"))
                    .label("hostgroup", h.group)
                    .ready(h.ready);
                for &p in &h.plugins {
                    let (pkg, version, ifaces) = PLUGINS[p];
                    host = host.offers(pkg, version, ifaces);
                }
                host
            })
            .collect(),
    );
    for (i, comp) in c.components.iter().enumerate() {
        let state = if comp.known {
            world(
                &comp.imports.iter().map(|&k| IMPORTS[k]).collect::<Vec<_>>(),
                &comp.exports.iter().map(|&k| EXPORTS[k]).collect::<Vec<_>>(),
            )
        } else {
            WorldState::Unknown("no world".into())
        };
        case = case.with(&format!("c{i}"), state);
    }
    for &e in &c.entries {
        let (pkg, version, ifaces) = ENTRIES[e];
        let mut entry = entry(pkg, ifaces);
        if let Some(v) = version {
            entry = entry.version(v);
        }
        case = case.entry(entry);
    }
    if let Some(group) = c.selector {
        case = case.spec(|s| {
            s.host_selector = Some(BTreeMap::from([("hostgroup".into(), group.into())]));
        });
    }
    case
}

/// What a verdict is, independent of finding order: admitted or not, and each finding's code,
/// component, item and message (sorted).
fn verdict(r: &Report) -> (bool, Vec<String>, Vec<String>, usize) {
    let keyed = |fs: &[Finding]| -> Vec<String> {
        let mut v: Vec<String> = fs
            .iter()
            .map(|f| format!("{:?}|{:?}|{:?}|{}", f.code, f.component, f.item, f.message))
            .collect();
        v.sort();
        v
    };
    (
        r.allowed(),
        keyed(&r.violations),
        keyed(&r.warnings),
        r.eligible_hosts,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// Reordering components or hosts changes nothing in the verdict.
    #[test]
    fn verdict_does_not_depend_on_order(c in case_spec(), rotate_c in 0usize..5, rotate_h in 0usize..5) {
        let case = build(&c);
        let before = verdict(&case.resolve());
        let mut reordered = build(&c);
        let mut hosts = reordered.hosts.clone();
        hosts.reverse();
        let n = hosts.len();
        hosts.rotate_left(rotate_h % n);
        reordered.hosts = hosts;
        if let Some(components) = reordered.spec.components.as_mut() {
            components.reverse();
            let n = components.len();
            components.rotate_left(rotate_c % n);
        }
        prop_assert_eq!(before, verdict(&reordered.resolve()));
    }

    /// Defaulting twice is defaulting once.
    #[test]
    fn defaults_are_idempotent(c in case_spec()) {
        let case = build(&c);
        let once = case.defaults();
        let twice = apply_defaults(&once.spec, &case.worlds, &case.policy);
        prop_assert_eq!(&once.spec, &twice.spec);
    }

    /// The defaulted spec the mutating webhook writes resolves at least as well as the original:
    /// admitted stays admitted, and no more violations than before (a default may change which
    /// problem a denied workload is told about: an import with no entry, once defaulted, is
    /// reported as the plugin no host offers).
    #[test]
    fn defaults_never_make_a_verdict_worse(c in case_spec()) {
        let case = build(&c);
        let original = case.resolve();
        let hosts = Hosts::new(case.hosts.clone());
        let judge = |spec: &WorkloadSpec| {
            resolve(&ResolveInput {
                namespace: &case.namespace,
                spec,
                worlds: &case.worlds,
                hosts: &hosts,
                policy: &case.policy,
                deployment: None,
            })
        };
        let defaulted = apply_defaults_checked(&case.spec, &case.worlds, &case.policy, judge);
        let after = judge(&defaulted.spec);
        if original.allowed() {
            prop_assert!(after.allowed(), "admitted before defaults, denied after: {:#?}", after);
        }
        prop_assert!(
            after.violations.len() <= original.violations.len(),
            "defaults added violations: {:#?} before {:#?}", after, original
        );
    }

}
