//! Heartbeat ingestion from NATS: subscribes to `runtime.operator.heartbeat.>` (as the upstream
//! operator does; every wasmgate replica subscribes, so each holds the full inventory) and
//! applies each heartbeat to the [`LiveInventory`]. Reconnects forever; each (re)connect starts
//! the inventory's settle window, each disconnect holds hosts at Unknown (upstream PR 5502).
//! Payloads that do not decode are counted and logged, never fatal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::live::LiveInventory;
use super::nats_connect::NatsConnection;

// The subjects belong to the heartbeat format (heartbeat.rs reads the host id from them);
// re-exported here where ingestion and `sim-hosts` have always found them.
pub use super::heartbeat::{HEARTBEAT_SUBJECT, HEARTBEAT_SUBJECT_PREFIX};

/// Counters of the ingestion (for logs, metrics and tests).
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Messages received on the heartbeat subject.
    pub received: AtomicU64,
    /// Heartbeats applied to the inventory.
    pub applied: AtomicU64,
    /// Messages that were not valid heartbeats.
    pub rejected: AtomicU64,
    /// Connections established (the first one included).
    pub connects: AtomicU64,
    /// Connections lost.
    pub disconnects: AtomicU64,
    /// Unix milliseconds since when the connection is down; 0 while connected (and before the
    /// first connection, which the warm-up waits for).
    down_since_ms: AtomicU64,
}

impl IngestStats {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Whether NATS is connected now.
    pub fn connected(&self) -> bool {
        Self::get(&self.connects) > 0 && Self::get(&self.down_since_ms) == 0
    }

    /// How long the connection has been down at `now` (`None` while connected or before the
    /// first connection).
    pub fn down_for(&self, now: SystemTime) -> Option<Duration> {
        let since = Self::get(&self.down_since_ms);
        (since != 0).then(|| {
            let now_ms = unix_ms(now);
            Duration::from_millis(now_ms.saturating_sub(since))
        })
    }

    /// The connection is up (again).
    pub(crate) fn mark_up(&self) {
        self.down_since_ms.store(0, Ordering::Relaxed);
    }

    /// The connection was lost at `now`.
    pub(crate) fn mark_down(&self, now: SystemTime) {
        // The first loss counts; a later report of the same outage keeps it.
        let _ = self.down_since_ms.compare_exchange(
            0,
            unix_ms(now).max(1),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// (received, applied, rejected).
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            Self::get(&self.received),
            Self::get(&self.applied),
            Self::get(&self.rejected),
        )
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Handles one message; `false` when it was rejected.
pub fn ingest(
    inventory: &LiveInventory,
    stats: &IngestStats,
    subject: &str,
    payload: &[u8],
) -> bool {
    stats.received.fetch_add(1, Ordering::Relaxed);
    match inventory.decode_heartbeat(subject, payload) {
        Ok(hb) => {
            inventory.apply_stored_heartbeat(hb, SystemTime::now());
            stats.applied.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(error) => {
            let n = stats.rejected.fetch_add(1, Ordering::Relaxed) + 1;
            // Loud for the first few, then sampled: a broken publisher must not flood the log.
            if n <= 10 || n.is_multiple_of(1000) {
                tracing::warn!(%subject, %error, rejected = n, "ignoring malformed heartbeat");
            } else {
                tracing::debug!(%subject, %error, "ignoring malformed heartbeat");
            }
            false
        }
    }
}

/// Subscribes to heartbeats on `nats` and feeds `inventory` until the task is aborted. Never
/// returns an error: connection problems are retried forever (and logged).
pub fn spawn_ingest(
    nats: NatsConnection,
    inventory: Arc<LiveInventory>,
    stats: Arc<IngestStats>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = run_ingest(&nats, &inventory, &stats).await {
                tracing::error!(url = nats.url(), error = %e, "NATS heartbeat ingestion failed; retrying in 5s");
            }
            if stats.connects.load(Ordering::Relaxed) > 0 {
                stats.mark_down(SystemTime::now());
            }
            inventory.mark_disconnected(SystemTime::now());
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    })
}

async fn run_ingest(
    nats: &NatsConnection,
    inventory: &Arc<LiveInventory>,
    stats: &Arc<IngestStats>,
) -> anyhow::Result<()> {
    let events_inventory = inventory.clone();
    let events_stats = stats.clone();
    let url = nats.url();
    let client = nats
        .options("wasmgate")
        .await?
        .retry_on_initial_connect()
        .event_callback(move |event| {
            let inventory = events_inventory.clone();
            let stats = events_stats.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        stats.mark_up();
                        let n = stats.connects.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::info!(connects = n, "NATS connected; heartbeat settle window starts");
                        inventory.mark_connected(SystemTime::now());
                    }
                    async_nats::Event::Disconnected => {
                        stats.disconnects.fetch_add(1, Ordering::Relaxed);
                        stats.mark_down(SystemTime::now());
                        tracing::warn!("NATS disconnected; silent hosts stay Unknown until reconnected and settled");
                        inventory.mark_disconnected(SystemTime::now());
                    }
                    other => tracing::info!(event = %other, "NATS event"),
                }
            }
        })
        .connect(url)
        .await?;
    let mut subscriber = client.subscribe(HEARTBEAT_SUBJECT).await?;
    tracing::info!(%url, subject = HEARTBEAT_SUBJECT, "subscribed to host heartbeats");
    while let Some(message) = subscriber.next().await {
        ingest(inventory, stats, message.subject.as_str(), &message.payload);
    }
    anyhow::bail!("heartbeat subscription closed")
}

/// Calls [`LiveInventory::tick`] every `period` until aborted.
pub fn spawn_ticker(inventory: Arc<LiveInventory>, period: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            inventory.tick(SystemTime::now());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::LiveConfig;

    #[test]
    fn ingest_counts_and_never_panics() {
        let inv = LiveInventory::new(LiveConfig::default());
        let stats = IngestStats::default();
        assert!(ingest(
            &inv,
            &stats,
            "runtime.operator.heartbeat.abc",
            br#"{"friendlyName":"h-1"}"#
        ));
        assert_eq!(inv.get("h-1").unwrap().host_id, "abc");
        for bad in [
            &b"\xff\xfe"[..],
            b"{",
            b"null",
            br#"{"id":""}"#,
            br#"{"systemMemoryFree":true}"#,
        ] {
            assert!(!ingest(&inv, &stats, "runtime.operator.heartbeat.", bad));
        }
        assert_eq!(stats.counts(), (6, 1, 5));
        assert_eq!(inv.len(), 1);
    }
}
