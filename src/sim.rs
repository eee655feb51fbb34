//! `wasmgate sim-hosts`: simulated wasmCloud v2 hosts that publish heartbeats to NATS exactly as
//! real hosts do (proto3 JSON on `runtime.operator.heartbeat.<id>`, every 15 s by default), with
//! chosen labels, environment and plugin interface sets. For demos, tests and benchmarks.
//!
//! Host ids are derived from `--prefix` and the host's index, so running the command again
//! continues the same hosts instead of adding new ones.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;

use crate::inventory::heartbeat::{HostHeartbeat, WitInterface};
use crate::inventory::nats::HEARTBEAT_SUBJECT_PREFIX;
use crate::inventory::{NatsAuthArgs, NatsConfigError, NatsConnection};
use crate::platform::duration::parse_duration;

/// Why `wasmgate sim-hosts` could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The NATS credentials or certificates cannot be used.
    #[error(transparent)]
    NatsConfig(#[from] NatsConfigError),
    /// A `--plugins` value is neither a preset nor a valid interface.
    #[error(
        "--plugins {spec:?}: {why} (expected a preset (wash, postgres, postgres-0.1, \
         postgres-0.2, otel, webgpu, multiplexed, none) or [export:]ns:pkg[@version]/iface1,iface2[#name])"
    )]
    Plugins {
        /// The value.
        spec: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A `--labels` value is not `K=V`.
    #[error("--labels {0:?}: expected K=V")]
    Label(String),
    /// NATS is not reachable.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// `--nats-url`.
        url: String,
        /// Why.
        source: async_nats::ConnectError,
    },
    /// Publishing a heartbeat failed.
    #[error("publishing a heartbeat: {0}")]
    Publish(#[from] async_nats::PublishError),
    /// Flushing the published heartbeats failed.
    #[error("flushing heartbeats to NATS: {0}")]
    Flush(#[from] async_nats::client::FlushError),
}

/// Options of `wasmgate sim-hosts`.
#[derive(Clone, Debug, Args)]
pub struct SimHostsArgs {
    /// NATS server to publish to.
    #[arg(
        long,
        default_value = "nats://127.0.0.1:4222",
        env = "WASMGATE_NATS_URL"
    )]
    pub nats_url: String,
    /// Credentials and TLS for --nats-url.
    #[command(flatten)]
    pub nats_auth: NatsAuthArgs,
    /// Number of hosts.
    #[arg(long, default_value_t = 3)]
    pub count: usize,
    /// Heartbeat interval of each host (hosts are spread evenly over it). `0s`: publish as fast
    /// as possible (benchmarks).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub interval: Duration,
    /// Extra host labels, K=V (repeatable, or comma-separated).
    #[arg(long = "labels", value_name = "K=V", value_delimiter = ',')]
    pub labels: Vec<String>,
    /// The `hostgroup` label.
    #[arg(long, default_value = "default")]
    pub hostgroup: String,
    /// The hosts' environment (the pod namespace in-cluster); omitted when unset.
    #[arg(long)]
    pub environment: Option<String>,
    /// Plugin interface sets (repeatable): `wash` (the always-on set of `wash host`),
    /// `postgres` (0.1.1-draft and 0.2.0), `postgres-0.1`, `postgres-0.2`, `otel`, `webgpu`,
    /// `multiplexed`, `none`, or a custom `[export:]ns:pkg[@version]/iface1,iface2[#name]`.
    #[arg(long = "plugins", value_name = "SET", default_values_t = ["wash".to_string()])]
    pub plugins: Vec<String>,
    /// Host names are `<prefix>-<index>`.
    #[arg(long, default_value = "sim-host")]
    pub prefix: String,
    /// Index of the first host.
    #[arg(long, default_value_t = 0)]
    pub first_index: usize,
    /// The hosts' runtime version.
    #[arg(long, default_value = "2.7.0")]
    pub host_version: String,
    /// The hosts' HTTP port.
    #[arg(long, default_value_t = 9191)]
    pub http_port: u32,
    /// Stop after this long.
    #[arg(long, value_parser = parse_duration)]
    pub stop_after: Option<Duration>,
    /// Stop after this many heartbeats per host.
    #[arg(long)]
    pub rounds: Option<u64>,
    /// Publish one heartbeat per host, at once, and exit.
    #[arg(long)]
    pub once: bool,
}

/// What a run published.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SimSummary {
    /// Heartbeats published.
    pub published: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// One interface set: (imports, exports).
pub type PluginSet = (Vec<WitInterface>, Vec<WitInterface>);

fn wit(ns: &str, pkg: &str, version: &str, ifaces: &[&str]) -> WitInterface {
    WitInterface {
        namespace: ns.into(),
        package: pkg.into(),
        version: version.into(),
        interfaces: ifaces.iter().map(|s| s.to_string()).collect(),
        ..WitInterface::default()
    }
}

/// The interfaces of a `--plugins` value (spec/wasmcloud-v2.md 6.2).
pub fn plugin_set(spec: &str) -> Result<PluginSet, SimError> {
    let postgres = |v: &str| wit("wasmcloud", "postgres", v, &["types", "query", "prepared"]);
    Ok(match spec {
        "none" => (vec![], vec![]),
        "wash" => (
            vec![
                wit("wasi", "config", "0.2.0-rc.1", &["store"]),
                wit(
                    "wasmcloud",
                    "secrets",
                    "2.1.0",
                    &["store", "reveal", "secret"],
                ),
                wit("wasi", "logging", "", &["logging"]),
                wit(
                    "wasi",
                    "blobstore",
                    "0.2.0-draft",
                    &["blobstore", "container", "types"],
                ),
                wit("wasmcloud", "messaging", "0.2.0", &["consumer", "types"]),
                wit("wasmcloud", "messaging", "0.3.0", &["consumer", "types"]),
                wit("wasi", "keyvalue", "", &["store", "atomics", "batch"]),
            ],
            vec![
                wit("wasmcloud", "messaging", "0.2.0", &["handler"]),
                wit("wasmcloud", "messaging", "0.3.0", &["handler"]),
            ],
        ),
        "postgres" => (vec![postgres("0.1.1-draft"), postgres("0.2.0")], vec![]),
        "postgres-0.1" => (vec![postgres("0.1.1-draft")], vec![]),
        "postgres-0.2" => (vec![postgres("0.2.0")], vec![]),
        "otel" => (
            vec![wit(
                "wasi",
                "otel",
                "0.2.0-rc.2",
                &["types", "tracing", "metrics", "logs"],
            )],
            vec![],
        ),
        "webgpu" => (vec![], vec![wit("wasi", "webgpu", "", &["webgpu"])]),
        "multiplexed" => (
            vec![
                wit(
                    "wasi",
                    "keyvalue",
                    "0.2.0-draft",
                    &["store", "atomics", "batch"],
                ),
                wit(
                    "wasmcloud",
                    "keyvalue",
                    "0.2.0",
                    &["store", "atomics", "cas", "batch"],
                ),
                wit(
                    "wasmcloud",
                    "blobstore",
                    "0.1.0",
                    &["blobstore", "container", "types"],
                ),
                wit("wasmcloud", "messaging", "0.2.0", &["consumer", "types"]),
                wit("wasmcloud", "messaging", "0.3.0", &["consumer", "types"]),
            ],
            vec![],
        ),
        custom => {
            let one = parse_custom(custom)?;
            if custom.starts_with("export:") {
                (vec![], vec![one])
            } else {
                (vec![one], vec![])
            }
        }
    })
}

/// `[export:]ns:pkg[@version]/iface1,iface2[#name]`.
fn parse_custom(spec: &str) -> Result<WitInterface, SimError> {
    let bad = |why: &'static str| SimError::Plugins {
        spec: spec.to_owned(),
        why,
    };
    let body = spec.strip_prefix("export:").unwrap_or(spec);
    let (body, name) = match body.split_once('#') {
        Some((b, n)) => (b, n),
        None => (body, ""),
    };
    let (package, ifaces) = body.split_once('/').ok_or_else(|| bad("no /interfaces"))?;
    let (package, version) = match package.split_once('@') {
        Some((p, v)) => (p, v),
        None => (package, ""),
    };
    let (ns, pkg) = package
        .split_once(':')
        .ok_or_else(|| bad("no namespace:package"))?;
    let interfaces: Vec<String> = ifaces
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !ident(ns) || !ident(pkg) || interfaces.is_empty() || !interfaces.iter().all(|i| ident(i)) {
        return Err(bad(
            "names must be lowercase WIT identifiers, with at least one interface",
        ));
    }
    if !version.is_empty() && semver::Version::parse(version).is_err() {
        return Err(bad("the version is not semver"));
    }
    Ok(WitInterface {
        namespace: ns.into(),
        package: pkg.into(),
        version: version.into(),
        interfaces,
        name: name.into(),
        ..WitInterface::default()
    })
}

/// A stable UUID-shaped id for host `index` of `prefix` (FNV-1a; the same on every run).
pub fn sim_host_id(prefix: &str, index: usize) -> String {
    let mut bytes = [0u8; 16];
    for (half, chunk) in bytes.chunks_mut(8).enumerate() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ half as u64;
        for b in prefix.bytes().chain([0]).chain(index.to_le_bytes()) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // Mix once more so neighbouring indexes differ in every position.
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        chunk.copy_from_slice(&h.to_be_bytes());
    }
    bytes[6] = 0x40 | (bytes[6] & 0x0f);
    bytes[8] = 0x80 | (bytes[8] & 0x3f);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The simulated hosts, ready to heartbeat.
#[derive(Clone, Debug)]
pub struct SimHosts {
    hosts: Vec<HostHeartbeat>,
    rng: u64,
}

impl SimHosts {
    /// Builds the hosts `args` describe.
    pub fn new(args: &SimHostsArgs) -> Result<Self, SimError> {
        let mut labels = BTreeMap::new();
        labels.insert("hostgroup".to_string(), args.hostgroup.clone());
        for kv in &args.labels {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| SimError::Label(kv.clone()))?;
            labels.insert(k.trim().to_string(), v.trim().to_string());
        }
        let (mut imports, mut exports) = (Vec::new(), Vec::new());
        for spec in &args.plugins {
            let (i, e) = plugin_set(spec)?;
            imports.extend(i);
            exports.extend(e);
        }
        let started = SystemTime::now();
        let hosts = (args.first_index..args.first_index + args.count)
            .map(|i| HostHeartbeat {
                id: sim_host_id(&args.prefix, i),
                hostname: format!("10.244.{}.{}", (i / 250) % 256, i % 250 + 2),
                friendly_name: format!("{}-{i}", args.prefix),
                version: args.host_version.clone(),
                labels: labels.clone(),
                started_at: Some(started),
                os_arch: std::env::consts::ARCH.into(),
                os_name: std::env::consts::OS.into(),
                os_kernel: std::env::consts::FAMILY.into(),
                system_cpu_usage: 0.0,
                system_memory_total: 16 * 1024 * 1024 * 1024,
                system_memory_free: 0,
                component_count: 0,
                workload_count: 0,
                imports: imports.clone(),
                exports: exports.clone(),
                http_port: args.http_port,
                environment: args.environment.clone().unwrap_or_default(),
            })
            .collect();
        Ok(Self {
            hosts,
            rng: 0x9e37_79b9_7f4a_7c15,
        })
    }

    /// The hosts (their latest heartbeat).
    pub fn hosts(&self) -> &[HostHeartbeat] {
        &self.hosts
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The next heartbeat of host `i`: CPU and free memory wander as on a real host.
    pub fn heartbeat(&mut self, i: usize) -> (String, Vec<u8>) {
        let r = self.next_random();
        let hb = &mut self.hosts[i];
        hb.system_cpu_usage = (r % 500) as f64 / 10.0;
        let total = hb.system_memory_total;
        hb.system_memory_free = total / 4 + (r >> 16) % (total / 2);
        (format!("{HEARTBEAT_SUBJECT_PREFIX}{}", hb.id), hb.encode())
    }
}

/// Runs `wasmgate sim-hosts`.
pub async fn run(args: SimHostsArgs) -> Result<SimSummary, SimError> {
    let mut sim = SimHosts::new(&args)?;
    let nats = NatsConnection::new(args.nats_url.clone(), &args.nats_auth)?;
    let client = nats
        .options("wasmgate-sim-hosts")
        .await?
        .connect(nats.url())
        .await
        .map_err(|source| SimError::Connect {
            url: args.nats_url.clone(),
            source,
        })?;
    let rounds = if args.once { Some(1) } else { args.rounds };
    let start = Instant::now();
    let deadline = args.stop_after.map(|d| tokio::time::Instant::now() + d);
    let mut published = 0u64;
    tracing::info!(
        hosts = args.count,
        interval = ?args.interval,
        url = %args.nats_url,
        "publishing heartbeats"
    );
    let n = sim.hosts().len();
    let mut round = 0u64;
    'outer: loop {
        if rounds.is_some_and(|r| round >= r) {
            break;
        }
        let round_start = tokio::time::Instant::now();
        for i in 0..n {
            // Spread the hosts over the interval, as hosts started at different times are.
            if !args.once && !args.interval.is_zero() {
                let at = round_start + args.interval.mul_f64(i as f64 / n as f64);
                if deadline.is_some_and(|d| at >= d) {
                    break 'outer;
                }
                tokio::time::sleep_until(at).await;
            } else if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                break 'outer;
            }
            let (subject, payload) = sim.heartbeat(i);
            client.publish(subject, payload.into()).await?;
            published += 1;
        }
        round += 1;
        client.flush().await?;
        if rounds.is_some_and(|r| round >= r) {
            break;
        }
        if !args.interval.is_zero() {
            let next = round_start + args.interval;
            if deadline.is_some_and(|d| next >= d) {
                tokio::time::sleep_until(deadline.unwrap_or(next)).await;
                break;
            }
            tokio::time::sleep_until(next).await;
        }
    }
    client.flush().await?;
    let summary = SimSummary {
        published,
        elapsed: start.elapsed(),
    };
    tracing::info!(
        published,
        seconds = summary.elapsed.as_secs_f64(),
        "sim-hosts done"
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: SimHostsArgs,
    }

    fn args(extra: &[&str]) -> SimHostsArgs {
        let mut argv = vec!["x"];
        argv.extend_from_slice(extra);
        Wrap::parse_from(argv).args
    }

    #[test]
    fn presets_and_custom_sets() {
        let (i, e) = plugin_set("wash").unwrap();
        assert_eq!(i.len(), 7);
        assert_eq!(e.len(), 2);
        assert!(i
            .iter()
            .any(|w| w.package == "keyvalue" && w.version.is_empty()));
        let (i, _) = plugin_set("postgres-0.2").unwrap();
        assert_eq!(i[0].version, "0.2.0");
        let (i, e) = plugin_set("acme:db@1.2.0/query,types#main").unwrap();
        assert!(e.is_empty());
        assert_eq!(
            (
                i[0].namespace.as_str(),
                i[0].package.as_str(),
                i[0].version.as_str()
            ),
            ("acme", "db", "1.2.0")
        );
        assert_eq!(i[0].interfaces, vec!["query", "types"]);
        assert_eq!(i[0].name, "main");
        let (i, e) = plugin_set("export:acme:cb/handler").unwrap();
        assert!(i.is_empty());
        assert_eq!(e[0].version, "");
        for bad in ["nonsense", "a:b", "a:b/", "A:b/c", "a:b@x.y/c"] {
            assert!(plugin_set(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_look_real() {
        let a = args(&[
            "--count",
            "2",
            "--labels",
            "zone=a,tier=gold",
            "--environment",
            "team-a",
            "--plugins",
            "wash",
            "--plugins",
            "postgres-0.2",
        ]);
        let mut sim = SimHosts::new(&a).unwrap();
        assert_eq!(sim.hosts().len(), 2);
        let (subject, payload) = sim.heartbeat(1);
        let hb = HostHeartbeat::decode(&payload).unwrap();
        assert_eq!(subject, format!("runtime.operator.heartbeat.{}", hb.id));
        assert_eq!(hb.friendly_name, "sim-host-1");
        assert_eq!(hb.labels["hostgroup"], "default");
        assert_eq!(hb.labels["tier"], "gold");
        assert_eq!(hb.environment, "team-a");
        assert_eq!(hb.imports.len(), 8);
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert!(v["systemMemoryTotal"].is_string(), "uint64 as a string");
        assert!(v.get("componentCount").is_none(), "zero omitted");
        assert!(v["startedAt"].as_str().unwrap().ends_with('Z'));
        assert_eq!(sim_host_id("sim-host", 1), hb.id, "stable ids");
        assert_ne!(sim_host_id("sim-host", 0), hb.id);
        assert_eq!(hb.id.len(), 36);
    }
}
