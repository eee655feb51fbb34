//! The reconciler's warm-up gate end to end: a real kube-apiserver 1.36, a real nats-server, a
//! simulated host from the real `wasmgate sim-hosts`, and a real `wasmgate serve --nats-url
//! --inventory-warmup 30s` (every other e2e test runs with `--inventory-warmup 0s`).
//!
//! Two Workloads exist before wasmgate starts: `orders` (needs wasmcloud:postgres 0.2.0 on host
//! group `data`) and `lonely` (host group `nowhere`: no host will ever match). The `data` host
//! starts heartbeating only after wasmgate is up, inside the warm-up. Checked:
//! - until the warm-up ends, `/readyz` is 503, and nothing is judged: no WorkloadResolution is
//!   served and no Event is written, although the host is already in the inventory;
//! - readiness comes no earlier than the warm-up after the start;
//! - then both are judged: `orders` Resolved with 1 eligible host and no Event at all (judged
//!   before its host had reported, it would have been Unresolved, with a Warning), `lonely`
//!   Unresolved with a Warning Event;
//! - in wasmgate's log, "warmed up" comes before the first "resolution changed".
//!
//! Run: `cargo test --test e2e_warmup -- --nocapture` (see tests/support/mod.rs for CI=true,
//! WASMGATE_SKIP_E2E=1, WASMGATE_CP_BIN, WASMGATE_E2E_KEEP).

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::serve::{curl, ServeProcess};
use support::{
    announce, free_port, install_wasmgate_rbac, install_workload_crds, poll, scenario,
    start_cluster, ControlPlane, Kubectl, NatsServer, SimHosts, ORDERS_WORKLOAD,
};

/// `--inventory-warmup`.
const WARMUP: Duration = Duration::from_secs(30);
/// How long anything may take once the warm-up is over (generous: a loaded 2-core machine).
const AFTER: Duration = Duration::from_secs(90);

const LONELY_WORKLOAD: &str = r#"apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: Workload
metadata:
  name: lonely
  namespace: default
  annotations:
    wit.wasmgate.dev/api: |
      package example:lonely;
      world api {
        import lonely-db: wasmcloud:postgres/query@0.2.0;
      }
spec:
  hostSelector:
    hostgroup: nowhere
  hostInterfaces:
    - name: lonely-db
      namespace: wasmcloud
      package: postgres
      version: "0.2.0"
      interfaces: [query]
  components:
    - name: api
      image: registry.test/lonely:1.0.0
"#;

const RESOLUTIONS: &str = "/apis/wasmgate.dev/v1alpha1/workloadresolutions";

/// Direct requests to wasmgate's hosts API as the cluster admin (a client-ca certificate in
/// group system:masters).
struct Admin {
    ca: String,
    cert: String,
    key: String,
}

impl Admin {
    fn new(cluster: &ControlPlane, wasmgate: &ServeProcess) -> Admin {
        let env = |k: &str| cluster.env.get(k).unwrap_or_else(|| panic!("{k}")).clone();
        Admin {
            ca: wasmgate.ca_file().display().to_string(),
            cert: env("WASMGATE_ADMIN_CERT"),
            key: env("WASMGATE_ADMIN_KEY"),
        }
    }

    fn get(&self, wasmgate: &ServeProcess, path: &str) -> Result<Value, String> {
        let url = wasmgate.url(path);
        match curl(&[
            "--cacert", &self.ca, "--cert", &self.cert, "--key", &self.key, &url,
        ]) {
            (200, body) => Ok(body),
            (code, body) => Err(format!("GET {path}: {code}: {body:#}")),
        }
    }
}

/// Every Event wasmgate has written (events.k8s.io/v1, all namespaces).
fn wasmgate_events(kubectl: &Kubectl) -> Vec<Value> {
    let list = kubectl.get_json(&["events.v1.events.k8s.io", "-A"]);
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["reportingController"] == "wasmgate")
        .collect()
}

fn names(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["regarding"]["name"].as_str().unwrap_or_default(),
                i["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn the_reconciler_judges_nothing_until_the_inventory_is_warm() {
    let t0 = Instant::now();
    let Some((cluster, kubectl, work)) = start_cluster() else {
        return; // WASMGATE_SKIP_E2E=1, announced loudly
    };
    let nats = NatsServer::start(&work.join("nats-server.log"));

    let mut sa_kubeconfig = PathBuf::new();
    scenario("setup: CRDs, RBAC, two Workloads", || {
        install_workload_crds(&kubectl);
        sa_kubeconfig = install_wasmgate_rbac(&cluster, &kubectl, &work);
        for doc in [ORDERS_WORKLOAD, LONELY_WORKLOAD] {
            kubectl.ok(&["apply", "-f", "-"], Some(doc));
        }
    });

    let home = work.join("home");
    std::fs::create_dir_all(&home).expect("create a HOME");
    let started = Instant::now();
    let mut wasmgate = ServeProcess::spawn(
        free_port(),
        &work.join("certs"),
        &work.join("wasmgate.log"),
        &home,
        &[
            "--nats-url".into(),
            nats.url(),
            "--inventory-warmup".into(),
            format!("{}s", WARMUP.as_secs()),
            "--heartbeat-timeout".into(),
            "60s".into(),
            "--host-retention".into(),
            "600s".into(),
            "--kubeconfig".into(),
            sa_kubeconfig.display().to_string(),
            "--reconcile-interval".into(),
            "500ms".into(),
        ],
    );
    let mut db: Option<SimHosts> = None;

    scenario(
        "during the warm-up: not ready, nothing judged, though the host has reported",
        || {
            during_warmup(
                &cluster,
                &kubectl,
                &work,
                &nats.url(),
                &mut wasmgate,
                started,
                &mut db,
            )
        },
    );
    scenario(
        "after the warm-up: orders resolved without any Event, lonely unresolved with a Warning",
        || after_warmup(&cluster, &kubectl, &wasmgate),
    );

    drop(db);
    drop(wasmgate);
    drop(nats);
    drop(cluster);
    announce(format!(
        "e2e: all warm-up scenarios passed in {:.1}s",
        t0.elapsed().as_secs_f64()
    ));
}

fn during_warmup(
    cluster: &ControlPlane,
    kubectl: &Kubectl,
    work: &Path,
    nats_url: &str,
    wasmgate: &mut ServeProcess,
    started: Instant,
    db: &mut Option<SimHosts>,
) {
    wasmgate.wait_listening(AFTER);
    let admin = Admin::new(cluster, wasmgate);
    // The host reports only now, while wasmgate warms up.
    *db = Some(SimHosts::start(
        nats_url,
        &[
            "--count",
            "1",
            "--prefix",
            "db",
            "--hostgroup",
            "data",
            "--interval",
            "1s",
            "--plugins",
            "postgres-0.2",
        ],
        &work.join("sim-db.log"),
    ));
    let host_seen = poll(
        "the db host in the live inventory",
        AFTER,
        Duration::from_millis(250),
        || {
            let hosts = admin.get(wasmgate, "/apis/wasmgate.dev/v1alpha1/hosts")?;
            let listed = hosts["items"]
                .as_array()
                .is_some_and(|h| h.iter().any(|h| h["metadata"]["name"] == "db-0"));
            if listed {
                Ok(started.elapsed())
            } else {
                Err(format!("{hosts:#}"))
            }
        },
    );

    // Sample until ready. Each sample reads the resolutions and Events first and /readyz last:
    // readiness never goes back, so a 503 after a read means the gate was closed during it.
    let mut samples = 0;
    let ready_after = loop {
        wasmgate.assert_running();
        let resolutions = admin
            .get(wasmgate, RESOLUTIONS)
            .unwrap_or_else(|e| panic!("{e}"));
        let items = resolutions["items"].as_array().cloned().unwrap_or_default();
        let events = wasmgate_events(kubectl);
        match wasmgate.readyz() {
            200 => break started.elapsed(),
            503 => {
                samples += 1;
                assert!(
                    items.is_empty(),
                    "a WorkloadResolution was served during the warm-up ({:.1}s after the \
                     start): {resolutions:#}",
                    started.elapsed().as_secs_f64()
                );
                assert!(
                    events.is_empty(),
                    "an Event was written during the warm-up: {:?}",
                    names(&events)
                );
            }
            code => panic!("/readyz: unexpected {code}"),
        }
        assert!(
            started.elapsed() < WARMUP + AFTER,
            "not ready {:.0}s after the start",
            started.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    announce(format!(
        "e2e: db-0 listed {:.1}s after the start; ready after {:.1}s ({} samples in between, \
         nothing judged)",
        host_seen.as_secs_f64(),
        ready_after.as_secs_f64(),
        samples
    ));
    assert!(
        samples > 0,
        "the warm-up was over before the host had been seen ({:.1}s): this machine is too slow \
         for a {}s warm-up",
        host_seen.as_secs_f64(),
        WARMUP.as_secs()
    );
    assert!(
        ready_after >= WARMUP,
        "ready {:.1}s after the start, before the {}s warm-up",
        ready_after.as_secs_f64(),
        WARMUP.as_secs()
    );
}

fn after_warmup(cluster: &ControlPlane, kubectl: &Kubectl, wasmgate: &ServeProcess) {
    let admin = Admin::new(cluster, wasmgate);
    let item = |name: &str| {
        format!("/apis/wasmgate.dev/v1alpha1/namespaces/default/workloadresolutions/{name}")
    };
    let orders = poll(
        "orders.workload to be judged",
        AFTER,
        Duration::from_millis(300),
        || admin.get(wasmgate, &item("orders.workload")),
    );
    assert_eq!(orders["status"]["resolved"], true, "{orders:#}");
    assert_eq!(orders["status"]["eligibleHosts"], 1, "{orders:#}");
    let lonely = poll(
        "lonely.workload to be judged",
        AFTER,
        Duration::from_millis(300),
        || admin.get(wasmgate, &item("lonely.workload")),
    );
    assert_eq!(lonely["status"]["resolved"], false, "{lonely:#}");

    // lonely's Warning is written; by then any Event on orders would be too.
    let warning = poll(
        "a Warning Event on Workload lonely",
        AFTER,
        Duration::from_millis(500),
        || {
            let events = wasmgate_events(kubectl);
            events
                .iter()
                .find(|e| e["regarding"]["name"] == "lonely" && e["type"] == "Warning")
                .cloned()
                .ok_or_else(|| format!("{:?}", names(&events)))
        },
    );
    assert_eq!(warning["reason"], "Unresolved", "{warning:#}");
    let on_orders: Vec<Value> = wasmgate_events(kubectl)
        .into_iter()
        .filter(|e| e["regarding"]["name"] == "orders")
        .collect();
    assert!(
        on_orders.is_empty(),
        "orders resolved from its first judgement, yet has Events: {on_orders:#?}"
    );

    let log = wasmgate.log_text();
    let warmed = log
        .find("live inventory warmed up; ready")
        .unwrap_or_else(|| panic!("no warm-up line in the log:\n{log}"));
    let judged = log
        .find("resolution changed")
        .unwrap_or_else(|| panic!("no judgement in the log:\n{log}"));
    assert!(
        warmed < judged,
        "the reconciler judged before the warm-up ended:\n{log}"
    );
}
