//! Two `wasmgate serve` replicas on one JetStream inventory behind one Service, through the real
//! aggregator (issue 14): a real kube-apiserver 1.36, a real nats-server with JetStream, hosts
//! heartbeating from the real `wasmgate sim-hosts`, and the two replicas started with
//! `--inventory-log jetstream`. The Service is a TCP proxy in this test that does what
//! kube-proxy does (each new connection to one of the endpoints it is given), so the test decides
//! which replica the aggregator reaches.
//!
//! Scenario (each prints `e2e: <scenario> ... ok`):
//! - through the aggregator to replica A only: list the hosts; replica B starts a few seconds of
//!   heartbeats later (so a replica numbering its own changes would disagree with A); list
//!   again and watch from that list's resourceVersion for a few seconds;
//! - replica A is killed and the Service points at B: a watch from A's list resourceVersion on B
//!   replays exactly the events A sent (type, name, resourceVersion), in order, with no gap, and
//!   goes on with live events; a host that starts heartbeating after the failover shows up in it;
//! - `kubectl get hosts` through B lists the same hosts, the new one included.
//!
//! Run: `cargo test --test e2e_replicas -- --nocapture` (see tests/support/mod.rs for CI=true,
//! WASMGATE_SKIP_E2E=1, WASMGATE_CP_BIN, WASMGATE_E2E_KEEP).

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::{
    announce, apply_hosts_apiservice, free_port, install_wasmgate_rbac, install_workload_crds,
    scenario, start_cluster, wait_apiservice_available, Kubectl, NatsServer, SimHosts, Wasmgate,
};

const HOSTS: &str = "/apis/wasmgate.dev/v1alpha1/hosts";

/// A Service's virtual IP, as kube-proxy makes it: each accepted connection is relayed to the
/// endpoints currently set, round robin; connections already relayed stay where they are.
struct Service {
    port: u16,
    endpoints: Arc<Mutex<Vec<u16>>>,
    stop: Arc<AtomicBool>,
}

impl Service {
    fn start(endpoints: Vec<u16>) -> Service {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind the Service port");
        let port = listener.local_addr().expect("local addr").port();
        let endpoints = Arc::new(Mutex::new(endpoints));
        let stop = Arc::new(AtomicBool::new(false));
        let (eps, halt) = (endpoints.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut next = 0usize;
            for client in listener.incoming() {
                if halt.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = client else { continue };
                let current = eps.lock().map(|e| e.clone()).unwrap_or_default();
                if current.is_empty() {
                    continue; // no endpoints: the connection is dropped, as kube-proxy rejects it
                }
                let port = current[next % current.len()];
                next += 1;
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                relay(client, upstream);
            }
        });
        Service {
            port,
            endpoints,
            stop,
        }
    }

    fn set_endpoints(&self, ports: Vec<u16>) {
        *self.endpoints.lock().expect("endpoints") = ports;
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
    }
}

fn relay(a: TcpStream, b: TcpStream) {
    for (mut from, mut to) in [
        (a.try_clone().expect("dup"), b.try_clone().expect("dup")),
        (b, a),
    ] {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            loop {
                match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

/// A replica: live inventory on the JetStream log, leader election through the API.
fn replica(nats: &NatsServer, work: &Path, name: &str, kubeconfig: &Path) -> Wasmgate {
    let args: Vec<String> = [
        "--nats-url",
        &nats.url(),
        "--inventory-log",
        "jetstream",
        "--inventory-stream-storage",
        "memory",
        "--heartbeat-timeout",
        "30s",
        "--host-retention",
        "600s",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "--shutdown-delay",
        "0s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // One certificate directory: the first replica generates it, the second serves the same
    // pair, so the APIService's caBundle trusts both (as with a shared Secret).
    Wasmgate::start_live(
        free_port(),
        &work.join("certs"),
        &work.join(format!("wasmgate-{name}.log")),
        &args,
    )
}

/// `kubectl get --raw PATH`, retried while the aggregator reports the backend unreachable (the
/// moments after a failover); the body as JSON.
fn raw_json(kubectl: &Kubectl, path: &str) -> Value {
    let out = kubectl.wait_ok(
        &format!("GET {path}"),
        Duration::from_secs(60),
        Duration::from_millis(500),
        &["get", "--raw", path],
        None,
    );
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{path}: {e}\n{}", out.stdout))
}

/// A watch of `seconds` through the aggregator from `rv`: its events as (type, name,
/// resourceVersion), in order. The stream is newline-delimited JSON.
fn watch_events(kubectl: &Kubectl, rv: &str, seconds: u32) -> Vec<(String, String, String)> {
    let path = format!("{HOSTS}?watch=1&resourceVersion={rv}&timeoutSeconds={seconds}");
    let out = kubectl.wait_ok(
        &format!("watch {path}"),
        Duration::from_secs(90),
        Duration::from_millis(500),
        &["get", "--raw", &path],
        None,
    );
    let mut events = Vec::new();
    let stream = serde_json::Deserializer::from_str(&out.stdout).into_iter::<Value>();
    for event in stream {
        let event = event.unwrap_or_else(|e| panic!("watch stream: {e}\n{}", out.stdout));
        let kind = event["type"].as_str().unwrap_or_default().to_string();
        assert_ne!(kind, "ERROR", "the watch from {rv} failed: {event}");
        events.push((
            kind,
            event["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            event["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        ));
    }
    events
}

fn sim(nats: &NatsServer, prefix: &str, count: &str, log: &Path) -> SimHosts {
    SimHosts::start(
        &nats.url(),
        &[
            "--count",
            count,
            "--prefix",
            prefix,
            "--hostgroup",
            "edge",
            "--environment",
            "prod",
            "--interval",
            "1s",
            "--plugins",
            "wash",
        ],
        log,
    )
}

#[test]
fn a_watch_from_one_replicas_resource_version_continues_on_the_other_through_the_aggregator() {
    let Some((cluster, kubectl, work)) = start_cluster() else {
        return; // WASMGATE_SKIP_E2E=1, announced loudly
    };
    let nats = NatsServer::start_jetstream(&work.join("nats-server.log"), &work.join("jetstream"));
    install_workload_crds(&kubectl);
    let kubeconfig = install_wasmgate_rbac(&cluster, &kubectl, &work);
    let mut a = replica(&nats, &work, "a", &kubeconfig);
    let service = Service::start(vec![a.port]);
    let _edge = sim(&nats, "edge", "3", &work.join("sim-edge.log"));
    let mut b = None;

    let mut list_rv = String::new();
    let mut on_a = Vec::new();
    scenario(
        "replica A (the Service's only endpoint): list, then watch from the list",
        || {
            apply_hosts_apiservice(&kubectl, service.port, Some(&a.ca_bundle()));
            wait_apiservice_available(&kubectl, &a);
            support::poll(
                "three hosts listed through the aggregator",
                Duration::from_secs(60),
                Duration::from_millis(500),
                || {
                    let list = raw_json(&kubectl, HOSTS);
                    let n = list["items"].as_array().map_or(0, Vec::len);
                    (n == 3).then_some(()).ok_or(format!("{n} hosts"))
                },
            );
            // B starts after A has applied a few seconds of heartbeats, so a replica that
            // numbered its own changes (the in-memory log) would disagree with A from here.
            std::thread::sleep(Duration::from_secs(3));
            b = Some(replica(&nats, &work, "b", &kubeconfig));
            let list = raw_json(&kubectl, HOSTS);
            list_rv = list["metadata"]["resourceVersion"]
                .as_str()
                .expect("list resourceVersion")
                .to_string();
            on_a = watch_events(&kubectl, &list_rv, 4);
            assert!(
                on_a.iter().any(|(t, _, _)| t == "MODIFIED"),
                "heartbeats every second move the hosts: {on_a:?}"
            );
        },
    );

    scenario(
        "A killed, the Service on B: B replays A's events from A's resourceVersion, then goes on",
        || {
            a.stop();
            let b = b.as_ref().expect("replica B started");
            service.set_endpoints(vec![b.port]);
            let _late = sim(&nats, "late", "1", &work.join("sim-late.log"));
            let on_b = support::poll(
                "B's watch from A's resourceVersion to reach the late host",
                Duration::from_secs(90),
                Duration::from_millis(200),
                || {
                    let events = watch_events(&kubectl, &list_rv, 6);
                    let late = events
                        .iter()
                        .any(|(t, n, _)| t == "ADDED" && n.starts_with("late"));
                    late.then_some(events)
                        .ok_or_else(|| "no ADDED late host yet".to_string())
                },
            );
            assert!(
                on_b.len() > on_a.len(),
                "B went on past A's events: {} vs {}",
                on_b.len(),
                on_a.len()
            );
            assert_eq!(
                on_b[..on_a.len()],
                on_a[..],
                "the watch from {list_rv} on B replays exactly what A sent"
            );
            let listed = kubectl.ok(&["get", "hosts", "-o", "name"], None);
            let names: Vec<&str> = listed.stdout.lines().collect();
            assert_eq!(names.len(), 4, "{names:?}");
            assert!(names.iter().any(|n| n.contains("late")), "{names:?}");
        },
    );
    announce("e2e: two replicas behind one Service agree through the aggregator");
}
