//! The host inventory: an immutable snapshot the resolver reads, published by whichever source
//! feeds it, behind the same [`InventorySource`]: a static file ([`SharedInventory`], for
//! `check` and dev mode) or live heartbeats ([`LiveInventory`], fed from NATS by [`nats`] and
//! through the `hosts` API).

mod args;
mod file;
pub mod heartbeat;
pub mod live;
pub mod nats;
mod nats_connect;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::crd::Host;
use crate::resolve::Hosts;

pub use args::LiveArgs;
pub use file::{is_host, load_hosts, watch_file, InventoryError, ReplaceHosts};
pub use heartbeat::{HeartbeatError, HostHeartbeat, WitInterface};
pub use live::{LiveConfig, LiveInventory, ReadyCounts, WatchError, WatchEvent, WatchEventType};
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
}

impl LiveRuntime {
    /// Waits until the inventory is worth answering from: with `warmup` (NATS), until the first
    /// connection plus `warmup` (one heartbeat interval: every host has reported once);
    /// without, at once.
    pub async fn warm_up(&self, warmup: Option<std::time::Duration>) {
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
    }
}
