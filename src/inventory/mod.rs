//! The host inventory: an immutable snapshot the resolver reads, published by whichever source
//! feeds it (a static file here; live heartbeats later, behind the same [`InventorySource`]).

mod file;

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::crd::Host;

pub use file::{load_hosts, watch_file, InventoryError};

/// One consistent view of every known host.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// The hosts, in a stable order (by name).
    pub hosts: Vec<Host>,
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
            hosts,
            resource_version: rv,
        }));
    }
}

impl InventorySource for SharedInventory {
    fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }
}
