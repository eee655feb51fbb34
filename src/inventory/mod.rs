//! The host inventory: an immutable snapshot the resolver reads, published by whichever source
//! feeds it, behind the same [`InventorySource`]: a static file ([`SharedInventory`], for
//! `check` and dev mode) or live heartbeats ([`LiveInventory`], fed from NATS by [`nats`] and
//! through the `hosts` API).

mod args;
mod file;
pub mod heartbeat;
pub mod jetstream;
pub mod live;
pub mod nats;
mod nats_connect;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::crd::Host;
use crate::resolve::Hosts;

pub use args::{InventoryLog, LiveArgs};
pub use file::{is_host, load_hosts, watch_file, InventoryError, ReplaceHosts};
pub use heartbeat::{HeartbeatError, HostHeartbeat, WitInterface};
pub use jetstream::{
    repair_stream, JetStreamError, JetStreamLog, StreamRepair, StreamSettings, StreamStorage,
};
pub use live::{
    HealthState, HealthTransition, LiveConfig, LiveInventory, LogEntry, LogOutcome, LogPosition,
    ReadyCounts, WatchError, WatchEvent, WatchEventType,
};
pub use nats::IngestStats;
pub use nats_connect::{NatsAuthArgs, NatsConfigError, NatsConnection};

/// One consistent view of every known host.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The hosts, in a stable order (by name), indexed for resolution.
    pub hosts: Hosts,
    /// Increases with every change.
    pub resource_version: u64,
}

/// Anything that can hand out the current inventory snapshot.
pub trait InventorySource: Send + Sync {
    /// The current snapshot; cheap (an `Arc` clone).
    fn snapshot(&self) -> Arc<Snapshot>;
}

/// A snapshot holder that a loader task replaces wholesale.
#[derive(Debug, Default)]
pub struct SharedInventory {
    current: ArcSwap<Snapshot>,
}

impl SharedInventory {
    /// An inventory holding `hosts`.
    pub fn new(hosts: Vec<Host>) -> Self {
        let inv = Self::default();
        inv.replace(hosts);
        inv
    }

    /// Replaces the hosts and bumps the resource version.
    pub fn replace(&self, mut hosts: Vec<Host>) {
        hosts.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let rv = self.current.load().resource_version + 1;
        self.current.store(Arc::new(Snapshot {
            hosts: Hosts::new(hosts),
            resource_version: rv,
        }));
    }
}

impl InventorySource for SharedInventory {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }
}

/// The running live inventory: the store, its ingestion counters and background tasks.
#[derive(Debug)]
pub struct LiveRuntime {
    /// The inventory (also an [`InventorySource`] for admission; the `hosts` API serves it).
    pub inventory: Arc<LiveInventory>,
    /// NATS ingestion counters (all zero without NATS).
    pub stats: Arc<IngestStats>,
    /// The ageing ticker and, with NATS, the ingestion task. Aborting them stops the inventory.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The inventory log, in jetstream mode ([`start_live_jetstream`]).
    pub log: Option<Arc<JetStreamLog>>,
}

impl LiveRuntime {
    /// Stops the background tasks (ageing, ingestion, the log's consumer).
    pub fn stop(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }

    /// Waits until the inventory is worth answering from: with `warmup` (NATS), until the first
    /// connection plus `warmup` (one heartbeat interval: every host has reported once);
    /// without, at once.
    ///
    /// In jetstream mode: until this replica has applied everything the stream held at start
    /// (no fixed wait: the log already holds every host's latest heartbeat).
    pub async fn warm_up(&self, warmup: Option<std::time::Duration>) {
        if let Some(log) = &self.log {
            log.wait_caught_up().await;
            return;
        }
        let Some(warmup) = warmup else { return };
        while self
            .stats
            .connects
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        tokio::time::sleep(warmup).await;
        tracing::info!(
            hosts = self.inventory.len(),
            "live inventory warmed up; ready"
        );
    }
}

/// Starts the live inventory (inside a tokio runtime): the ageing ticker every `tick`, and
/// heartbeat ingestion from `nats` when given (without it, only API writes feed it).
pub fn start_live(
    config: LiveConfig,
    nats: Option<NatsConnection>,
    tick: std::time::Duration,
) -> LiveRuntime {
    let inventory = LiveInventory::new(config);
    let stats = Arc::new(IngestStats::default());
    let mut tasks = vec![nats::spawn_ticker(inventory.clone(), tick)];
    if let Some(connection) = nats {
        tasks.push(nats::spawn_ingest(
            connection,
            inventory.clone(),
            stats.clone(),
        ));
    }
    LiveRuntime {
        inventory,
        stats,
        tasks,
        log: None,
    }
}

/// Starts the live inventory on the JetStream inventory log (`--inventory-log jetstream`):
/// connects, gets or creates the stream (an error names what is missing: JetStream, a
/// permission, a storage that cannot change), replays it, and keeps consuming it. Only the
/// replica whose `leader` is true ages hosts, by publishing health transitions to the log, every
/// `tick`; every replica applies them when it reads them.
pub async fn start_live_jetstream(
    config: LiveConfig,
    nats: NatsConnection,
    settings: StreamSettings,
    leader: tokio::sync::watch::Receiver<bool>,
    tick: std::time::Duration,
) -> Result<LiveRuntime, JetStreamError> {
    let inventory = LiveInventory::new(config);
    let stats = Arc::new(IngestStats::default());
    let (log, tasks) = jetstream::start(
        &nats,
        &settings,
        inventory.clone(),
        stats.clone(),
        leader,
        tick,
    )
    .await?;
    Ok(LiveRuntime {
        inventory,
        stats,
        tasks,
        log: Some(log),
    })
}
