//! End to end: kubectl 1.36 against a real kube-apiserver (with etcd and kube-controller-manager,
//! all on loopback) that calls a real `wasmgate serve` as its validating and mutating admission
//! webhook, registered from `webhooks/*.yaml` with `clientConfig.url` and the generated caBundle.
//!
//! One cluster is shared by the scenarios (starting one costs ~10 s); they run in order and each
//! prints `e2e: <scenario> ... ok`:
//!
//! - the CRDs from `wasmgate crds` install and `kubectl explain` reads their schemas;
//! - `kubectl apply --dry-run=server` gives the verdicts of a real apply and stores nothing;
//! - the good examples are created and carry the mutating webhook's defaults; re-applying them
//!   changes nothing;
//! - each broken example is denied with wasmgate's message, and nothing is stored;
//! - with wasmgate down (failurePolicy Fail), applies fail with the apiserver's "failed calling
//!   webhook" error, and succeed again once it is restarted;
//! - the guards tear everything down (also when a test panics).
//!
//! Run: `cargo test --test e2e_kubectl -- --nocapture`. The control plane is built by
//! `scripts/build-control-plane.sh` (cached outside the repo); see `tests/support/mod.rs` for
//! CI=true, WASMGATE_SKIP_E2E=1, WASMGATE_CP_BIN and WASMGATE_E2E_KEEP.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    announce, apply_webhook_configurations, free_port, install_workload_crds, process_gone,
    repo_root, scenario, start_cluster, wait_for_webhooks, Kubectl, Wasmgate, WEBHOOK_DENIED,
    WORKLOAD_RESOURCES,
};

const CRDS: [&str; 3] = [
    "crd/workloads.runtime.wasmcloud.dev",
    "crd/workloadreplicasets.runtime.wasmcloud.dev",
    "crd/workloaddeployments.runtime.wasmcloud.dev",
];

/// Each broken example and (the start of) the message wasmgate denies it with.
const BROKEN: [(&str, &str); 5] = [
    (
        "examples/broken/postgres-version.yaml",
        "component \"api\" imports wasmcloud:postgres/query@0.2.0 through hostInterfaces entry \
         \"orders-db\": none of the 3 hosts matching hostSelector {hostgroup=default} provides \
         wasmcloud:postgres@0.2.0 (they offer 0.1.1-draft)",
    ),
    (
        "examples/broken/undeclared-plugin.yaml",
        "component \"api\" imports wasmcloud:postgres/query@0.1.1-draft, which no sibling \
         component exports, the host does not build in, and no hostInterfaces entry declares",
    ),
    (
        "examples/broken/messaging-version.yaml",
        "component \"handler\" imports wasmcloud:messaging/consumer@0.3.0, but hostInterfaces \
         entry wasmcloud:messaging pins version 0.2.0",
    ),
    (
        "examples/broken/sibling-cycle.yaml",
        "circular dependency detected among components: a -> b -> a",
    ),
    (
        "examples/broken/http-without-host.yaml",
        "hostInterfaces entry wasi:http lists incoming-handler but has no config.host",
    ),
];

/// Workloads whose verdict on a wasmCloud 2.7.0 host was measured against the real linker
/// (examples/upstream/README.md): `None` links upstream and must be admitted; `Some(message)`
/// fails upstream and must be denied with that message.
const UPSTREAM: [(&str, Option<&str>); 5] = [
    ("examples/upstream/p3-wasi.yaml", None),
    ("examples/upstream/p3-http-client.yaml", None),
    ("examples/upstream/secrets-semver.yaml", None),
    (
        "examples/upstream/keyvalue-prerelease.yaml",
        Some(
            "component \"counter\" imports wasi:keyvalue/store@0.2.0-draft2 through \
             hostInterfaces entry wasi:keyvalue: none of the 3 hosts matching hostSelector \
             {hostgroup=default} provides wasi:keyvalue@0.2.0-draft2",
        ),
    ),
    (
        "examples/upstream/sibling-exact-name.yaml",
        Some(
            "component \"front\" imports example:greet/api@0.2.0, which no sibling component \
             exports",
        ),
    ),
];

const GOOD: [&str; 3] = [
    "examples/workloads/hello-kv.yaml",
    "examples/workloads/events-replicaset.yaml",
    "examples/workloads/orders-deployment.yaml",
];

#[test]
fn kubectl_end_to_end() {
    let t0 = Instant::now();
    let Some((cluster, kubectl, work)) = start_cluster() else {
        return; // WASMGATE_SKIP_E2E=1, announced loudly
    };

    scenario(
        "CRDs from `wasmgate crds` installed and Established",
        || install_crds(&kubectl),
    );
    scenario("kubectl explain workload.spec.hostInterfaces", || {
        explain(&kubectl)
    });

    let mut wasmgate = Wasmgate::start(
        free_port(),
        &work.join("certs"),
        &repo_root().join("examples/inventory.yaml"),
        &work.join("wasmgate.log"),
    );
    scenario(
        "webhooks registered from webhooks/*.yaml and in effect",
        || register_webhooks(&kubectl, &wasmgate),
    );
    scenario(
        "kubectl apply --dry-run=server: same verdicts, nothing stored",
        || dry_run(&kubectl),
    );
    scenario(
        "kubectl apply --dry-run=server of examples/upstream: upstream's verdicts",
        || upstream_verdicts(&kubectl),
    );
    scenario(
        "kubectl apply of the good examples: created, with defaults",
        || apply_good(&kubectl),
    );
    scenario(
        "kubectl apply of the good examples again: unchanged",
        || reapply_good(&kubectl),
    );
    scenario(
        "kubectl apply of the broken examples: denied by wasmgate",
        || apply_broken(&kubectl),
    );
    scenario(
        "wasmgate down with failurePolicy Fail, then restarted",
        || outage(&kubectl, &mut wasmgate),
    );
    scenario("kubectl delete of the examples", || delete_good(&kubectl));
    scenario("a panicking test still stops wasmgate", || {
        guard_stops_on_panic(&work)
    });

    // Teardown, checked: the same Drop code runs when a scenario panics.
    let t = Instant::now();
    let wasmgate_pid = wasmgate.pid().expect("wasmgate running");
    let cp_pids = cluster.pids();
    assert_eq!(
        cp_pids.len(),
        3,
        "pid files of the control plane: {cp_pids:?}"
    );
    drop(wasmgate);
    drop(cluster);
    assert!(
        process_gone(wasmgate_pid),
        "wasmgate {wasmgate_pid} survived its guard"
    );
    for (name, pid) in &cp_pids {
        assert!(process_gone(*pid), "{name} (pid {pid}) survived the guard");
    }
    announce(format!(
        "e2e: teardown: wasmgate, kube-controller-manager, kube-apiserver and etcd stopped ... ok \
         ({:.1}s)",
        t.elapsed().as_secs_f64()
    ));
    announce(format!(
        "e2e: all scenarios passed in {:.1}s",
        t0.elapsed().as_secs_f64()
    ));
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

fn install_crds(kubectl: &Kubectl) {
    let out = install_workload_crds(kubectl);
    for crd in CRDS {
        let name = crd.trim_start_matches("crd/");
        assert!(
            out.stdout.contains(&format!("{name} created")),
            "{name} not created: {}",
            out.describe()
        );
    }
}

fn explain(kubectl: &Kubectl) {
    let paths = [
        "workload.spec.hostInterfaces",
        "workloadreplicaset.spec.template.spec.hostInterfaces",
        "workloaddeployment.spec.template.spec.hostInterfaces",
    ];
    for path in paths {
        // The apiserver publishes a new CRD's OpenAPI a little after it is Established.
        let out = kubectl.wait_ok(
            &format!("kubectl explain {path}"),
            Duration::from_secs(60),
            Duration::from_millis(500),
            &["explain", path],
            None,
        );
        let text = &out.stdout;
        assert!(
            text.contains("runtime.wasmcloud.dev"),
            "explain shows no group: {}",
            out.describe()
        );
        assert!(
            text.contains("FIELD: hostInterfaces <[]Object>"),
            "explain {path}: {}",
            out.describe()
        );
        for field in [
            "interfaces\t<[]string> -required-",
            "namespace\t",
            "package\t",
            "version\t",
            "config\t",
        ] {
            assert!(
                text.contains(field),
                "explain {path} lacks the field {field:?}: {}",
                out.describe()
            );
        }
    }
}

fn register_webhooks(kubectl: &Kubectl, wasmgate: &Wasmgate) {
    // The shipped manifests, with their Service clientConfig swapped for a URL (kube-apiserver
    // cannot reach a Service backed by 127.0.0.1).
    for (manifest, obj) in apply_webhook_configurations(kubectl, wasmgate) {
        let hooks = obj["webhooks"].as_array().expect("webhooks");
        assert_eq!(hooks.len(), 1, "{manifest}: one webhook expected");
        assert_eq!(hooks[0]["failurePolicy"], "Fail", "{manifest}");
        assert_eq!(hooks[0]["sideEffects"], "None", "{manifest}");
    }
    // kube-apiserver picks up webhook configurations through an informer: poll until both
    // webhooks are called (a broken object denied, a good one defaulted).
    wait_for_webhooks(kubectl, "the webhooks to take effect", BROKEN[0].0, GOOD[0]);
}

fn dry_run(kubectl: &Kubectl) {
    for file in GOOD {
        let out = kubectl.ok(
            &["apply", "--dry-run=server", "-f", file, "-o", "json"],
            None,
        );
        let obj: Value = serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{file}: no JSON ({e}): {}", out.describe()));
        check_defaults(file, &obj);
        assert_not_stored(kubectl, file);
    }
    for (file, message) in BROKEN {
        let out = kubectl.run(&["apply", "--dry-run=server", "-f", file], None);
        assert_denied(&out, file, message);
        assert_not_stored(kubectl, file);
    }
    let all = kubectl.ok(&["get", WORKLOAD_RESOURCES, "-A", "-o", "name"], None);
    assert!(
        all.stdout.trim().is_empty(),
        "dry runs stored objects: {}",
        all.describe()
    );
}

fn upstream_verdicts(kubectl: &Kubectl) {
    for (file, denial) in UPSTREAM {
        match denial {
            None => {
                let out = kubectl.ok(
                    &["apply", "--dry-run=server", "-f", file, "-o", "json"],
                    None,
                );
                let obj: Value = serde_json::from_str(&out.stdout)
                    .unwrap_or_else(|e| panic!("{file}: no JSON ({e}): {}", out.describe()));
                // No default pins an entry's version (that would create the failure).
                for e in workload_spec(&obj)["hostInterfaces"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    assert!(e["version"].is_null(), "{file}: version pinned: {obj:#}");
                }
            }
            Some(message) => {
                let out = kubectl.run(&["apply", "--dry-run=server", "-f", file], None);
                assert_denied(&out, file, message);
            }
        }
        assert_not_stored(kubectl, file);
    }
}

fn apply_good(kubectl: &Kubectl) {
    for file in GOOD {
        let out = kubectl.ok(&["apply", "-f", file], None);
        assert!(
            out.stdout.contains(" created"),
            "{file}: {}",
            out.describe()
        );
        // The mutating webhook reports each default as a warning, which kubectl prints.
        assert!(
            out.stderr.contains("Warning: wasmgate: "),
            "{file}: no wasmgate warnings: {}",
            out.describe()
        );
        let stored = kubectl.get_json(&["-f", file]);
        check_defaults(file, &stored);
    }
}

fn reapply_good(kubectl: &Kubectl) {
    for file in GOOD {
        let before = kubectl.get_json(&["-f", file]);
        kubectl.ok(&["apply", "-f", file], None);
        let after = kubectl.get_json(&["-f", file]);
        assert_eq!(
            before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
            "{file}: re-applying changed the stored object (defaults not idempotent?)\nbefore: \
             {before:#}\nafter: {after:#}"
        );
        assert_eq!(before["spec"], after["spec"], "{file}");
    }
}

fn apply_broken(kubectl: &Kubectl) {
    let mut listed: Vec<String> = std::fs::read_dir(repo_root().join("examples/broken"))
        .expect("examples/broken")
        .filter_map(|e| e.ok())
        .map(|e| format!("examples/broken/{}", e.file_name().to_string_lossy()))
        .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml"))
        .collect();
    listed.sort();
    for file in &listed {
        let message = BROKEN
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, m)| *m)
            .unwrap_or_else(|| {
                eprintln!("{file}: no expected message in BROKEN; checking the denial only");
                ""
            });
        let out = kubectl.run(&["apply", "-f", file], None);
        assert_denied(&out, file, message);
        assert_not_stored(kubectl, file);
        eprintln!("{file}: {}", out.stderr.lines().last().unwrap_or(""));
    }
    for (file, _) in BROKEN {
        assert!(
            listed.iter().any(|f| f == file),
            "{file} is expected but missing"
        );
    }
}

fn outage(kubectl: &Kubectl, wasmgate: &mut Wasmgate) {
    let ca_before = std::fs::read(wasmgate.ca_file()).expect("ca.crt");
    let hello = std::fs::read_to_string(repo_root().join(GOOD[0])).expect("hello-kv.yaml");
    let renamed = hello.replacen("name: hello-kv\n", "name: hello-kv-outage\n", 1);
    assert_ne!(hello, renamed, "hello-kv.yaml has no `name: hello-kv` line");

    wasmgate.stop();
    let out = kubectl.run(&["apply", "-f", "-"], Some(&renamed));
    assert_eq!(
        out.code(),
        Some(1),
        "apply with wasmgate down: {}",
        out.describe()
    );
    assert!(
        out.stderr
            .contains("failed calling webhook \"mutate.wasmgate.dev\"")
            || out
                .stderr
                .contains("failed calling webhook \"validate.wasmgate.dev\""),
        "expected the apiserver's \"failed calling webhook\" error: {}",
        out.describe()
    );
    eprintln!("while down: {}", out.stderr.trim());
    let gone = kubectl.run(&["get", "workload", "hello-kv-outage"], None);
    assert!(
        !gone.success() && gone.stderr.contains("NotFound"),
        "stored while wasmgate was down: {}",
        gone.describe()
    );
    // An update is refused too.
    let update = kubectl.run(
        &[
            "annotate",
            "workload",
            "hello-kv",
            "e2e.wasmgate.dev/touched=yes",
        ],
        None,
    );
    assert!(
        !update.success() && update.stderr.contains("failed calling webhook"),
        "update with wasmgate down: {}",
        update.describe()
    );

    wasmgate.restart();
    assert_eq!(
        std::fs::read(wasmgate.ca_file()).expect("ca.crt"),
        ca_before,
        "wasmgate regenerated its CA on restart: the registered caBundle no longer matches"
    );
    let out = kubectl.ok(&["apply", "-f", "-"], Some(&renamed));
    assert!(
        out.stdout.contains("hello-kv-outage created"),
        "{}",
        out.describe()
    );
    let stored = kubectl.get_json(&["workload", "hello-kv-outage"]);
    check_defaults(GOOD[0], &stored);
    kubectl.ok(
        &["delete", "workload", "hello-kv-outage", "--wait=true"],
        None,
    );
}

fn delete_good(kubectl: &Kubectl) {
    for file in GOOD {
        kubectl.ok(&["delete", "-f", file, "--wait=true"], None);
        assert_not_stored(kubectl, file);
    }
    let all = kubectl.ok(&["get", WORKLOAD_RESOURCES, "-A", "-o", "name"], None);
    assert!(
        all.stdout.trim().is_empty(),
        "left over: {}",
        all.describe()
    );
}

fn guard_stops_on_panic(work: &Path) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let pid = AtomicU32::new(0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let wg = Wasmgate::start(
            free_port(),
            &work.join("certs-panic"),
            &repo_root().join("examples/inventory.yaml"),
            &work.join("wasmgate-panic.log"),
        );
        pid.store(wg.pid().expect("running"), Ordering::SeqCst);
        // Unwinds like a failed assertion, without the panic hook's message and backtrace.
        std::panic::resume_unwind(Box::new("deliberate panic with a wasmgate guard alive"));
    }));
    assert!(result.is_err());
    let pid = pid.load(Ordering::SeqCst);
    assert_ne!(pid, 0);
    assert!(
        process_gone(pid),
        "wasmgate {pid} outlived a panicking test"
    );
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

fn assert_denied(out: &support::Output, file: &str, message: &str) {
    assert_eq!(
        out.code(),
        Some(1),
        "{file} was not refused: {}",
        out.describe()
    );
    let expected = format!("{WEBHOOK_DENIED}{message}");
    assert!(
        out.stderr.contains(&expected),
        "{file}: expected kubectl to print\n  {expected}\n{}",
        out.describe()
    );
}

fn assert_not_stored(kubectl: &Kubectl, file: &str) {
    let out = kubectl.run(&["get", "-f", file, "-o", "name"], None);
    assert!(
        !out.success() && out.stderr.contains("NotFound"),
        "{file} is stored: {}",
        out.describe()
    );
}

/// The workload spec of a Workload, or the template's of a WorkloadReplicaSet/Deployment.
fn workload_spec(obj: &Value) -> &Value {
    match obj["kind"].as_str() {
        Some("Workload") => &obj["spec"],
        Some("WorkloadReplicaSet" | "WorkloadDeployment") => &obj["spec"]["template"]["spec"],
        other => panic!("unexpected kind {other:?}: {obj:#}"),
    }
}

fn entry<'a>(spec: &'a Value, namespace: &str, package: &str) -> &'a Value {
    spec["hostInterfaces"]
        .as_array()
        .and_then(|entries| {
            entries
                .iter()
                .find(|e| e["namespace"] == namespace && e["package"] == package)
        })
        .unwrap_or_else(|| {
            panic!(
                "no hostInterfaces entry {namespace}:{package} in {:#}",
                spec["hostInterfaces"]
            )
        })
}

fn interfaces(entry: &Value) -> Vec<&str> {
    entry["interfaces"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The defaults the mutating webhook adds to each good example.
fn check_defaults(file: &str, obj: &Value) {
    let spec = workload_spec(obj);
    let components = spec["components"].as_array().expect("components");
    assert!(!components.is_empty(), "{file}: no components");
    for c in components {
        assert_eq!(
            c["imagePullPolicy"], "IfNotPresent",
            "{file}: component {} has no defaulted imagePullPolicy: {obj:#}",
            c["name"]
        );
    }
    match file.rsplit('/').next().unwrap_or(file) {
        "hello-kv.yaml" => {
            // Entry versions are never defaulted: an unversioned entry binds any plugin version,
            // a pinned one only an equal version (wash-runtime 2.7.0 `same_package`).
            let kv = entry(spec, "wasi", "keyvalue");
            assert!(kv["version"].is_null(), "{file}: {kv:#}");
            let mut got = interfaces(kv);
            got.sort_unstable();
            assert_eq!(got, ["atomics", "store"], "{file}: {kv:#}");
            let logging = entry(spec, "wasi", "logging");
            assert!(logging["version"].is_null(), "{file}: {logging:#}");
            assert_eq!(interfaces(logging), ["logging"], "{file}: {logging:#}");
            let http = entry(spec, "wasi", "http");
            assert_eq!(
                http["config"]["host"], "hello.example.test",
                "{file}: {http:#}"
            );
        }
        "orders-deployment.yaml" => {
            let config = entry(spec, "wasi", "config");
            assert!(config["version"].is_null(), "{file}: {config:#}");
            assert_eq!(interfaces(config), ["store"], "{file}: {config:#}");
            let db = entry(spec, "wasmcloud", "postgres");
            assert_eq!(db["name"], "orders-db", "{file}: {db:#}");
            assert_eq!(db["version"], "0.2.0", "{file}: {db:#}");
        }
        "events-replicaset.yaml" => {
            let config = entry(spec, "wasi", "config");
            assert!(config["version"].is_null(), "{file}: {config:#}");
            assert_eq!(interfaces(config), ["store"], "{file}: {config:#}");
            let messaging = entry(spec, "wasmcloud", "messaging");
            assert_eq!(messaging["version"], "0.3.0", "{file}: {messaging:#}");
        }
        other => panic!("no expected defaults for {other}"),
    }
}
