//! Live inventory cost (issue 4): heartbeats ingested per second and memory per host.
//!
//! `cargo bench --bench inventory` runs, in order:
//!
//! 1. **Memory per host** (printed first): a counting global allocator tracks live heap bytes;
//!    10,000 hosts are ingested from realistic heartbeats (the `wash host` plugin set plus
//!    postgres, as `wasmgate sim-hosts --plugins wash --plugins postgres` sends them), once with
//!    no watch history and once with the default history (10,000 events), then a snapshot is
//!    built. Bytes per host = heap growth / 10,000. Those hosts all turn Ready in one second
//!    and so share one copy of their conditions (as after a restart, when a fleet reports
//!    within a heartbeat interval); a third line gives the worst case, where every host turned
//!    Ready in a second of its own.
//! 2. **criterion**: `apply_heartbeat` into an inventory of 10,000 hosts (round-robin, each a
//!    `Modified`), decode + apply from the proto3 JSON payload (the ingestion's path, and the
//!    same with every interface list parsed), `tick` over 10,000 hosts,
//!    `snapshot()` when unchanged, `list()` of 10,000 hosts, and the `hosts` API's first page
//!    of 500 (JSON and Table) through its router.
//! 3. **End to end through NATS** (when `nats-server` is installed): a real nats-server on a
//!    loopback port, the ingestion task, and 10,000 simulated hosts publishing 100,000
//!    heartbeats as fast as one client can while at most 20,000 are in flight (unapplied); the
//!    rate is heartbeats applied per second of wall time, until the last one is applied.
//!
//! Set `WASMGATE_BENCH_QUICK=1` for a short run (fewer samples).

// The counting allocator must wrap the system allocator: the one place the workspace allows
// `unsafe` (workspace lint `unsafe_code = "deny"`; the crates themselves forbid it).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use criterion::{BatchSize, Criterion, Throughput};

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;
use wasmgate::apiserver::{self, ApiState, AuthMode, Authenticator};
use wasmgate::inventory::{start_live, HostHeartbeat, InventorySource, LiveConfig, LiveInventory};
use wasmgate::sim::{SimHosts, SimHostsArgs};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const HOSTS: usize = 10_000;

#[derive(Parser)]
struct SimCli {
    #[command(flatten)]
    args: SimHostsArgs,
}

fn sim(count: usize, url: &str) -> SimHosts {
    let args = SimCli::parse_from([
        "sim-hosts",
        "--nats-url",
        url,
        "--count",
        &count.to_string(),
        "--plugins",
        "wash",
        "--plugins",
        "postgres",
        "--environment",
        "team-a",
        "--labels",
        "zone=z1",
    ])
    .args;
    SimHosts::new(&args).expect("sim hosts")
}

fn payloads(count: usize) -> Vec<(String, Vec<u8>)> {
    let mut sim = sim(count, "nats://127.0.0.1:1");
    (0..count).map(|i| sim.heartbeat(i)).collect()
}

fn filled(
    config: LiveConfig,
    payloads: &[(String, Vec<u8>)],
    now: SystemTime,
) -> Arc<LiveInventory> {
    let inv = LiveInventory::new(config);
    for (subject, payload) in payloads {
        let hb = inv.decode_heartbeat(subject, payload).unwrap();
        inv.apply_stored_heartbeat(hb, now);
    }
    inv
}

fn memory() {
    let payloads = payloads(HOSTS);
    let avg_payload = payloads.iter().map(|(_, p)| p.len()).sum::<usize>() / HOSTS;
    let now = SystemTime::now();
    for (history, own_second) in [(0, false), (10_000, false), (0, true)] {
        let before = LIVE.load(Ordering::Relaxed);
        let config = LiveConfig {
            history,
            ..LiveConfig::default()
        };
        let inv = if own_second {
            let inv = LiveInventory::new(config);
            for (i, (subject, payload)) in payloads.iter().enumerate() {
                let hb = inv.decode_heartbeat(subject, payload).unwrap();
                inv.apply_stored_heartbeat(hb, now + Duration::from_secs(i as u64));
            }
            inv
        } else {
            filled(config, &payloads, now)
        };
        let stored = LIVE.load(Ordering::Relaxed) - before;
        let snapshot = inv.snapshot();
        let with_snapshot = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "memory: {HOSTS} hosts, history {history:>5}{}: {:>6.1} MiB heap = {:>5} B/host \
             (+ resolver snapshot: {:>5} B/host); heartbeat payload {avg_payload} B",
            if own_second {
                ", each Ready in its own second"
            } else {
                ""
            },
            stored as f64 / (1 << 20) as f64,
            stored / HOSTS as isize,
            with_snapshot / HOSTS as isize,
        );
        drop(snapshot);
        drop(inv);
    }
}

fn criterion_benches(c: &mut Criterion) {
    let payloads = payloads(HOSTS);
    let t0 = SystemTime::now();
    let inv = filled(LiveConfig::default(), &payloads, t0);
    let decoded: Vec<HostHeartbeat> = payloads
        .iter()
        .map(|(s, p)| HostHeartbeat::decode_from_subject(s, p).unwrap())
        .collect();

    let mut g = c.benchmark_group("inventory");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut secs = 0u64;
    g.bench_function("apply_heartbeat (10k hosts)", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % HOSTS;
                if i == 0 {
                    secs += 15;
                }
                (decoded[i].clone(), t0 + Duration::from_secs(secs + 1))
            },
            |(hb, now)| inv.apply_heartbeat_shared(hb, now),
            BatchSize::SmallInput,
        )
    });
    let mut j = 0usize;
    // Before the list texts: every list parsed, then interned by hashing it.
    g.bench_function("decode + apply, lists parsed (10k hosts)", |b| {
        b.iter(|| {
            j = (j + 1) % HOSTS;
            if j == 0 {
                secs += 15;
            }
            let (subject, payload) = &payloads[j];
            let hb = HostHeartbeat::decode_from_subject(subject, payload).unwrap();
            inv.apply_heartbeat_shared(hb, t0 + Duration::from_secs(secs + 1))
        })
    });
    g.bench_function("decode + apply (10k hosts)", |b| {
        b.iter(|| {
            j = (j + 1) % HOSTS;
            if j == 0 {
                secs += 15;
            }
            let (subject, payload) = &payloads[j];
            // The ingestion's path: lists found by their text.
            let hb = inv.decode_heartbeat(subject, payload).unwrap();
            inv.apply_stored_heartbeat(hb, t0 + Duration::from_secs(secs + 1))
        })
    });
    g.throughput(Throughput::Elements(HOSTS as u64));
    g.bench_function("tick (10k hosts, no change)", |b| {
        b.iter(|| inv.tick(t0 + Duration::from_secs(secs + 2)))
    });
    g.throughput(Throughput::Elements(1));
    inv.snapshot();
    g.bench_function("snapshot (unchanged)", |b| b.iter(|| inv.snapshot()));
    g.throughput(Throughput::Elements(HOSTS as u64));
    g.bench_function("list (10k hosts)", |b| b.iter(|| inv.list()));

    // The hosts API's first page of 500 (what `kubectl get hosts` asks for first): the list
    // snapshot kept for `continue`, then one page rendered, through the API's router.
    g.throughput(Throughput::Elements(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let auth = Authenticator::new(AuthMode::AllowAll, Duration::from_secs(10));
    let router = apiserver::router(ApiState::new(inv.clone(), auth));
    for (name, accept) in [
        ("json", "application/json"),
        (
            "table",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        ),
    ] {
        g.bench_function(
            format!("hosts API: first page of 500 ({name}, 10k hosts)"),
            |b| {
                b.iter(|| {
                    rt.block_on(async {
                        let req = Request::get("/apis/wasmgate.dev/v1alpha1/hosts?limit=500")
                            .header("accept", accept)
                            .body(Body::empty())
                            .unwrap();
                        let resp = router.clone().oneshot(req).await.unwrap();
                        assert_eq!(resp.status(), 200);
                        axum::body::to_bytes(resp.into_body(), usize::MAX)
                            .await
                            .unwrap()
                            .len()
                    })
                })
            },
        );
    }
    g.finish();
}

fn nats_end_to_end() {
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(binary) = binary else {
        println!("nats end-to-end: skipped (no nats-server installed)");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let mut child = Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server");
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("nats://127.0.0.1:{port}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let live = start_live(
            LiveConfig::default(),
            Some(
                wasmgate::inventory::NatsConnection::new(url.clone(), &Default::default())
                    .expect("no files to read"),
            ),
            Duration::from_secs(1),
        );
        while live.stats.connects.load(Ordering::Relaxed) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let client = async_nats::connect(&url).await.unwrap();
        // Wait until the subscription is live.
        let (probe_subject, probe) = sim(1, &url).heartbeat(0);
        while live.inventory.is_empty() {
            client
                .publish(probe_subject.clone(), probe.clone().into())
                .await
                .unwrap();
            client.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut sim = sim(HOSTS, &url);
        let total = 10 * HOSTS as u64;
        let applied_before = live.stats.applied.load(Ordering::Relaxed);
        let start = Instant::now();
        // Publish in batches, keeping at most WINDOW heartbeats in flight, so the rate is what
        // ingestion sustains (past NATS's slow-consumer limits, the server would drop some).
        const WINDOW: u64 = 20_000;
        for k in 0..total {
            let (subject, payload) = sim.heartbeat(k as usize % HOSTS);
            client.publish(subject, payload.into()).await.unwrap();
            if k % 2_000 == 1_999 {
                client.flush().await.unwrap();
                while k + 1 - (live.stats.applied.load(Ordering::Relaxed) - applied_before) > WINDOW
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
        client.flush().await.unwrap();
        let published = start.elapsed();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = 0;
        loop {
            let applied = live.stats.applied.load(Ordering::Relaxed) - applied_before;
            if applied >= total || Instant::now() > deadline {
                last = applied.max(last);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = start.elapsed();
        println!(
            "nats end-to-end: {last}/{total} heartbeats of {HOSTS} hosts applied in {:.2}s \
             = {:.0} heartbeats/s (publisher done after {:.2}s; {} hosts in the inventory)",
            elapsed.as_secs_f64(),
            last as f64 / elapsed.as_secs_f64(),
            published.as_secs_f64(),
            live.inventory.len(),
        );
        for task in live.tasks {
            task.abort();
        }
    });
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    memory();
    let quick = std::env::var_os("WASMGATE_BENCH_QUICK").is_some();
    let mut c = Criterion::default().configure_from_args();
    if quick {
        c = c
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
    }
    criterion_benches(&mut c);
    // `cargo test --benches` runs this binary without --bench: skip the NATS run there.
    if std::env::args().any(|a| a == "--bench") {
        nats_end_to_end();
    }
    c.final_summary();
}
