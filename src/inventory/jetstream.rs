//! The inventory log on NATS JetStream (`--inventory-log jetstream`): one sequence of changes
//! for every replica.
//!
//! wasmCloud's own NATS runs with JetStream enabled (upstream's runtime-operator chart,
//! `charts/runtime-operator/templates/nats/config.yaml`), so the log needs no new service. A
//! stream (`--inventory-stream`, default `WASMGATE_INVENTORY`) captures
//!
//! - the hosts' heartbeats, `runtime.operator.heartbeat.<id>` (published by the hosts, as
//!   today; the stream keeps the latest per host: `max_messages_per_subject = 1`),
//! - `wasmgate.inventory.write.<name>`: a Host written through the API (its full JSON),
//! - `wasmgate.inventory.delete.<name>`: a Host deleted through the API,
//! - `wasmgate.inventory.health.<name>`: a health transition only time causes (Unknown, False,
//!   removed), decided by the leader ([`LiveInventory::due_transitions`]).
//!
//! Every replica reads the whole stream in order (an ordered consumer from the first message)
//! and applies each message to its [`LiveInventory`] with [`LiveInventory::apply_logged`]: the
//! change's resourceVersion is the message's stream sequence and its time is the message's
//! JetStream timestamp, so every replica holds the same hosts at the same resourceVersions and
//! lists, watches and `continue` tokens mean the same on each. Followers never age hosts on
//! their own; API writes are published and answered once this replica has applied them.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::heartbeat::{HEARTBEAT_SUBJECT, HEARTBEAT_SUBJECT_PREFIX};
use super::live::{HealthTransition, LiveInventory, LogEntry, LogPosition};
use super::nats::IngestStats;
use super::nats_connect::NatsConnection;
use crate::crd::Host;

/// The subjects of wasmgate's own entries in the stream.
pub const INVENTORY_SUBJECT: &str = "wasmgate.inventory.>";
/// Prefix of a Host written through the API (`wasmgate.inventory.write.<name>`).
pub const WRITE_PREFIX: &str = "wasmgate.inventory.write.";
/// Prefix of a Host deleted through the API.
pub const DELETE_PREFIX: &str = "wasmgate.inventory.delete.";
/// Prefix of a health transition published by the leader.
pub const HEALTH_PREFIX: &str = "wasmgate.inventory.health.";

/// How long an API write waits for this replica to apply it before answering 504.
pub const WRITE_WAIT: Duration = Duration::from_secs(5);

/// How long the leader waits before publishing the same transition again (when the first one
/// was not applied, e.g. lost with a NATS outage).
const REPROPOSE_AFTER: Duration = Duration::from_secs(30);

/// Where the stream keeps its messages (`--inventory-stream-storage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StreamStorage {
    /// On disk: survives a nats-server restart.
    File,
    /// In memory: lost with the nats-server.
    Memory,
}

/// The stream's settings (from `--inventory-stream*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// The stream's name.
    pub name: String,
    /// Its storage.
    pub storage: StreamStorage,
    /// Its replicas (JetStream cluster peers holding it).
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            name: "WASMGATE_INVENTORY".into(),
            storage: StreamStorage::File,
            replicas: 1,
        }
    }
}

impl StreamSettings {
    /// The stream configuration wasmgate wants.
    pub fn config(&self) -> stream::Config {
        stream::Config {
            name: self.name.clone(),
            description: Some("wasmgate host inventory: heartbeats, API writes, health".into()),
            subjects: vec![HEARTBEAT_SUBJECT.into(), INVENTORY_SUBJECT.into()],
            // The latest message per host (per subject) is what matters.
            max_messages_per_subject: 1,
            storage: match self.storage {
                StreamStorage::File => stream::StorageType::File,
                StreamStorage::Memory => stream::StorageType::Memory,
            },
            num_replicas: self.replicas.max(1),
            ..stream::Config::default()
        }
    }
}

/// Why the inventory log could not start (start fails with it).
#[derive(Debug, thiserror::Error)]
pub enum JetStreamError {
    /// No NATS connection.
    #[error("--inventory-log jetstream: cannot connect to NATS at {url}: {message}")]
    Connect {
        /// The server.
        url: String,
        /// Why.
        message: String,
    },
    /// The server (or the account) has no JetStream.
    #[error(
        "--inventory-log jetstream: JetStream is not enabled on the NATS server at {url} (or not \
         for this account): {detail}. Enable it (nats-server -js, or a `jetstream {{}}` block; \
         wasmCloud's runtime-operator chart enables it) or use --inventory-log memory (one replica)"
    )]
    NotEnabled {
        /// The server.
        url: String,
        /// The server's answer.
        detail: String,
    },
    /// The user may not use the JetStream API for the stream.
    #[error(
        "--inventory-log jetstream: the NATS user may not use stream {stream}: {detail}. It needs \
         publish on $JS.API.STREAM.INFO.{stream}, $JS.API.STREAM.CREATE.{stream}, \
         $JS.API.STREAM.UPDATE.{stream}, $JS.API.STREAM.PURGE.{stream} (to repair a stream \
         recreated under it), $JS.API.CONSUMER.> and wasmgate.inventory.>, and subscribe on \
         _INBOX.>"
    )]
    Permission {
        /// The stream.
        stream: String,
        /// The server's answer.
        detail: String,
    },
    /// The stream exists with a storage type that cannot be changed.
    #[error(
        "--inventory-log jetstream: stream {stream} exists with {existing:?} storage, not the \
         {wanted:?} of --inventory-stream-storage; JetStream cannot change it: remove the stream \
         or change the flag"
    )]
    Storage {
        /// The stream.
        stream: String,
        /// Its storage.
        existing: stream::StorageType,
        /// The flag's.
        wanted: stream::StorageType,
    },
    /// Any other JetStream error about the stream.
    #[error("--inventory-log jetstream: stream {stream}: {detail}")]
    Stream {
        /// The stream.
        stream: String,
        /// What failed.
        detail: String,
    },
}

/// Why an API write could not be published.
#[derive(Clone, Debug, thiserror::Error)]
#[error("cannot publish to the inventory stream: {0}")]
pub struct PublishError(String);

/// What kind of entry wasmgate publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A Host written through the API.
    Write,
    /// A Host deleted through the API.
    Delete,
    /// A health transition.
    Health,
}

impl EntryKind {
    fn subject(self, name: &str) -> String {
        let prefix = match self {
            Self::Write => WRITE_PREFIX,
            Self::Delete => DELETE_PREFIX,
            Self::Health => HEALTH_PREFIX,
        };
        format!("{prefix}{name}")
    }
}

/// A publish in flight: the stream sequence once JetStream acknowledged it.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<u64, PublishError>> + Send + 'a>>;

/// Publishes wasmgate's entries to the inventory log (what [`LiveInventory::write`] and
/// [`LiveInventory::remove`] use in log mode).
pub trait LogPublisher: Send + Sync + std::fmt::Debug {
    /// Publishes one entry about host `name` and waits for JetStream's acknowledgement.
    fn publish(&self, kind: EntryKind, name: &str, payload: Vec<u8>) -> PublishFuture<'_>;
}

/// The JetStream publisher.
#[derive(Clone, Debug)]
pub struct JetStreamPublisher {
    context: jetstream::Context,
}

impl LogPublisher for JetStreamPublisher {
    fn publish(&self, kind: EntryKind, name: &str, payload: Vec<u8>) -> PublishFuture<'_> {
        let subject = kind.subject(name);
        Box::pin(async move {
            let ack = self
                .context
                .publish(subject, payload.into())
                .await
                .map_err(|e| PublishError(e.to_string()))?
                .await
                .map_err(|e| PublishError(e.to_string()))?;
            Ok(ack.sequence)
        })
    }
}

/// The state of this replica's consumer.
#[derive(Debug, Default)]
pub struct LogState {
    /// The stream's last sequence when this replica started: ready once applied.
    pub start_sequence: AtomicU64,
    /// Whether this replica has applied everything the stream held at start.
    pub caught_up: AtomicBool,
    /// Entries that were not valid (counted, skipped).
    pub skipped: AtomicU64,
    /// Times this replica found the stream removed or restarted and repaired it
    /// ([`guard_stream`]).
    pub repairs: AtomicU64,
}

/// The running inventory log of one replica.
#[derive(Debug)]
pub struct JetStreamLog {
    /// The stream's name.
    pub stream: String,
    /// The consumer's progress.
    pub state: Arc<LogState>,
    /// The publisher (API writes, health transitions).
    pub publisher: Arc<JetStreamPublisher>,
    caught_up: watch::Sender<bool>,
    /// Restarts this replica's consumer after the last applied entry ([`guard_stream`] found the
    /// stream recreated: a consumer of the old one may wait for it forever).
    restart: tokio::sync::Notify,
}

impl JetStreamLog {
    /// Waits until this replica has applied everything the stream held at its start.
    pub async fn wait_caught_up(&self) {
        let mut rx = self.caught_up.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Whether this replica has caught up.
    pub fn is_caught_up(&self) -> bool {
        *self.caught_up.borrow()
    }
}

fn classify(url: &str, stream: &str, detail: String) -> JetStreamError {
    let lower = detail.to_ascii_lowercase();
    // Without JetStream nobody answers the API's requests: async-nats reports no responders
    // as "requested JetStream resource does not exist".
    if lower.contains("no responders")
        || lower.contains("does not exist")
        || lower.contains("not enabled")
        || lower.contains("10076")
        || lower.contains("10039")
    {
        JetStreamError::NotEnabled {
            url: url.to_string(),
            detail,
        }
    } else if lower.contains("permission") || lower.contains("authorization") {
        JetStreamError::Permission {
            stream: stream.to_string(),
            detail,
        }
    } else if lower.contains("timed out") || lower.contains("timeout") {
        // A request nobody answers in time: a denied publish is dropped silently by the server.
        JetStreamError::Permission {
            stream: stream.to_string(),
            detail: format!("{detail} (no answer: JetStream off, or the request was not allowed)"),
        }
    } else {
        JetStreamError::Stream {
            stream: stream.to_string(),
            detail,
        }
    }
}

/// Whether JetStream answered that the stream does not exist.
fn stream_not_found(e: &async_nats::jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), async_nats::jetstream::context::GetStreamErrorKind::JetStream(ref j)
        if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// Gets the stream, creating it when absent and updating it when its settings differ (and
/// JetStream allows the change). Returns its state (messages, last sequence).
pub async fn ensure_stream(
    context: &jetstream::Context,
    url: &str,
    settings: &StreamSettings,
) -> Result<stream::State, JetStreamError> {
    let wanted = settings.config();
    let name = settings.name.as_str();
    match context.get_stream(name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|e| classify(url, name, e.to_string()))?
                .clone();
            let have = &info.config;
            if have.storage != wanted.storage {
                return Err(JetStreamError::Storage {
                    stream: name.to_string(),
                    existing: have.storage,
                    wanted: wanted.storage,
                });
            }
            let mut subjects = have.subjects.clone();
            for s in &wanted.subjects {
                if !subjects.contains(s) {
                    subjects.push(s.clone());
                }
            }
            if subjects != have.subjects
                || have.max_messages_per_subject != wanted.max_messages_per_subject
                || have.num_replicas != wanted.num_replicas
            {
                let mut update = have.clone();
                update.subjects = subjects;
                update.max_messages_per_subject = wanted.max_messages_per_subject;
                update.num_replicas = wanted.num_replicas;
                let updated = context
                    .update_stream(&update)
                    .await
                    .map_err(|e| classify(url, name, e.to_string()))?;
                tracing::info!(
                    stream = name,
                    "inventory stream updated to wasmgate's settings"
                );
                return Ok(updated.state);
            }
            Ok(info.state)
        }
        Err(e) if stream_not_found(&e) => {
            let mut created = context
                .create_stream(wanted)
                .await
                .map_err(|e| classify(url, name, e.to_string()))?;
            tracing::info!(stream = name, "inventory stream created");
            let info = created
                .info()
                .await
                .map_err(|e| classify(url, name, e.to_string()))?;
            Ok(info.state.clone())
        }
        Err(e) => Err(classify(url, name, format!("{e} ({:?})", e.kind()))),
    }
}

/// Decodes one stream message into a log entry for `inventory` (a heartbeat's interface lists
/// shared with the hosts it stores); an error when it is not a valid entry (it is still
/// consumed, as [`LogEntry::Skip`]).
pub fn decode_entry(
    inventory: &LiveInventory,
    subject: &str,
    payload: &[u8],
) -> Result<LogEntry, String> {
    if subject.starts_with(HEARTBEAT_SUBJECT_PREFIX) {
        return inventory
            .decode_heartbeat(subject, payload)
            .map(|hb| LogEntry::Heartbeat(Box::new(hb)))
            .map_err(|e| e.to_string());
    }
    if let Some(name) = subject.strip_prefix(WRITE_PREFIX) {
        let host: Host = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        if host.metadata.name.as_deref() != Some(name) {
            return Err(format!(
                "the Host's name {:?} is not the subject's {name:?}",
                host.metadata.name
            ));
        }
        return Ok(LogEntry::Write(Box::new(host)));
    }
    if let Some(name) = subject.strip_prefix(DELETE_PREFIX) {
        return Ok(LogEntry::Delete {
            name: name.to_string(),
        });
    }
    if let Some(name) = subject.strip_prefix(HEALTH_PREFIX) {
        let transition: HealthTransition =
            serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        return Ok(LogEntry::Health {
            name: name.to_string(),
            transition,
        });
    }
    Err(format!("not an inventory subject: {subject}"))
}

/// Connects to NATS, gets or creates the stream (failing with what is missing), and starts
/// this replica's consumer and, on the leader, the ageing that publishes health transitions.
pub async fn start(
    nats: &NatsConnection,
    settings: &StreamSettings,
    inventory: Arc<LiveInventory>,
    stats: Arc<IngestStats>,
    leader: watch::Receiver<bool>,
    tick: Duration,
) -> Result<(Arc<JetStreamLog>, Vec<JoinHandle<()>>), JetStreamError> {
    let url = nats.url().to_string();
    let connect_error = |message: String| JetStreamError::Connect {
        url: url.clone(),
        message,
    };
    // Weak: the client lives as long as the publisher the inventory holds, so a strong
    // reference here would keep both alive forever.
    let events_inventory = Arc::downgrade(&inventory);
    let events_stats = stats.clone();
    let client = nats
        .options("wasmgate")
        .await
        .map_err(|e| connect_error(e.to_string()))?
        .event_callback(move |event| {
            let inventory = events_inventory.upgrade();
            let stats = events_stats.clone();
            async move {
                let Some(inventory) = inventory else { return };
                match event {
                    async_nats::Event::Connected => {
                        stats.mark_up();
                        let n = stats.connects.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::info!(connects = n, "NATS connected (inventory log)");
                        inventory.mark_connected(SystemTime::now());
                    }
                    async_nats::Event::Disconnected => {
                        stats.disconnects.fetch_add(1, Ordering::Relaxed);
                        stats.mark_down(SystemTime::now());
                        tracing::warn!("NATS disconnected; the inventory log waits");
                        inventory.mark_disconnected(SystemTime::now());
                    }
                    other => tracing::info!(event = %other, "NATS event"),
                }
            }
        })
        .connect(url.as_str())
        .await
        .map_err(|e| connect_error(e.to_string()))?;
    // The initial connection is not reported through the callback.
    stats.mark_up();
    stats.connects.fetch_add(1, Ordering::Relaxed);
    inventory.mark_connected(SystemTime::now());
    let context = jetstream::new(client);
    let stream_state = ensure_stream(&context, &url, settings).await?;
    // An empty stream (new, or purged) has nothing to replay.
    let last = if stream_state.messages == 0 {
        0
    } else {
        stream_state.last_sequence
    };
    let state = Arc::new(LogState::default());
    state.start_sequence.store(last, Ordering::Relaxed);
    let (caught_up, _) = watch::channel(last == 0);
    state.caught_up.store(last == 0, Ordering::Relaxed);
    let publisher = Arc::new(JetStreamPublisher {
        context: context.clone(),
    });
    let log = Arc::new(JetStreamLog {
        stream: settings.name.clone(),
        state: state.clone(),
        publisher: publisher.clone(),
        caught_up,
        restart: tokio::sync::Notify::new(),
    });
    inventory.attach_log(publisher.clone());
    tracing::info!(
        stream = %settings.name,
        last_sequence = last,
        "inventory log on JetStream: replaying the stream"
    );
    let consume = tokio::spawn(consume(
        context.clone(),
        settings.name.clone(),
        inventory.clone(),
        stats,
        log.clone(),
    ));
    let guard = tokio::spawn(guard_stream(
        context,
        url,
        settings.clone(),
        inventory.clone(),
        log.clone(),
    ));
    let age = tokio::spawn(age(inventory, log.clone(), leader, tick));
    Ok((log, vec![consume, guard, age]))
}

/// Reads the stream in order forever (re-creating the consumer after the last applied entry
/// when it fails) and applies every entry.
async fn consume(
    context: jetstream::Context,
    stream: String,
    inventory: Arc<LiveInventory>,
    stats: Arc<IngestStats>,
    log: Arc<JetStreamLog>,
) {
    loop {
        tokio::select! {
            consumed = consume_once(&context, &stream, &inventory, &stats, &log) => {
                if let Err(e) = consumed {
                    tracing::error!(%stream, error = %e, "inventory log consumer failed; resuming in 1s");
                }
            }
            () = log.restart.notified() => {
                tracing::warn!(%stream, "the inventory stream was recreated: resuming after the last applied entry");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn consume_once(
    context: &jetstream::Context,
    stream: &str,
    inventory: &LiveInventory,
    stats: &IngestStats,
    log: &JetStreamLog,
) -> Result<(), String> {
    let stream_handle = context
        .get_stream(stream)
        .await
        .map_err(|e| e.to_string())?;
    let applied = inventory.applied_sequence();
    let deliver_policy = if applied == 0 {
        consumer::DeliverPolicy::All
    } else {
        consumer::DeliverPolicy::ByStartSequence {
            start_sequence: applied + 1,
        }
    };
    let consumer = stream_handle
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| e.to_string())?;
        let (seq, time, pending) = match message.info() {
            Ok(info) => (
                info.stream_sequence,
                SystemTime::from(info.published),
                info.pending,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "inventory log message without JetStream metadata");
                continue;
            }
        };
        let subject = message.subject.as_str();
        let is_heartbeat = subject.starts_with(HEARTBEAT_SUBJECT_PREFIX);
        if is_heartbeat {
            stats.received.fetch_add(1, Ordering::Relaxed);
        }
        let entry = match decode_entry(inventory, subject, &message.payload) {
            Ok(entry) => {
                if is_heartbeat {
                    stats.applied.fetch_add(1, Ordering::Relaxed);
                }
                entry
            }
            Err(error) => {
                if is_heartbeat {
                    stats.rejected.fetch_add(1, Ordering::Relaxed);
                }
                let n = log.state.skipped.fetch_add(1, Ordering::Relaxed) + 1;
                if n <= 10 || n.is_multiple_of(1000) {
                    tracing::warn!(%subject, seq, %error, "skipping invalid inventory log entry");
                }
                LogEntry::Skip
            }
        };
        if let Err(e) = inventory.apply_logged(LogPosition { seq, time }, entry) {
            tracing::error!(seq, error = %e, "inventory log entry out of order; skipped");
        }
        // Caught up once the stream's last sequence at start is applied, or once nothing is
        // pending (the message at that sequence may have been removed since: a purge).
        if !log.is_caught_up()
            && (inventory.applied_sequence() >= log.state.start_sequence.load(Ordering::Relaxed)
                || pending == 0)
        {
            log.state.caught_up.store(true, Ordering::Relaxed);
            log.caught_up.send_replace(true);
            tracing::info!(
                %stream,
                seq,
                hosts = inventory.len(),
                "inventory log replayed; ready"
            );
        }
    }
    Err("the ordered consumer ended".into())
}

/// How often each replica checks that the stream is still there and still ahead of it.
const GUARD_PERIOD: Duration = Duration::from_secs(2);

/// What [`repair_stream`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamRepair {
    /// The stream was gone (removed, or lost with a nats-server using memory storage); it was
    /// created again, numbering from `first` on.
    Recreated {
        /// The first sequence of the new stream.
        first: u64,
    },
    /// The stream's last sequence (`last`) was behind what this replica applied (it was
    /// removed and created again by someone else); its numbering now goes on from `first`.
    Advanced {
        /// The stream's last sequence found.
        last: u64,
        /// The sequence its next message gets.
        first: u64,
    },
}

/// Checks the stream against what this replica has applied (`applied`) and repairs it:
/// recreates it when it is gone, and moves its numbering past `applied` when it restarted
/// lower. Host resourceVersions are stream sequences, so a stream that numbers from 1 again
/// would send every replica's versions backwards (and their consumers, which resume after
/// `applied`, would wait for sequences that mean something else).
///
/// The next sequence is set by purging up to it, which on an empty (or shorter) stream moves
/// its first sequence there (nats-server 2.9 and later; the stream config's `first_seq` needs
/// 2.10, and async-nats' `server_2_10` feature changes what consumers send to older servers).
/// Messages the new stream took before the purge are heartbeats that come again within one
/// interval.
pub async fn repair_stream(
    context: &jetstream::Context,
    url: &str,
    settings: &StreamSettings,
    applied: u64,
) -> Result<Option<StreamRepair>, JetStreamError> {
    repair_stream_created(context, url, settings, applied)
        .await
        .map(|(repair, _)| repair)
}

/// [`repair_stream`], and when the stream (as found or created) was created.
async fn repair_stream_created(
    context: &jetstream::Context,
    url: &str,
    settings: &StreamSettings,
    applied: u64,
) -> Result<(Option<StreamRepair>, time::OffsetDateTime), JetStreamError> {
    use async_nats::jetstream::context::CreateStreamErrorKind;
    use async_nats::jetstream::ErrorCode;

    let name = settings.name.as_str();
    let next = applied + 1;
    let fail = |e: &dyn std::fmt::Display| classify(url, name, e.to_string());
    let (stream, recreated) = match context.get_stream(name).await {
        Ok(stream) => (stream, false),
        Err(e) if stream_not_found(&e) => {
            match context.create_stream(settings.config()).await {
                Ok(stream) => (stream, true),
                // Another replica created it first (with its own first sequence): check that one.
                Err(e)
                    if matches!(e.kind(), CreateStreamErrorKind::JetStream(ref j)
                        if j.error_code() == ErrorCode::STREAM_NAME_EXIST) =>
                {
                    (context.get_stream(name).await.map_err(|e| fail(&e))?, false)
                }
                Err(e) => return Err(fail(&e)),
            }
        }
        Err(e) => return Err(fail(&e)),
    };
    let last = stream.cached_info().state.last_sequence;
    let created = stream.cached_info().created;
    // `applied` was read before the stream's state, so a stream that only grew is never behind.
    if applied == 0 || last >= applied {
        return Ok((
            recreated.then_some(StreamRepair::Recreated { first: last + 1 }),
            created,
        ));
    }
    stream.purge().sequence(next).await.map_err(|e| fail(&e))?;
    Ok((
        Some(if recreated {
            StreamRepair::Recreated { first: next }
        } else {
            StreamRepair::Advanced { last, first: next }
        }),
        created,
    ))
}

/// Every [`GUARD_PERIOD`], [`repair_stream`] on this replica's view, reporting each repair.
async fn guard_stream(
    context: jetstream::Context,
    url: String,
    settings: StreamSettings,
    inventory: Arc<LiveInventory>,
    log: Arc<JetStreamLog>,
) {
    let mut interval = tokio::time::interval(GUARD_PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut failing = false;
    // When the stream this replica consumes was created: another one (recreated by any
    // replica, or outside wasmgate) restarts the consumer, which may otherwise wait on the old.
    let mut consumed_created = None;
    loop {
        interval.tick().await;
        let applied = inventory.applied_sequence();
        let checked = repair_stream_created(&context, &url, &settings, applied).await;
        if let Ok((_, created)) = &checked {
            if consumed_created.is_some_and(|c| c != *created) {
                log.restart.notify_one();
            }
            consumed_created = Some(*created);
        }
        match checked.map(|(repair, _)| repair) {
            Ok(None) => failing = false,
            Ok(Some(repair)) => {
                failing = false;
                log.state.repairs.fetch_add(1, Ordering::Relaxed);
                match repair {
                    StreamRepair::Recreated { first } => tracing::error!(
                        stream = %settings.name,
                        applied,
                        first,
                        "the inventory stream was gone (removed, or lost with a nats-server on \
                         memory storage); recreated it, numbering on from {first}: hosts come \
                         back with their next heartbeat, API writes since the last applied \
                         entry are lost"
                    ),
                    StreamRepair::Advanced { last, first } => tracing::error!(
                        stream = %settings.name,
                        applied,
                        last,
                        first,
                        "the inventory stream restarted its numbering (last sequence {last}, \
                         behind the {applied} applied here): it was recreated outside wasmgate; \
                         moved its numbering on to {first} so resourceVersions keep increasing"
                    ),
                }
            }
            // NATS down is reported by the connection; say it once per outage.
            Err(e) => {
                if !failing {
                    tracing::warn!(stream = %settings.name, error = %e, "cannot check the inventory stream");
                }
                failing = true;
            }
        }
    }
}

/// On the leader (and once caught up), publishes the health transitions that silence causes;
/// every replica applies them from the log. Followers do nothing here.
async fn age(
    inventory: Arc<LiveInventory>,
    log: Arc<JetStreamLog>,
    leader: watch::Receiver<bool>,
    period: Duration,
) {
    let mut proposed: HashMap<(String, u64, super::live::HealthState), Instant> = HashMap::new();
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        if !*leader.borrow() || !log.is_caught_up() {
            continue;
        }
        proposed.retain(|_, at| at.elapsed() < REPROPOSE_AFTER);
        for (name, transition) in inventory.due_transitions(SystemTime::now()) {
            let key = (name.clone(), transition.beat, transition.state);
            if proposed.contains_key(&key) {
                continue;
            }
            let payload = match serde_json::to_vec(&transition) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a health transition");
                    continue;
                }
            };
            match log
                .publisher
                .publish(EntryKind::Health, &name, payload)
                .await
            {
                Ok(seq) => {
                    tracing::debug!(host = %name, state = ?transition.state, seq, "health transition published");
                    proposed.insert(key, Instant::now());
                }
                Err(e) => {
                    tracing::warn!(host = %name, error = %e, "cannot publish a health transition; retrying");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_config_captures_both_subject_trees_latest_per_subject() {
        let c = StreamSettings::default().config();
        assert_eq!(c.name, "WASMGATE_INVENTORY");
        assert_eq!(
            c.subjects,
            ["runtime.operator.heartbeat.>", "wasmgate.inventory.>"]
        );
        assert_eq!(c.max_messages_per_subject, 1);
        assert_eq!(c.storage, stream::StorageType::File);
        assert_eq!(c.num_replicas, 1);
    }

    #[test]
    fn entries_decode_by_subject() {
        let inv = crate::inventory::LiveInventory::new(crate::inventory::LiveConfig::default());
        assert!(matches!(
            decode_entry(&inv, "runtime.operator.heartbeat.abc", br#"{"id":"abc"}"#),
            Ok(LogEntry::Heartbeat(_))
        ));
        assert!(
            decode_entry(&inv, "runtime.operator.heartbeat.abc", br#"{"id":"other"}"#).is_err(),
            "the payload's id must be the subject's"
        );
        assert!(matches!(
            decode_entry(&inv, "wasmgate.inventory.delete.h-1", b""),
            Ok(LogEntry::Delete { name }) if name == "h-1"
        ));
        assert!(decode_entry(
            &inv,
            "wasmgate.inventory.write.a",
            br#"{"apiVersion":"wasmgate.dev/v1alpha1","kind":"Host","metadata":{"name":"b"},"hostId":"x"}"#
        )
        .is_err());
        assert!(matches!(
            decode_entry(
                &inv,
                "wasmgate.inventory.health.a",
                br#"{"hostId":"x","beat":3,"state":"Unknown"}"#
            ),
            Ok(LogEntry::Health { .. })
        ));
        assert!(decode_entry(&inv, "elsewhere", b"").is_err());
    }
}
