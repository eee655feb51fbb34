//! One inventory for every replica (issue 14), on a real nats-server with JetStream
//! (`-js -sd <tempdir>`): in-process replicas started as `wasmgate serve --inventory-log
//! jetstream` starts them ([`start_live_jetstream`]), fed by `wasmgate sim-hosts` heartbeats
//! and by the write path the hosts API calls ([`LiveInventory::write`], `remove`).
//!
//! Bounds are generous (the CI machine is a loaded 2-core box): the tests assert on order and
//! on the state reached, never on how fast.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::sync::watch;

use support::{eventually, NatsServer};
use wasmgate::crd::Host;
use wasmgate::inventory::jetstream::{ensure_stream, WRITE_PREFIX};
use wasmgate::inventory::{
    repair_stream, start_live_jetstream, JetStreamError, LiveConfig, LiveInventory, LiveRuntime,
    NatsAuthArgs, NatsConnection, StreamRepair, StreamSettings, WatchEvent, WatchEventType,
};
use wasmgate::sim::SimHostsArgs;

/// A real nats-server (tests/support), with JetStream in a temporary directory that outlives
/// restarts, or without it.
struct Nats {
    server: NatsServer,
    _dirs: tempfile::TempDir,
}

impl Nats {
    fn start(jetstream: bool) -> Nats {
        let dirs = tempfile::tempdir().expect("tempdir");
        let log = dirs.path().join("nats-server.log");
        let server = if jetstream {
            let store = dirs.path().join("jetstream");
            NatsServer::start_jetstream(&log, &store)
        } else {
            NatsServer::start(&log)
        };
        Nats {
            server,
            _dirs: dirs,
        }
    }

    /// Stops it and starts it again on the same port and store.
    fn restart(&mut self) {
        self.server.restart();
    }

    fn url(&self) -> String {
        self.server.url()
    }
}

#[derive(Parser)]
struct SimCli {
    #[command(flatten)]
    args: SimHostsArgs,
}

fn sim_args(url: &str, extra: &[&str]) -> SimHostsArgs {
    let mut argv = vec!["sim-hosts", "--nats-url", url, "--once"];
    argv.extend_from_slice(extra);
    SimCli::parse_from(argv).args
}

/// Long timeouts: nothing ages unless a test asks for it.
fn quiet() -> LiveConfig {
    LiveConfig {
        heartbeat_timeout: Duration::from_secs(3600),
        retention: Duration::from_secs(3600),
        settle: Duration::ZERO,
        history: 10_000,
    }
}

/// A replica: the inventory on the stream, leading or not (its sender kept alive).
struct Replica {
    rt: LiveRuntime,
    _leader: watch::Sender<bool>,
}

impl Replica {
    fn inv(&self) -> &Arc<LiveInventory> {
        &self.rt.inventory
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.rt.stop();
    }
}

async fn replica(nats: &Nats, config: LiveConfig, leader: bool) -> Replica {
    replica_on(nats, config, leader, StreamSettings::default()).await
}

async fn replica_on(
    nats: &Nats,
    config: LiveConfig,
    leader: bool,
    settings: StreamSettings,
) -> Replica {
    let connection = NatsConnection::new(nats.url(), &NatsAuthArgs::default()).expect("no files");
    let (tx, rx) = watch::channel(leader);
    let rt = start_live_jetstream(config, connection, settings, rx, Duration::from_millis(100))
        .await
        .expect("the inventory log starts");
    tokio::time::timeout(Duration::from_secs(60), rt.warm_up(None))
        .await
        .expect("the replica catches up with the stream");
    Replica { rt, _leader: tx }
}

/// Waits until every replica lists the same hosts at the same resourceVersion, and `done`
/// holds for them; returns that list.
async fn agreed(
    replicas: &[&Replica],
    what: &str,
    done: impl Fn(&[Host]) -> bool,
) -> (Vec<Host>, u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let first = owned(replicas[0].inv().list());
        if done(&first.0) && replicas[1..].iter().all(|r| owned(r.inv().list()) == first) {
            return first;
        }
        if Instant::now() > deadline {
            let state: Vec<_> = replicas
                .iter()
                .map(|r| {
                    let (hosts, rv) = owned(r.inv().list());
                    (names(&hosts), rv, r.inv().applied_sequence())
                })
                .collect();
            let (base, _) = owned(replicas[0].inv().list());
            for r in &replicas[1..] {
                for (x, y) in base.iter().zip(owned(r.inv().list()).0) {
                    if *x != y {
                        eprintln!(
                            "differs:\n{}\n{}",
                            serde_json::to_string(x).unwrap_or_default(),
                            serde_json::to_string(&y).unwrap_or_default()
                        );
                    }
                }
            }
            panic!("timed out waiting for {what}: (names, rv, applied) by replica: {state:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A replica's list with the hosts copied out of their shared pointers.
fn owned((hosts, rv): (Vec<std::sync::Arc<Host>>, u64)) -> (Vec<Host>, u64) {
    (hosts.iter().map(|h| Host::clone(h)).collect(), rv)
}

fn names(hosts: &[Host]) -> Vec<String> {
    hosts
        .iter()
        .map(|h| h.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn rv(host: &Host) -> u64 {
    host.metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// (kind, name, resourceVersion, Ready) of every event up to resourceVersion `until`.
async fn events_until(
    replay: Vec<WatchEvent>,
    rx: &mut tokio::sync::broadcast::Receiver<WatchEvent>,
    until: u64,
) -> Vec<(WatchEventType, String, u64, Option<String>)> {
    let mut out: Vec<_> = replay.into_iter().map(summary).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.last().is_none_or(|e| e.2 < until) {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, rx.recv())
            .await
            .expect("the events up to the final resourceVersion")
            .expect("no lag");
        out.push(summary(ev));
    }
    out
}

fn summary(ev: WatchEvent) -> (WatchEventType, String, u64, Option<String>) {
    (
        ev.kind,
        ev.object.metadata.name.clone().unwrap_or_default(),
        ev.resource_version(),
        ev.object.ready_status().map(str::to_string),
    )
}

fn api_host(name: &str, id: &str) -> Host {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "wasmgate.dev/v1alpha1",
        "kind": "Host",
        "metadata": {"name": name, "labels": {"hostgroup": "http"}},
        "hostId": id,
    }))
    .expect("a Host")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_agree_on_hosts_versions_writes_and_watches() {
    let nats = Nats::start(true);
    let a = replica(&nats, quiet(), true).await;
    let b = replica(&nats, quiet(), false).await;

    // Heartbeats from sim-hosts: the same hosts at the same resourceVersions on both.
    wasmgate::sim::run(sim_args(&nats.url(), &["--count", "3", "--prefix", "js"]))
        .await
        .expect("sim-hosts");
    let (hosts, list_rv) =
        agreed(&[&a, &b], "three hosts on both replicas", |h| h.len() == 3).await;
    assert_eq!(names(&hosts), ["js-0", "js-1", "js-2"]);
    assert!(hosts.iter().all(|h| rv(h) > 0 && h.metadata.uid.is_some()));

    // Watches on both from A's list resourceVersion.
    let (replay_a, mut rx_a) = a.inv().watch(Some(list_rv)).expect("watch on A");
    let (replay_b, mut rx_b) = b
        .inv()
        .watch(Some(list_rv))
        .expect("watch on B from A's version");

    // A write through A is listed by B at the same resourceVersion.
    let written = a
        .inv()
        .write(
            api_host("http-host", "http-id"),
            std::time::SystemTime::now(),
        )
        .await
        .expect("written through A");
    assert!(rv(&written) > list_rv);
    let on_b = eventually(Duration::from_secs(30), "the write on B", || {
        b.inv().get("http-host")
    })
    .await;
    assert_eq!(
        on_b, written,
        "the same object, resourceVersion and uid included"
    );

    // A stale precondition is refused before publishing.
    let mut stale = api_host("http-host", "http-id");
    stale.metadata.resource_version = Some(list_rv.to_string());
    assert!(matches!(
        b.inv().write(stale, std::time::SystemTime::now()).await,
        Err(wasmgate::inventory::InventoryError::Conflict { .. })
    ));

    // More heartbeats, then a delete through B.
    wasmgate::sim::run(sim_args(&nats.url(), &["--count", "3", "--prefix", "js"]))
        .await
        .expect("sim-hosts");
    let deleted = b
        .inv()
        .remove("js-1")
        .await
        .expect("deleted through B")
        .expect("js-1 existed");
    let (hosts, last) = agreed(&[&a, &b], "the delete on both", |h| {
        !names(h).contains(&"js-1".to_string()) && h.len() == 3
    })
    .await;
    assert_eq!(last, rv(&deleted));
    assert_eq!(names(&hosts), ["http-host", "js-0", "js-2"]);

    // Exactly the same events on both watches.
    let seen_a = events_until(replay_a, &mut rx_a, last).await;
    let seen_b = events_until(replay_b, &mut rx_b, last).await;
    assert_eq!(seen_a, seen_b);
    let kinds: Vec<_> = seen_a.iter().map(|e| (e.0, e.1.as_str())).collect();
    assert_eq!(kinds[0], (WatchEventType::Added, "http-host"));
    assert_eq!(kinds.last(), Some(&(WatchEventType::Deleted, "js-1")));
    assert!(
        seen_a.windows(2).all(|w| w[0].2 < w[1].2),
        "increasing versions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_has_the_hosts_back_before_any_heartbeat() {
    let nats = Nats::start(true);
    let a = replica(&nats, quiet(), true).await;
    let args = sim_args(&nats.url(), &["--count", "4", "--prefix", "back"]);
    // Two rounds: the stream keeps only each host's latest heartbeat.
    wasmgate::sim::run(args.clone()).await.expect("sim-hosts");
    agreed(&[&a], "four hosts", |h| h.len() == 4).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    wasmgate::sim::run(args).await.expect("sim-hosts");
    let rv_after_second_round = eventually(Duration::from_secs(30), "the second round", || {
        let (hosts, rv) = a.inv().list();
        (hosts.len() == 4 && rv >= 8 && hosts.iter().all(|h| self::rv(h) > 4)).then_some(rv)
    })
    .await;
    a.inv()
        .write(
            api_host("http-host", "http-id"),
            std::time::SystemTime::now(),
        )
        .await
        .expect("written");
    let (before, rv_before) = owned(a.inv().list());
    assert!(rv_before > rv_after_second_round);
    drop(a);

    // No heartbeat is published from here on.
    let again = replica(&nats, quiet(), true).await;
    let (after, rv_after) = owned(again.inv().list());
    assert_eq!(rv_after, rv_before);
    let key = |h: &Host| {
        (
            h.metadata.name.clone(),
            rv(h),
            h.metadata.uid.clone(),
            h.host_id.clone(),
            h.status.as_ref().and_then(|s| s.last_seen.clone()),
            h.ready_status().map(str::to_string),
        )
    };
    assert_eq!(
        after.iter().map(key).collect::<Vec<_>>(),
        before.iter().map(key).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_hosts_age_on_every_replica_through_the_leader_only() {
    let nats = Nats::start(true);
    let config = LiveConfig {
        heartbeat_timeout: Duration::from_secs(4),
        retention: Duration::from_secs(3600),
        settle: Duration::ZERO,
        history: 10_000,
    };
    let follower = replica(&nats, config.clone(), false).await;
    let args = sim_args(&nats.url(), &["--count", "2", "--prefix", "quiet"]);
    wasmgate::sim::run(args.clone()).await.expect("sim-hosts");
    let (_, rv0) = agreed(&[&follower], "two hosts", |h| h.len() == 2).await;
    // A follower alone never ages: well past the timeout, nothing changed.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (hosts, now_rv) = owned(follower.inv().list());
    assert_eq!(now_rv, rv0);
    assert!(hosts.iter().all(|h| h.ready_status() == Some("True")));

    // Fresh heartbeats, then a leader: Unknown, then False, on both, from its messages.
    wasmgate::sim::run(args).await.expect("sim-hosts");
    let (_, fresh) = agreed(&[&follower], "fresh heartbeats", |h| {
        h.iter().all(|h| rv(h) > rv0)
    })
    .await;
    let (replay, mut rx) = follower.inv().watch(Some(fresh)).expect("watch");
    let leader = replica(&nats, config, true).await;
    let (hosts, last) = agreed(&[&leader, &follower], "both hosts False on both", |h| {
        h.len() == 2 && h.iter().all(|h| h.ready_status() == Some("False"))
    })
    .await;
    assert_eq!(names(&hosts), ["quiet-0", "quiet-1"]);
    let seen = events_until(replay, &mut rx, last).await;
    for name in ["quiet-0", "quiet-1"] {
        let states: Vec<_> = seen
            .iter()
            .filter(|e| e.1 == name)
            .map(|e| e.3.clone().unwrap_or_default())
            .collect();
        assert_eq!(states, ["Unknown", "False"], "{name}: {seen:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_with_file_storage_loses_nothing() {
    let mut nats = Nats::start(true);
    let a = replica(&nats, quiet(), true).await;
    wasmgate::sim::run(sim_args(&nats.url(), &["--count", "3", "--prefix", "kept"]))
        .await
        .expect("sim-hosts");
    agreed(&[&a], "three hosts", |h| h.len() == 3).await;
    a.inv()
        .write(
            api_host("http-host", "http-id"),
            std::time::SystemTime::now(),
        )
        .await
        .expect("written");
    let before = a.inv().list();

    nats.restart();

    // A new replica replays the stream from the restarted server's disk.
    let fresh = replica(&nats, quiet(), false).await;
    assert_eq!(fresh.inv().list(), before);
    // The running one goes on: a write after the restart reaches both.
    let deadline = Instant::now() + Duration::from_secs(60);
    let written = loop {
        match a
            .inv()
            .write(
                api_host("after-restart", "after-id"),
                std::time::SystemTime::now(),
            )
            .await
        {
            Ok(h) => break h,
            Err(e) => {
                assert!(Instant::now() < deadline, "no write after the restart: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let (hosts, _) = agreed(&[&a, &fresh], "the write on both", |h| h.len() == 5).await;
    assert!(hosts.contains(&written));
}

/// A JetStream context of the test's own on `nats`.
async fn jetstream_context(nats: &Nats) -> async_nats::jetstream::Context {
    let client = async_nats::connect(nats.url()).await.expect("connect");
    async_nats::jetstream::new(client)
}

/// Publishes one API write entry, returning its stream sequence.
async fn publish_entry(js: &async_nats::jetstream::Context, name: &str) -> u64 {
    let payload = serde_json::to_vec(&api_host(name, name)).expect("json");
    js.publish(format!("{WRITE_PREFIX}{name}"), payload.into())
        .await
        .expect("publish")
        .await
        .expect("ack")
        .sequence
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_recreates_a_removed_stream_and_moves_a_restarted_one_past_what_was_applied() {
    let nats = Nats::start(true);
    let js = jetstream_context(&nats).await;
    let settings = StreamSettings::default();
    let url = nats.url();
    ensure_stream(&js, &url, &settings).await.expect("created");
    for i in 1..=5 {
        assert_eq!(publish_entry(&js, &format!("h{i}")).await, i);
    }
    // Healthy: nothing to do, whatever was applied so far.
    for applied in [0, 3, 5] {
        assert_eq!(
            repair_stream(&js, &url, &settings, applied)
                .await
                .expect("checked"),
            None
        );
    }

    // Removed: created again, numbering on after what was applied.
    js.delete_stream(&settings.name).await.expect("deleted");
    assert_eq!(
        repair_stream(&js, &url, &settings, 5)
            .await
            .expect("repaired"),
        Some(StreamRepair::Recreated { first: 6 })
    );
    assert_eq!(publish_entry(&js, "after-recreate").await, 6);
    assert_eq!(
        repair_stream(&js, &url, &settings, 6)
            .await
            .expect("checked"),
        None
    );

    // Removed and created again outside wasmgate, numbering from 1: moved on past 6.
    js.delete_stream(&settings.name).await.expect("deleted");
    js.create_stream(settings.config())
        .await
        .expect("created by someone else");
    assert_eq!(publish_entry(&js, "outside").await, 1);
    assert_eq!(
        repair_stream(&js, &url, &settings, 6)
            .await
            .expect("repaired"),
        Some(StreamRepair::Advanced { last: 1, first: 7 })
    );
    assert_eq!(publish_entry(&js, "after-advance").await, 7);
    // The stream keeps wasmgate's settings (one message per subject, both subject trees).
    let mut stream = js.get_stream(&settings.name).await.expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.config.max_messages_per_subject, 1);
    assert_eq!(info.config.subjects, settings.config().subjects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_stream_is_recreated_and_every_replica_goes_on_from_there() {
    let nats = Nats::start(true);
    let a = replica(&nats, quiet(), true).await;
    let b = replica(&nats, quiet(), false).await;
    wasmgate::sim::run(sim_args(
        &nats.url(),
        &["--count", "3", "--prefix", "before"],
    ))
    .await
    .expect("sim-hosts");
    let (_, rv_before) = agreed(&[&a, &b], "three hosts", |h| h.len() == 3).await;
    let (replay, mut rx) = b.inv().watch(Some(rv_before)).expect("watch from the list");
    assert!(replay.is_empty());

    let js = jetstream_context(&nats).await;
    let name = StreamSettings::default().name;
    js.delete_stream(&name).await.expect("deleted");
    // A replica's guard finds it gone and creates it again, numbering on after what it applied.
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Ok(mut stream) = js.get_stream(&name).await {
            let state = stream.info().await.expect("info").state.clone();
            if state.first_sequence > rv_before {
                break state.first_sequence;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the stream was not recreated past {rv_before}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let repairs: u64 = [&a, &b]
        .iter()
        .map(|r| {
            r.rt.log.as_ref().map_or(0, |l| {
                l.state.repairs.load(std::sync::atomic::Ordering::Relaxed)
            })
        })
        .sum();
    assert!(repairs >= 1, "no replica reported the repair");

    // The hosts written before are still served (from memory); a new host's heartbeat and a
    // write through A reach both replicas at resourceVersions past the old ones.
    wasmgate::sim::run(sim_args(
        &nats.url(),
        &["--count", "1", "--prefix", "after"],
    ))
    .await
    .expect("sim-hosts");
    let written = a
        .inv()
        .write(
            api_host("written-after", "written-id"),
            std::time::SystemTime::now(),
        )
        .await
        .expect("a write after the repair");
    assert!(rv(&written) >= first, "{} < {first}", rv(&written));
    let (hosts, rv_after) = agreed(&[&a, &b], "five hosts", |h| h.len() == 5).await;
    assert!(rv_after > rv_before);
    let new: Vec<_> = hosts.iter().filter(|h| rv(h) > rv_before).collect();
    assert_eq!(new.len(), 2, "{:?}", names(&hosts));
    assert!(new.iter().all(|h| rv(h) >= first));
    // B's watch from before the removal goes on without a gap or a 410.
    let events = events_until(Vec::new(), &mut rx, rv_after).await;
    let seen: Vec<_> = events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(seen.contains(&"written-after"), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_restart_with_memory_storage_loses_the_stream_and_the_replica_recreates_it() {
    let mut nats = Nats::start(true);
    let memory = StreamSettings {
        storage: wasmgate::inventory::StreamStorage::Memory,
        ..StreamSettings::default()
    };
    let a = replica_on(&nats, quiet(), true, memory.clone()).await;
    wasmgate::sim::run(sim_args(&nats.url(), &["--count", "2", "--prefix", "mem"]))
        .await
        .expect("sim-hosts");
    let (_, before) = agreed(&[&a], "two hosts", |h| h.len() == 2).await;

    // The stream lived in the server's memory: gone with it.
    nats.restart();
    let js = jetstream_context(&nats).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        if let Ok(mut stream) = js.get_stream(&memory.name).await {
            let info = stream.info().await.expect("info").clone();
            if info.state.first_sequence > before {
                assert_eq!(
                    info.config.storage,
                    async_nats::jetstream::stream::StorageType::Memory
                );
                break info.state.first_sequence;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the stream was not recreated after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Hosts heartbeat again after the restart: listed at versions past the old ones.
    wasmgate::sim::run(sim_args(&nats.url(), &["--count", "2", "--prefix", "mem"]))
        .await
        .expect("sim-hosts");
    let (hosts, after) = agreed(&[&a], "both hosts again, past the restart", |h| {
        h.len() == 2 && h.iter().all(|h| rv(h) >= first)
    })
    .await;
    assert!(after > before, "{after} <= {before}: {:?}", names(&hosts));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_jetstream_start_fails_naming_it() {
    let nats = Nats::start(false);
    let connection = NatsConnection::new(nats.url(), &NatsAuthArgs::default()).expect("no files");
    let (_tx, rx) = watch::channel(true);
    let err = start_live_jetstream(
        quiet(),
        connection,
        StreamSettings::default(),
        rx,
        Duration::from_secs(1),
    )
    .await
    .expect_err("no JetStream");
    assert!(matches!(err, JetStreamError::NotEnabled { .. }), "{err:?}");
    assert!(
        err.to_string().contains("JetStream is not enabled"),
        "{err}"
    );
}
