//! End to end with live heartbeats: a real kube-apiserver 1.36 (etcd and kube-controller-manager
//! beside it, all on loopback), a real nats-server, simulated wasmCloud hosts from the real
//! `wasmgate sim-hosts` binary heartbeating to it, and a real `wasmgate serve --nats-url`
//! **without** `--inventory`: the `hosts` API and admission both follow the heartbeats.
//!
//! wasmgate runs with the ServiceAccount and RBAC of `manifests/`, is registered as the
//! `hosts` APIService (Service of type ExternalName -> localhost, caBundle = the generated CA) and
//! as the validating and mutating webhook (`webhooks/*.yaml` with `clientConfig.url`).
//!
//! Scenarios (one cluster, in order; each prints `e2e: <scenario> ... ok`):
//! - the APIService turns Available;
//! - `kubectl get hosts` lists the heartbeating hosts (Table, `-o wide`, `-l`, `-o yaml` with
//!   `status.imports` from the heartbeats, lastSeen moving), discovery, `kubectl explain host`;
//! - `kubectl get hosts -w` sees a host of a newly started sim-hosts appear (ADDED, Ready True),
//!   and the hosts of a killed sim-hosts turn Unknown, then NotReady (Ready False);
//! - `kubectl apply` of a Workload importing wasmcloud:postgres/query@0.2.0 is denied while the
//!   hosts of its host group offer only 0.1.1-draft, and admitted once a sim-hosts offering 0.2.0
//!   heartbeats;
//! - a user without RBAC is refused `kubectl get hosts`;
//! - teardown: every guard stops its process.
//!
//! Run: `cargo test --test e2e_nats -- --nocapture` (see tests/support/mod.rs for CI=true,
//! WASMGATE_SKIP_E2E=1, WASMGATE_CP_BIN, WASMGATE_E2E_KEEP; `NATS_SERVER` overrides
//! /usr/sbin/nats-server).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{
    announce, apply_webhook_configurations, assert_explain_host, assert_host_selectors, condition,
    header, install_wasmgate_rbac, install_workload_crds, names, poll, process_gone,
    register_hosts_apiservice, scenario, start_cluster, start_live_wasmgate, Kubectl, NatsServer,
    SimHosts, Wasmgate, Watcher, HOST_COLUMNS, HOST_WIDE_COLUMNS, ORDERS_WORKLOAD as ORDERS,
    WEBHOOK_DENIED,
};
use wasmgate::sim::sim_host_id;

/// A host silent this long is Ready=False (Ready=Unknown after half of it), for this test.
const HEARTBEAT_TIMEOUT_SECS: u64 = 6;
/// How often each simulated host heartbeats (well inside half the timeout, so a live host
/// never looks silent on a busy machine).
const INTERVAL: &str = "1s";
/// What wasmgate says while the `data` hosts offer only postgres 0.1.1-draft.
const ORDERS_DENIAL: &str = "component \"api\" imports wasmcloud:postgres/query@0.2.0 through \
     hostInterfaces entry \"orders-db\": none of the 2 hosts matching hostSelector \
     {hostgroup=data} provides wasmcloud:postgres@0.2.0 (they offer 0.1.1-draft)";

/// The arguments of one `wasmgate sim-hosts` (heartbeating every [`INTERVAL`] until killed).
fn sim_args<'a>(prefix: &'a str, count: &'a str, group: &'a str, plugins: &'a str) -> Vec<&'a str> {
    vec![
        "--count",
        count,
        "--prefix",
        prefix,
        "--hostgroup",
        group,
        "--environment",
        "prod",
        "--interval",
        INTERVAL,
        "--plugins",
        plugins,
    ]
}

#[test]
fn live_hosts_end_to_end() {
    let t0 = Instant::now();
    let Some((cluster, kubectl, work)) = start_cluster() else {
        return; // WASMGATE_SKIP_E2E=1, announced loudly
    };

    let nats = NatsServer::start(&work.join("nats-server.log"));

    let mut sa_kubeconfig = PathBuf::new();
    scenario(
        "setup: CRDs; namespace, ServiceAccount, RBAC from manifests/",
        || {
            install_workload_crds(&kubectl);
            sa_kubeconfig = install_wasmgate_rbac(&cluster, &kubectl, &work);
        },
    );

    // No --inventory: admission uses the live inventory. The retention is long, so NotReady hosts
    // stay listed.
    let wasmgate = start_live_wasmgate(
        &nats,
        &work,
        Duration::from_secs(HEARTBEAT_TIMEOUT_SECS),
        &sa_kubeconfig,
        &[],
    );
    let url = nats.url();
    // edge-0, edge-1: the `wash` plugin set; old-db-0, old-db-1: postgres 0.1.1-draft only.
    let mut edge = SimHosts::start(
        &url,
        &sim_args("edge", "2", "edge", "wash"),
        &work.join("sim-edge.log"),
    );
    let old_db = SimHosts::start(
        &url,
        &sim_args("old-db", "2", "data", "postgres-0.1"),
        &work.join("sim-old-db.log"),
    );

    scenario("APIService registered and Available", || {
        register_hosts_apiservice(&kubectl, &wasmgate)
    });
    scenario(
        "kubectl get hosts: the heartbeating hosts (table, wide, -l, yaml, discovery, explain)",
        || get_hosts(&kubectl),
    );
    let mut late = None;
    scenario(
        "kubectl get hosts -w: a new sim-hosts' host appears, a killed one's turn NotReady",
        || late = Some(watch_hosts(&kubectl, &work, &url, &mut edge)),
    );
    let mut new_db = None;
    scenario(
        "kubectl apply: denied without a postgres 0.2.0 host, admitted once one heartbeats",
        || new_db = Some(admission(&kubectl, &wasmgate, &work, &url)),
    );
    scenario("RBAC: a user without a binding is refused", || {
        rbac(&kubectl)
    });

    // Teardown, checked: the same Drop code runs when a scenario panics.
    let t = Instant::now();
    let mut pids = vec![
        ("wasmgate".to_string(), wasmgate.pid().expect("running")),
        ("nats-server".to_string(), nats.pid().expect("running")),
    ];
    for (name, sim) in [
        ("sim-hosts old-db", Some(&old_db)),
        ("sim-hosts late", late.as_ref()),
        ("sim-hosts new-db", new_db.as_ref()),
    ] {
        pids.push((name.to_string(), sim.and_then(SimHosts::pid).expect(name)));
    }
    pids.extend(cluster.pids());
    assert_eq!(pids.len(), 8, "{pids:?}");
    drop(new_db);
    drop(late);
    drop(old_db);
    drop(edge);
    drop(wasmgate);
    drop(nats);
    drop(cluster);
    for (name, pid) in &pids {
        assert!(process_gone(*pid), "{name} (pid {pid}) survived its guard");
    }
    announce(format!(
        "e2e: teardown: sim-hosts, wasmgate, nats-server and the control plane stopped ... ok \
         ({:.1}s)",
        t.elapsed().as_secs_f64()
    ));
    announce(format!(
        "e2e: all live-inventory scenarios passed in {:.1}s",
        t0.elapsed().as_secs_f64()
    ));
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn row<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.first() == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{out}"))
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

fn get_hosts(kubectl: &Kubectl) {
    let want = ["edge-0", "edge-1", "old-db-0", "old-db-1"];
    // Both sim-hosts publish from their start; wait until every host is listed and Ready.
    let out = poll(
        "the four simulated hosts to be listed Ready",
        Duration::from_secs(20),
        Duration::from_millis(300),
        || {
            let out = kubectl.run(&["get", "hosts"], None);
            let ready = out
                .stdout
                .lines()
                .skip(1)
                .all(|l| l.split_whitespace().nth(4) == Some("True"));
            if out.success() && names(&out.stdout) == want && ready {
                Ok(out)
            } else {
                Err(out.describe())
            }
        },
    );
    eprintln!("{}", out.stdout);
    assert_eq!(header(&out.stdout), HOST_COLUMNS, "{}", out.describe());
    for (name, prefix, index, group) in [
        ("edge-0", "edge", 0, "edge"),
        ("edge-1", "edge", 1, "edge"),
        ("old-db-0", "old-db", 0, "data"),
        ("old-db-1", "old-db", 1, "data"),
    ] {
        let id = sim_host_id(prefix, index);
        assert_eq!(
            &row(&out.stdout, name)[..7],
            [name, id.as_str(), group, "prod", "True", "2.7.0", "0"],
            "{}",
            out.describe()
        );
    }

    let wide = kubectl.ok(&["get", "hosts", "-o", "wide"], None);
    eprintln!("{}", wide.stdout);
    assert_eq!(
        &header(&wide.stdout)[8..],
        HOST_WIDE_COLUMNS,
        "{}",
        wide.describe()
    );
    let cells = row(&wide.stdout, "old-db-1");
    // sim-hosts: hostname 10.244.0.<index + 2>, this machine's OS and arch, a wandering CPU
    // figure and free memory between 4 and 12 GiB of 16.
    assert_eq!(
        &cells[8..11],
        ["10.244.0.3", std::env::consts::OS, std::env::consts::ARCH],
        "{}",
        wide.describe()
    );
    assert!(
        cells[11].ends_with('%'),
        "CPU {:?}: {}",
        cells[11],
        wide.describe()
    );
    assert!(
        cells[12].ends_with("Gi"),
        "MEMORY-FREE {:?}: {}",
        cells[12],
        wide.describe()
    );
    assert_eq!(
        cells[13],
        "wasmcloud:postgres@0.1.1-draft",
        "{}",
        wide.describe()
    );
    let edge0 = row(&wide.stdout, "edge-0");
    assert!(
        edge0[13].starts_with("wasi:config@0.2.0-rc.1,wasmcloud:secrets@2.1.0,"),
        "the wash set's imports: {}",
        wide.describe()
    );

    assert_host_selectors(
        kubectl,
        &[
            ("hostgroup=data", vec!["old-db-0", "old-db-1"]),
            ("hostgroup=edge", vec!["edge-0", "edge-1"]),
            ("hostgroup!=edge", vec!["old-db-0", "old-db-1"]),
            ("hostgroup in (data,edge)", want.to_vec()),
        ],
        "hostgroup=gpu",
    );

    // status.imports is what the heartbeats carry.
    let yaml = kubectl.ok(&["get", "host", "old-db-0", "-o", "yaml"], None);
    eprintln!("{}", yaml.stdout);
    for want in [
        "kind: Host\n",
        &format!("hostId: {}\n", sim_host_id("old-db", 0)),
        "    hostgroup: data\n",
        "  imports:\n",
        "    package: postgres\n",
        "    version: 0.1.1-draft\n",
    ] {
        assert!(
            yaml.stdout.contains(want),
            "-o yaml lacks {want:?}: {}",
            yaml.describe()
        );
    }
    let h = kubectl.get_json(&["host", "old-db-0"]);
    assert_eq!(
        h["status"]["imports"],
        serde_json::json!([{
            "namespace": "wasmcloud",
            "package": "postgres",
            "version": "0.1.1-draft",
            "interfaces": ["types", "query", "prepared"],
        }]),
        "{h:#}"
    );
    assert_eq!(h["status"]["version"], "2.7.0", "{h:#}");
    assert_eq!(condition(&h, "Ready")["status"], "True", "{h:#}");
    assert_eq!(condition(&h, "Reporting")["status"], "True", "{h:#}");
    let e = kubectl.get_json(&["host", "edge-0"]);
    let imports = e["status"]["imports"].as_array().expect("imports");
    assert!(
        imports.iter().any(|i| i["package"] == "keyvalue"
            && i.get("version").is_none()
            && i["interfaces"] == serde_json::json!(["store", "atomics", "batch"])),
        "the wash set's unversioned wasi:keyvalue: {e:#}"
    );
    // The heartbeats keep coming: lastSeen moves.
    let first = h["status"]["lastSeen"]
        .as_str()
        .expect("lastSeen")
        .to_string();
    poll(
        "old-db-0's lastSeen to move",
        Duration::from_secs(10),
        Duration::from_millis(300),
        || {
            let h = kubectl.get_json(&["host", "old-db-0"]);
            let now = h["status"]["lastSeen"].as_str().unwrap_or("").to_string();
            if now > first {
                Ok(())
            } else {
                Err(format!("lastSeen still {now} (was {first})"))
            }
        },
    );

    let list = kubectl.raw_json("/apis/wasmgate.dev/v1alpha1");
    assert_eq!(list["kind"], "APIResourceList", "{list:#}");
    assert_eq!(list["groupVersion"], "wasmgate.dev/v1alpha1", "{list:#}");
    let hosts = list["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "hosts"))
        .unwrap_or_else(|| panic!("no hosts resource: {list:#}"));
    assert_eq!(hosts["kind"], "Host", "{list:#}");
    assert_eq!(hosts["namespaced"], false, "{list:#}");
    let raw = kubectl.raw_json("/apis/wasmgate.dev/v1alpha1/hosts");
    assert_eq!(raw["kind"], "HostList", "{raw:#}");
    assert_eq!(raw["items"].as_array().map(Vec::len), Some(4), "{raw:#}");

    assert_explain_host(kubectl);
}

/// A watch event line: EVENT NAME HOSTID HOSTGROUP ENVIRONMENT READY ...
fn event(cells: &[&str], kind: &str, name: &str, ready: &str) -> bool {
    cells.len() > 5 && cells[0] == kind && cells[1] == name && cells[5] == ready
}

fn watch_hosts(kubectl: &Kubectl, work: &Path, url: &str, edge: &mut SimHosts) -> SimHosts {
    let w = Watcher::start(kubectl, &["hosts"], work.join("watch.out"));
    for name in ["edge-0", "edge-1", "old-db-0", "old-db-1"] {
        w.wait_for_cells(
            &format!("{name} in the initial list"),
            Duration::from_secs(20),
            |c| event(c, "ADDED", name, "True"),
        );
    }

    // A new sim-hosts: its host appears in the watch.
    let t = Instant::now();
    let late = SimHosts::start(
        url,
        &sim_args("late", "1", "edge", "wash"),
        &work.join("sim-late.log"),
    );
    w.wait_for_cells("late-0 to appear", Duration::from_secs(20), |c| {
        event(c, "ADDED", "late-0", "True")
    });
    announce(format!(
        "e2e: late-0 appeared in the watch {:.1}s after its sim-hosts started",
        t.elapsed().as_secs_f64()
    ));

    // The edge hosts' sim-hosts dies: after half the heartbeat timeout they are Unknown, after
    // the timeout NotReady (Ready=False); the other hosts stay Ready.
    let killed = Instant::now();
    edge.kill();
    let timeout = Duration::from_secs(HEARTBEAT_TIMEOUT_SECS * 3 + 10);
    for name in ["edge-0", "edge-1"] {
        let unknown = w.wait_for_cells(&format!("{name} to turn Unknown"), timeout, |c| {
            event(c, "MODIFIED", name, "Unknown")
        });
        let not_ready = w.wait_for_cells(&format!("{name} to turn NotReady"), timeout, |c| {
            event(c, "MODIFIED", name, "False")
        });
        assert!(
            unknown < not_ready,
            "{name}: Ready=False (line {not_ready}) before Ready=Unknown (line {unknown}):\n{}",
            w.text()
        );
    }
    let elapsed = killed.elapsed();
    announce(format!(
        "e2e: edge-0 and edge-1 NotReady in the watch {:.1}s after their sim-hosts was killed \
         (--heartbeat-timeout {HEARTBEAT_TIMEOUT_SECS}s, heartbeats every {INTERVAL})",
        elapsed.as_secs_f64()
    ));
    // Their last heartbeat was at most one interval before the kill, and lastSeen has
    // one-second resolution: NotReady cannot come much sooner than the timeout.
    assert!(
        elapsed >= Duration::from_secs(HEARTBEAT_TIMEOUT_SECS - 3),
        "NotReady only {elapsed:?} after the kill (timeout {HEARTBEAT_TIMEOUT_SECS}s)"
    );
    let h = kubectl.get_json(&["host", "edge-0"]);
    let ready = condition(&h, "Ready");
    assert_eq!(ready["status"], "False", "{h:#}");
    assert_eq!(ready["message"], "host has not reported recently", "{h:#}");
    assert_eq!(condition(&h, "Reporting")["status"], "False", "{h:#}");

    let out = kubectl.ok(&["get", "hosts"], None);
    eprintln!("{}", out.stdout);
    for (name, ready) in [
        ("edge-0", "False"),
        ("edge-1", "False"),
        ("late-0", "True"),
        ("old-db-0", "True"),
        ("old-db-1", "True"),
    ] {
        assert_eq!(
            row(&out.stdout, name)[4],
            ready,
            "{name}: {}",
            out.describe()
        );
    }
    late
}

fn admission(kubectl: &Kubectl, wasmgate: &Wasmgate, work: &Path, url: &str) -> SimHosts {
    apply_webhook_configurations(kubectl, wasmgate);
    // kube-apiserver learns of webhook configurations through an informer: poll until wasmgate
    // is called.
    let dry = poll(
        "the webhooks to take effect",
        Duration::from_secs(30),
        Duration::from_millis(200),
        || {
            let out = kubectl.run(&["apply", "--dry-run=server", "-f", "-"], Some(ORDERS));
            if out.stderr.contains(WEBHOOK_DENIED) {
                Ok(out)
            } else {
                Err(out.describe())
            }
        },
    );
    let expected = format!("{WEBHOOK_DENIED}{ORDERS_DENIAL}");
    assert!(
        dry.stderr.contains(&expected),
        "expected kubectl to print\n  {expected}\n{}",
        dry.describe()
    );

    // A real apply: refused with the same message, nothing stored.
    let out = kubectl.run(&["apply", "-f", "-"], Some(ORDERS));
    assert_eq!(out.code(), Some(1), "not refused: {}", out.describe());
    assert!(
        out.stderr.contains(&format!(
            "Error from server: error when creating \"STDIN\": {expected}"
        )),
        "expected kubectl to print\n  {expected}\n{}",
        out.describe()
    );
    eprintln!("denied: {}", out.stderr.trim());
    let gone = kubectl.run(&["get", "workload", "orders", "-n", "default"], None);
    assert!(
        !gone.success() && gone.stderr.contains("NotFound"),
        "stored although denied: {}",
        gone.describe()
    );

    // A host of the `data` group that offers postgres 0.2.0 starts heartbeating.
    let t = Instant::now();
    let new_db = SimHosts::start(
        url,
        &sim_args("new-db", "1", "data", "postgres-0.2"),
        &work.join("sim-new-db.log"),
    );
    kubectl.wait_ok(
        "the Workload to be admitted (server-side dry run)",
        Duration::from_secs(20),
        Duration::from_millis(200),
        &["apply", "--dry-run=server", "-f", "-"],
        Some(ORDERS),
    );
    announce(format!(
        "e2e: admitted {:.1}s after the postgres 0.2.0 host's sim-hosts started",
        t.elapsed().as_secs_f64()
    ));
    let out = kubectl.ok(&["apply", "-f", "-"], Some(ORDERS));
    assert!(
        out.stdout
            .contains("workload.runtime.wasmcloud.dev/orders created"),
        "{}",
        out.describe()
    );
    let stored = kubectl.get_json(&["workload", "orders", "-n", "default"]);
    assert_eq!(
        stored["spec"]["hostSelector"]["hostgroup"], "data",
        "{stored:#}"
    );
    assert_eq!(
        stored["spec"]["hostInterfaces"][0]["version"], "0.2.0",
        "{stored:#}"
    );
    assert_eq!(stored["spec"]["components"][0]["name"], "api", "{stored:#}");
    let h = kubectl.get_json(&["host", "new-db-0"]);
    assert_eq!(condition(&h, "Ready")["status"], "True", "{h:#}");
    new_db
}

fn rbac(kubectl: &Kubectl) {
    let out = kubectl.run(&["get", "hosts", "--as=someone"], None);
    assert!(
        !out.success()
            && out.stderr.contains(
                "Error from server (Forbidden): hosts.wasmgate.dev is forbidden: User \
                 \"someone\" cannot list resource \"hosts\" in API group \"wasmgate.dev\" at the \
                 cluster scope"
            ),
        "{}",
        out.describe()
    );
    let out = kubectl.run(&["get", "host", "old-db-0", "--as=someone"], None);
    assert!(
        !out.success()
            && out.stderr.contains(
                "Error from server (Forbidden): hosts.wasmgate.dev \"old-db-0\" is forbidden: \
                 User \"someone\" cannot get resource \"hosts\" in API group \"wasmgate.dev\" at \
                 the cluster scope"
            ),
        "{}",
        out.describe()
    );
}
