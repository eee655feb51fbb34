//! `wasmgate serve` options of the live inventory.

use std::time::Duration;

use clap::Args;

use super::{
    LiveConfig, NatsAuthArgs, NatsConfigError, NatsConnection, StreamSettings, StreamStorage,
};
use crate::platform::duration::parse_duration;

/// Live inventory options of `wasmgate serve`.
#[derive(Clone, Debug, Args)]
pub struct LiveArgs {
    /// NATS server hosts heartbeat to (e.g. nats://nats.wasmcloud-system:4222): enables the live
    /// inventory from heartbeats (subject runtime.operator.heartbeat.>) for admission and the
    /// `hosts` API. Without it (and without --inventory), only hosts written through the API.
    #[arg(long, env = "WASMGATE_NATS_URL", conflicts_with = "inventory")]
    pub nats_url: Option<String>,
    /// Credentials and TLS for --nats-url.
    #[command(flatten)]
    pub nats_auth: NatsAuthArgs,
    /// A host silent this long is Ready=False (Reporting=False and Ready=Unknown after half of
    /// it). Upstream's UnreachableTimeout.
    #[arg(long, default_value = "60s", value_parser = parse_duration, env = "WASMGATE_HEARTBEAT_TIMEOUT")]
    pub heartbeat_timeout: Duration,
    /// How long a Ready=False host stays listed before it is removed.
    #[arg(long, default_value = "5m", value_parser = parse_duration, env = "WASMGATE_HOST_RETENTION")]
    pub host_retention: Duration,
    /// After start or a NATS reconnect, how long the connection must be up before any host
    /// may turn False [default: --heartbeat-timeout].
    #[arg(long, value_parser = parse_duration, env = "WASMGATE_HEARTBEAT_SETTLE")]
    pub heartbeat_settle: Option<Duration>,
    /// Watch events kept for resuming `kubectl get hosts -w` and informers (older versions get
    /// 410 Gone and relist).
    #[arg(long, default_value_t = 10_000, env = "WASMGATE_WATCH_HISTORY")]
    pub watch_history: usize,
    /// With --nats-url: report not ready (/readyz) until NATS is connected and this long has
    /// passed, so the inventory has heard every host once (hosts heartbeat every 15 s).
    #[arg(long, default_value = "16s", value_parser = parse_duration, env = "WASMGATE_INVENTORY_WARMUP")]
    pub inventory_warmup: Duration,
    /// Where the inventory's changes are ordered: `memory` (each replica on its own: for one
    /// replica) or `jetstream` (a NATS JetStream stream on --nats-url: every replica applies the
    /// same log, so hosts, resourceVersions and watches are the same on each).
    #[arg(
        long,
        value_enum,
        default_value_t = InventoryLog::Memory,
        env = "WASMGATE_INVENTORY_LOG",
        requires_if("jetstream", "nats_url")
    )]
    pub inventory_log: InventoryLog,
    /// With --inventory-log jetstream: the stream's name (created or updated at start).
    #[arg(
        long,
        default_value = "WASMGATE_INVENTORY",
        env = "WASMGATE_INVENTORY_STREAM"
    )]
    pub inventory_stream: String,
    /// With --inventory-log jetstream: the stream's storage (`file` survives a nats-server
    /// restart).
    #[arg(
        long,
        value_enum,
        default_value_t = StreamStorage::File,
        env = "WASMGATE_INVENTORY_STREAM_STORAGE"
    )]
    pub inventory_stream_storage: StreamStorage,
    /// With --inventory-log jetstream: the stream's replicas (JetStream cluster peers).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=5), env = "WASMGATE_INVENTORY_STREAM_REPLICAS")]
    pub inventory_stream_replicas: u16,
}

/// `--inventory-log`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InventoryLog {
    /// In this process only (one replica).
    Memory,
    /// A NATS JetStream stream shared by every replica.
    Jetstream,
}

impl LiveArgs {
    /// The checked NATS connection, when --nats-url is given.
    pub fn nats(&self) -> Result<Option<NatsConnection>, NatsConfigError> {
        self.nats_url
            .as_ref()
            .map(|url| NatsConnection::new(url.clone(), &self.nats_auth))
            .transpose()
    }

    /// The stream settings of --inventory-log jetstream.
    pub fn stream(&self) -> StreamSettings {
        StreamSettings {
            name: self.inventory_stream.clone(),
            storage: self.inventory_stream_storage,
            replicas: usize::from(self.inventory_stream_replicas),
        }
    }

    /// The inventory configuration these options describe.
    pub fn config(&self) -> LiveConfig {
        LiveConfig {
            heartbeat_timeout: self.heartbeat_timeout,
            retention: self.host_retention,
            settle: self.heartbeat_settle.unwrap_or(self.heartbeat_timeout),
            history: self.watch_history,
        }
    }
}
