//! The live inventory against a real nats-server (Debian `nats-server`): heartbeats as wasmCloud
//! hosts publish them (from `wasmgate sim-hosts`), ageing to Unknown and False, the settle
//! window after a NATS restart, malformed payloads, and admission of a real `wasmgate serve
//! --nats-url` that follows the hosts' heartbeats.

mod common;
mod support;

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{json, Value};

use common::{build_component, write, Server};
use support::{eventually, NatsServer};
use wasmgate::crd::Host;
use wasmgate::inventory::{start_live, LiveConfig, LiveRuntime, NatsAuthArgs, NatsConnection};
use wasmgate::sim::SimHostsArgs;

/// A real nats-server (tests/support's) whose log lives in a temporary directory dropped with it.
fn start_nats() -> (NatsServer, tempfile::TempDir) {
    let logs = tempfile::tempdir().expect("tempdir");
    (NatsServer::start(&logs.path().join("nats.log")), logs)
}

#[derive(Parser)]
struct SimCli {
    #[command(flatten)]
    args: SimHostsArgs,
}

fn sim_args(url: &str, extra: &[&str]) -> SimHostsArgs {
    let mut argv = vec!["sim-hosts", "--nats-url", url];
    argv.extend_from_slice(extra);
    SimCli::parse_from(argv).args
}

fn live(nats: &NatsServer, config: LiveConfig) -> LiveRuntime {
    let connection = NatsConnection::new(nats.url(), &NatsAuthArgs::default()).expect("no files");
    start_live(config, Some(connection), Duration::from_millis(100))
}

async fn connected(rt: &LiveRuntime, n: u64) {
    eventually(Duration::from_secs(20), "a NATS connection", || {
        (rt.stats.connects.load(Ordering::Relaxed) >= n).then_some(())
    })
    .await;
}

fn condition(host: &Host, type_: &str) -> (String, Option<String>) {
    let c = host
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .expect("condition");
    (c.status.clone(), c.message.clone())
}

/// Publishes `args` (one round) until `done` holds: the subscription is set up asynchronously
/// after the connection, so a first round may precede it.
async fn publish_until(args: &SimHostsArgs, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        wasmgate::sim::run(args.clone()).await.expect("sim-hosts");
        for _ in 0..10 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

async fn raw_client(nats: &NatsServer) -> async_nats::Client {
    async_nats::connect(nats.url()).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_from_sim_hosts_are_ingested() {
    let (nats, _logs) = start_nats();
    let rt = live(&nats, LiveConfig::default());
    connected(&rt, 1).await;
    let args = sim_args(
        &nats.url(),
        &[
            "--count",
            "3",
            "--once",
            "--prefix",
            "ingest",
            "--environment",
            "team-a",
            "--labels",
            "zone=z1",
            "--plugins",
            "wash",
            "--plugins",
            "postgres-0.2",
        ],
    );
    let inv = rt.inventory.clone();
    publish_until(&args, "three hosts", || inv.len() == 3).await;

    let (hosts, rv) = rt.inventory.list();
    assert!(rv >= 3);
    let names: Vec<_> = hosts
        .iter()
        .map(|h| h.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["ingest-0", "ingest-1", "ingest-2"]);
    let h = &hosts[1];
    assert_eq!(h.api_version, "wasmgate.dev/v1alpha1");
    assert_eq!(h.kind, "Host");
    assert_eq!(h.host_id, wasmgate::sim::sim_host_id("ingest", 1));
    assert_eq!(h.hostname.as_deref(), Some("10.244.0.3"));
    assert_eq!(h.http_port, Some(9191));
    assert_eq!(h.environment.as_deref(), Some("team-a"));
    let labels = h.labels();
    assert_eq!(labels["hostgroup"], "default");
    assert_eq!(labels["zone"], "z1");
    assert!(h.metadata.uid.is_some() && h.metadata.creation_timestamp.is_some());
    assert!(h.metadata.resource_version.is_some());
    let s = h.status.as_ref().unwrap();
    assert_eq!(s.version.as_deref(), Some("2.7.0"));
    assert_eq!(s.os_name.as_deref(), Some(std::env::consts::OS));
    assert_eq!(s.system_memory_total, Some(16 * 1024 * 1024 * 1024));
    assert!(s
        .system_cpu_usage
        .as_deref()
        .unwrap()
        .parse::<f64>()
        .is_ok());
    assert!(s.last_seen.as_deref().unwrap().ends_with('Z'));
    assert!(s.started_at.is_some());
    let imports = s.imports.as_ref().unwrap();
    assert!(imports
        .iter()
        .any(|w| w.package == "postgres" && w.version.as_deref() == Some("0.2.0")));
    assert!(imports
        .iter()
        .any(|w| w.package == "keyvalue" && w.version.is_none()));
    assert_eq!(s.exports.as_ref().unwrap().len(), 2);
    assert_eq!(h.ready_status(), Some("True"));
    assert_eq!(condition(h, "Reporting").0, "True");

    // Malformed payloads are counted and ignored; a good one after them still lands.
    let client = raw_client(&nats).await;
    for bad in [
        &b"not json"[..],
        b"[]",
        br#"{"id":"x","systemMemoryTotal":"lots"}"#,
        br#"{"labels":{"hostgroup":7}}"#,
        b"",
        // On host `bad`'s subject, speaking for another host.
        br#"{"id":"victim","friendlyName":"spoofed"}"#,
    ] {
        client
            .publish("runtime.operator.heartbeat.bad", bad.to_vec().into())
            .await
            .unwrap();
    }
    client
        .publish(
            "runtime.operator.heartbeat.raw-id",
            br#"{"friendlyName":"raw-host","systemMemoryTotal":"1024","httpPort":8080}"#
                .to_vec()
                .into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    let raw = eventually(Duration::from_secs(10), "raw-host", || {
        rt.inventory.get("raw-host")
    })
    .await;
    assert_eq!(raw.host_id, "raw-id", "id from the subject");
    assert_eq!(raw.status.unwrap().system_memory_total, Some(1024));
    let (_, _, rejected) = rt.stats.counts();
    assert_eq!(rejected, 6);
    assert_eq!(rt.inventory.len(), 4);
    assert!(rt.inventory.get("spoofed").is_none());

    // A watch sees the next heartbeats as MODIFIED events.
    let (_, mut rx) = rt.inventory.watch(None).unwrap();
    wasmgate::sim::run(args.clone()).await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an event")
        .unwrap();
    assert_eq!(ev.kind, wasmgate::inventory::WatchEventType::Modified);
}

/// A heartbeat encoded as the host encodes it (prost + pbjson, not wasmgate's own type) and
/// published on a real nats-server becomes a Host with every field the heartbeat carried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_from_an_independent_encoder_become_hosts() {
    let (nats, _logs) = start_nats();
    let rt = live(&nats, LiveConfig::default());
    connected(&rt, 1).await;
    let hb = common::pbjson_heartbeat();
    let payload = serde_json::to_vec(&hb).expect("pbjson serializes");
    let subject = format!("runtime.operator.heartbeat.{}", hb.id);
    let client = raw_client(&nats).await;
    // The subscription is set up after the connection: publish until the host is there.
    let deadline = Instant::now() + Duration::from_secs(20);
    let host = loop {
        client
            .publish(subject.clone(), payload.clone().into())
            .await
            .expect("publish");
        client.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(h) = rt.inventory.get(&hb.friendly_name) {
            break h;
        }
        assert!(Instant::now() < deadline, "the host never arrived");
    };
    assert_eq!(host.host_id, hb.id);
    assert_eq!(host.hostname.as_deref(), Some(hb.hostname.as_str()));
    assert_eq!(host.http_port, Some(hb.http_port));
    assert_eq!(host.environment.as_deref(), Some(hb.environment.as_str()));
    let labels = host.labels();
    assert_eq!(labels["hostgroup"], "edge");
    assert_eq!(labels["zone"], "eu-1");
    let s = host.status.as_ref().expect("status");
    assert_eq!(s.version.as_deref(), Some("2.7.0"));
    assert_eq!(s.os_name.as_deref(), Some("linux"));
    assert_eq!(s.os_arch.as_deref(), Some("x86_64"));
    assert_eq!(s.os_kernel.as_deref(), Some("6.12.0"));
    assert_eq!(s.system_memory_total, Some(9_007_199_254_740_993));
    assert_eq!(s.system_memory_free, Some(4_294_967_296));
    assert_eq!(s.component_count, Some(7));
    assert_eq!(s.workload_count, Some(3));
    assert!(s
        .started_at
        .as_deref()
        .is_some_and(|t| t.starts_with("2026-09-21T14:13:20")));
    let imports = s.imports.as_ref().expect("imports");
    assert!(imports.iter().any(|w| w.package == "keyvalue"
        && w.version.as_deref() == Some("0.2.0-draft")
        && w.interfaces == ["store", "atomics"]));
    assert!(imports
        .iter()
        .any(|w| w.package == "postgres" && w.name.as_deref() == Some("orders-db")));
    let exports = s.exports.as_ref().expect("exports");
    assert_eq!(exports.len(), 1);
    assert_eq!(exports[0].interfaces, ["incoming-handler"]);
    assert_eq!(host.ready_status(), Some("True"));
    let (_, _, rejected) = rt.stats.counts();
    assert_eq!(rejected, 0, "no payload was refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_host_goes_unknown_then_false_then_away() {
    let (nats, _logs) = start_nats();
    let rt = live(
        &nats,
        LiveConfig {
            heartbeat_timeout: Duration::from_secs(2),
            retention: Duration::from_secs(2),
            settle: Duration::from_millis(500),
            history: 1000,
        },
    );
    connected(&rt, 1).await;
    let args = sim_args(
        &nats.url(),
        &["--count", "1", "--once", "--prefix", "silent"],
    );
    let inv = rt.inventory.clone();
    publish_until(&args, "the host", || inv.get("silent-0").is_some()).await;
    let seen = Instant::now();
    let h = rt.inventory.get("silent-0").unwrap();
    assert_eq!(h.ready_status(), Some("True"));

    // Unknown after half the timeout.
    let h = eventually(Duration::from_secs(5), "Unknown", || {
        rt.inventory
            .get("silent-0")
            .filter(|h| h.ready_status() == Some("Unknown"))
    })
    .await;
    assert!(
        seen.elapsed() >= Duration::from_millis(800),
        "{:?}",
        seen.elapsed()
    );
    assert_eq!(
        condition(&h, "Ready"),
        (
            "Unknown".into(),
            Some("status unknown: host is not reporting".into())
        )
    );
    assert_eq!(condition(&h, "Reporting").0, "False");
    // False after the timeout.
    let h = eventually(Duration::from_secs(5), "False", || {
        rt.inventory
            .get("silent-0")
            .filter(|h| h.ready_status() == Some("False"))
    })
    .await;
    assert!(
        seen.elapsed() >= Duration::from_millis(1800),
        "{:?}",
        seen.elapsed()
    );
    assert_eq!(
        condition(&h, "Ready").1.as_deref(),
        Some("host has not reported recently")
    );
    // Removed after the retention; a watch sees the DELETED event.
    let (_, mut rx) = rt.inventory.watch(None).unwrap();
    eventually(Duration::from_secs(6), "removal", || {
        rt.inventory.get("silent-0").is_none().then_some(())
    })
    .await;
    assert!(
        seen.elapsed() >= Duration::from_millis(3800),
        "{:?}",
        seen.elapsed()
    );
    let ev = rx.recv().await.unwrap();
    assert_eq!(ev.kind, wasmgate::inventory::WatchEventType::Deleted);
    assert_eq!(ev.object.metadata.name.as_deref(), Some("silent-0"));

    // A heartbeat brings it back.
    publish_until(&args, "the host again", || {
        inv.get("silent-0")
            .is_some_and(|h| h.ready_status() == Some("True"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_settle_window() {
    let (mut nats, _logs) = start_nats();
    let settle = Duration::from_secs(3);
    let rt = live(
        &nats,
        LiveConfig {
            heartbeat_timeout: Duration::from_secs(1),
            retention: Duration::from_secs(60),
            settle,
            history: 1000,
        },
    );
    connected(&rt, 1).await;
    let args = sim_args(&nats.url(), &["--count", "5", "--once", "--prefix", "blip"]);
    let inv = rt.inventory.clone();
    publish_until(&args, "five hosts", || inv.len() == 5).await;

    // NATS goes away for longer than the heartbeat timeout: the hosts go Unknown, not False.
    nats.stop();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let states = |inv: &wasmgate::inventory::LiveInventory| {
        inv.list()
            .0
            .iter()
            .map(|h| h.ready_status().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(&inv),
        vec!["Unknown"; 5],
        "no host False while disconnected"
    );
    assert!(rt.stats.disconnects.load(Ordering::Relaxed) >= 1);

    // Back on the same port: for a full settle window no host turns False, then they do. The
    // window is timed from before the restart (the reconnect can only come later), so a slow
    // machine shortens what is checked instead of failing it.
    let reconnected = Instant::now();
    nats.restart();
    connected(&rt, 2).await;
    while reconnected.elapsed() < settle - Duration::from_millis(300) {
        assert_eq!(
            states(&inv),
            vec!["Unknown"; 5],
            "no host False {:?} after the reconnect",
            reconnected.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(Duration::from_secs(10), "False after settling", || {
        (states(&inv) == vec!["False"; 5]).then_some(())
    })
    .await;

    // Hosts that heartbeat again are Ready at once.
    publish_until(&args, "ready hosts", || states(&inv) == vec!["True"; 5]).await;
}

const ORDERS: &str = "package test:orders; world orders {
  import orders-db: wasmcloud:postgres/query@0.2.0;
}";

fn review(uid: &str) -> Value {
    let object = json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1",
        "kind": "Workload",
        "metadata": { "name": "orders", "namespace": "team-a" },
        "spec": {
            "hostSelector": { "hostgroup": "data" },
            "hostInterfaces": [{ "name": "orders-db", "namespace": "wasmcloud", "package": "postgres", "version": "0.2.0", "interfaces": ["query"] }],
            "components": [{ "name": "api", "image": "registry.test/orders:1.0.0" }],
        },
    });
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "kind": "Workload" },
            "resource": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "resource": "workloads" },
            "name": "orders",
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": { "username": "alice", "groups": ["system:authenticated"] },
            "object": object,
            "oldObject": null,
            "dryRun": false,
        }
    })
}

async fn validate(server: &Server, client: &reqwest::Client, uid: &str) -> Value {
    let resp = client
        .post(format!("{}/validate", server.url))
        .json(&review(uid))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["response"]["uid"], uid);
    body["response"].clone()
}

fn sim_hosts_binary(url: &str, args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_wasmgate"))
        .args(["sim-hosts", "--nats-url", url])
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .status()
        .expect("run wasmgate sim-hosts");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_follows_live_hosts() {
    let (nats, _logs) = start_nats();
    let dir = tempfile::tempdir().unwrap();
    let component = write(dir.path(), "orders.wasm", &build_component(ORDERS));
    let server = Server::start(
        &dir.path().join("certs"),
        &[
            "--nats-url".into(),
            nats.url(),
            "--inventory-warmup".into(),
            "0s".into(),
            "--component".into(),
            format!("registry.test/orders:1.0.0={}", component.display()),
        ],
    );
    let client = server.client();
    let url = nats.url();

    // Hosts of group "data" that offer only postgres 0.1.1-draft: denied, naming what they offer.
    let old = [
        "--count",
        "2",
        "--once",
        "--prefix",
        "old-db",
        "--hostgroup",
        "data",
        "--plugins",
        "wash",
        "--plugins",
        "postgres-0.1",
    ];
    let mut n = 0;
    let denied = loop {
        sim_hosts_binary(&url, &old);
        n += 1;
        let r = validate(&server, &client, &format!("deny-{n}")).await;
        assert_eq!(r["allowed"], false, "{r}");
        let m = r["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if m.contains("none of the 2 hosts") || n > 50 {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        denied.contains(
            "component \"api\" imports wasmcloud:postgres/query@0.2.0 through hostInterfaces entry \"orders-db\": none of the 2 hosts matching hostSelector {hostgroup=data} provides wasmcloud:postgres@0.2.0 (they offer 0.1.1-draft)"
        ),
        "{denied}"
    );

    // A host with postgres 0.2.0 starts heartbeating: admitted.
    let new = [
        "--count",
        "1",
        "--once",
        "--prefix",
        "new-db",
        "--hostgroup",
        "data",
        "--plugins",
        "postgres-0.2",
    ];
    sim_hosts_binary(&url, &new);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        let r = validate(&server, &client, &format!("allow-{n}")).await;
        if r["allowed"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never admitted: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
