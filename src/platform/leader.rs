//! Leader election on a `coordination.k8s.io/v1` Lease: among the replicas, one writes to the
//! cluster (certificates, caBundles, Events); all of them serve.
//!
//! The rules follow client-go's `leaderelection` package:
//! - a replica takes the Lease when it is missing, has no holder (released), or has not changed
//!   for the holder's `leaseDurationSeconds`, measured on this replica's monotonic clock from the
//!   moment it saw the current version (so clock skew between nodes does not matter);
//! - every write is a replace conditioned on the `resourceVersion` that was read, so two
//!   replicas never both win (the loser gets 409 Conflict);
//! - the leader renews every `renew_period`; a leader whose last successful renewal is older than
//!   the renew deadline (`lease_duration - retry_period`) steps down before anyone else may take
//!   over;
//! - on graceful shutdown the leader clears `holderIdentity`, so a successor takes over at its
//!   next retry instead of after the lease duration.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::duration::parse_duration;
use super::kube::{ClientResult, KubeClientError};

/// Why leader election could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The flags contradict each other.
    #[error("leader election: {0}")]
    Config(#[from] LeaderConfigError),
    /// No Kubernetes client could be made.
    #[error("leader election needs the Kubernetes API: {0}")]
    Client(#[source] KubeClientError),
}

/// Which leader election settings contradict each other.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaderConfigError {
    /// `--leader-identity` (or its default) is empty.
    #[error("the identity is empty")]
    EmptyIdentity,
    /// The lease is shorter than a second (Lease durations are whole seconds).
    #[error("--leader-lease-duration must be at least 1s")]
    LeaseTooShort,
    /// A zero renew or retry period.
    #[error("--leader-renew-period and --leader-retry-period must be positive")]
    ZeroPeriod,
    /// The leader would renew no sooner than it must step down.
    #[error(
        "--leader-renew-period ({renew_period:?}) must be shorter than --leader-lease-duration \
         minus --leader-retry-period ({renew_deadline:?})"
    )]
    RenewAfterDeadline {
        /// `--leader-renew-period`.
        renew_period: Duration,
        /// The renew deadline it must undercut.
        renew_deadline: Duration,
    },
}

/// Options of leader election (part of `wasmgate serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct LeaderArgs {
    /// Elect one leader among the replicas with a Lease; only the leader writes to the cluster
    /// (self-managed certificates and caBundles, Events) [default: true with --kubeconfig or
    /// inside a cluster, false with --dev].
    #[arg(long, env = "WASMGATE_LEADER_ELECT", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    pub leader_elect: Option<bool>,
    /// This replica's identity in the Lease [default: $POD_NAME, else HOSTNAME-PID].
    #[arg(long, env = "WASMGATE_LEADER_IDENTITY")]
    pub leader_identity: Option<String>,
    /// The Lease's name.
    #[arg(long, default_value = "wasmgate", env = "WASMGATE_LEADER_LEASE")]
    pub leader_lease_name: String,
    /// The Lease's namespace [default: --service-namespace].
    #[arg(long, env = "WASMGATE_LEADER_LEASE_NAMESPACE")]
    pub leader_lease_namespace: Option<String>,
    /// How long a Lease that is not renewed stays with its holder.
    #[arg(long, default_value = "15s", value_parser = parse_duration, env = "WASMGATE_LEADER_LEASE_DURATION")]
    pub leader_lease_duration: Duration,
    /// How often the leader renews the Lease.
    #[arg(long, default_value = "5s", value_parser = parse_duration, env = "WASMGATE_LEADER_RENEW_PERIOD")]
    pub leader_renew_period: Duration,
    /// How often a follower (or a leader whose renewal failed) tries again.
    #[arg(long, default_value = "2s", value_parser = parse_duration, env = "WASMGATE_LEADER_RETRY_PERIOD")]
    pub leader_retry_period: Duration,
}

impl LeaderArgs {
    /// Whether to elect: the flag, else on with a kubeconfig or in a cluster, off with `--dev`.
    pub fn enabled(&self, dev: bool, kubeconfig_given: bool) -> bool {
        self.leader_elect
            .unwrap_or(!dev && (kubeconfig_given || in_cluster()))
    }

    /// The configuration, with `namespace` as the default Lease namespace.
    pub fn config(&self, namespace: &str) -> Result<LeaderConfig, LeaderError> {
        let config = LeaderConfig {
            identity: self
                .leader_identity
                .clone()
                .unwrap_or_else(default_identity),
            lease_name: self.leader_lease_name.clone(),
            namespace: self
                .leader_lease_namespace
                .clone()
                .unwrap_or_else(|| namespace.to_owned()),
            lease_duration: self.leader_lease_duration,
            renew_period: self.leader_renew_period,
            retry_period: self.leader_retry_period,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Whether this process runs in a Kubernetes pod (the service-account environment is set).
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

/// `$POD_NAME`, else `HOSTNAME-PID`.
pub fn default_identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|p| !p.is_empty()) {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "wasmgate".to_owned());
    format!("{host}-{}", std::process::id())
}

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// This replica's identity (`holderIdentity` while it leads).
    pub identity: String,
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// How long an unrenewed Lease stays with its holder.
    pub lease_duration: Duration,
    /// How often the leader renews.
    pub renew_period: Duration,
    /// How often others (and a leader after a failed renewal) try.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// The renew deadline: a leader that has not renewed for this long steps down. It is shorter
    /// than the lease duration, so the old leader stops before a successor may start.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration.saturating_sub(self.retry_period)
    }

    fn validate(&self) -> Result<(), LeaderConfigError> {
        if self.identity.is_empty() {
            return Err(LeaderConfigError::EmptyIdentity);
        }
        if self.lease_duration < Duration::from_secs(1) {
            return Err(LeaderConfigError::LeaseTooShort);
        }
        if self.retry_period.is_zero() || self.renew_period.is_zero() {
            return Err(LeaderConfigError::ZeroPeriod);
        }
        if self.renew_period >= self.renew_deadline() {
            return Err(LeaderConfigError::RenewAfterDeadline {
                renew_period: self.renew_period,
                renew_deadline: self.renew_deadline(),
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The decision (pure)
// ---------------------------------------------------------------------------------------------

/// What a replica knows of the Lease: its holder and duration, and since when (on the local
/// monotonic clock) its current version has been seen unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// `spec.holderIdentity` (`None` or empty: free).
    pub holder: Option<String>,
    /// `spec.leaseDurationSeconds` as the holder wrote it.
    pub lease_duration: Duration,
    /// When this version of the Lease was first seen.
    pub since: Instant,
}

/// What to do with the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: create it, holding it.
    Create,
    /// This replica holds it: renew it.
    Renew,
    /// Free (no holder) or expired: take it over.
    Acquire,
    /// Another replica holds it.
    Follow {
        /// The holder.
        holder: String,
        /// When it expires unless renewed.
        expires_in: Duration,
    },
}

/// Decides what to do with the Lease (`None`: it does not exist) at `now`, as `me`.
pub fn decide(lease: Option<&Observed>, now: Instant, me: &str) -> Decision {
    let Some(lease) = lease else {
        return Decision::Create;
    };
    let holder = match lease.holder.as_deref() {
        None | Some("") => return Decision::Acquire,
        Some(h) => h,
    };
    if holder == me {
        return Decision::Renew;
    }
    let unchanged_for = now.saturating_duration_since(lease.since);
    if unchanged_for >= lease.lease_duration {
        Decision::Acquire
    } else {
        Decision::Follow {
            holder: holder.to_owned(),
            expires_in: lease.lease_duration - unchanged_for,
        }
    }
}

/// Whether a leader whose last successful renewal was at `last_renewal` still leads at `now`.
pub fn still_leading(last_renewal: Instant, now: Instant, renew_deadline: Duration) -> bool {
    now.saturating_duration_since(last_renewal) < renew_deadline
}

// ---------------------------------------------------------------------------------------------
// The elector
// ---------------------------------------------------------------------------------------------

struct Inner {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    // Keeps the channel open for `LeaderHandle::always`.
    _leader_tx: Option<watch::Sender<bool>>,
}

/// A running election (or a fixed answer). Cheap to clone.
#[derive(Clone)]
pub struct LeaderHandle {
    /// `true` while this replica leads. Writers check it before each write, or wait for it
    /// with `changed()`.
    pub is_leader: watch::Receiver<bool>,
    /// This replica's identity.
    pub identity: String,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LeaderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderHandle")
            .field("identity", &self.identity)
            .field("is_leader", &*self.is_leader.borrow())
            .finish()
    }
}

impl LeaderHandle {
    /// A handle that always leads (leader election turned off: a single replica).
    pub fn always(identity: impl Into<String>) -> LeaderHandle {
        let (tx, rx) = watch::channel(true);
        let (stop, _) = watch::channel(false);
        LeaderHandle {
            is_leader: rx,
            identity: identity.into(),
            inner: Arc::new(Inner {
                stop,
                task: Mutex::new(None),
                _leader_tx: Some(tx),
            }),
        }
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.is_leader.borrow()
    }

    /// Stops the election; a leader releases the Lease (clears `holderIdentity`) so a successor
    /// takes over at once. Bounded to a few seconds; idempotent.
    pub async fn release(&self) {
        let _ = self.inner.stop.send(true);
        let task = self.inner.task.lock().await.take();
        if let Some(task) = task {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("releasing the leader Lease timed out");
            }
        }
    }
}

/// Runs leader election on a Lease.
pub struct LeaderElector;

impl LeaderElector {
    /// Starts electing in the background and returns the handle.
    pub fn spawn(client: kube::Client, config: LeaderConfig) -> LeaderHandle {
        let (tx, rx) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        let identity = config.identity.clone();
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        tracing::info!(
            identity = %config.identity,
            lease = %config.lease_name,
            namespace = %config.namespace,
            duration = ?config.lease_duration,
            "leader election started"
        );
        let task = tokio::spawn(run(api, config, tx, stop_rx));
        LeaderHandle {
            is_leader: rx,
            identity,
            inner: Arc::new(Inner {
                stop,
                task: Mutex::new(Some(task)),
                _leader_tx: None,
            }),
        }
    }
}

/// Starts leader election when it is enabled (see [`LeaderArgs::enabled`]; `kubeconfig_given`:
/// whether `--kubeconfig` was set) with the process's Kubernetes `client` (or why there is
/// none); `Ok(None)` when it is not enabled.
pub fn start(
    args: &LeaderArgs,
    client: &ClientResult,
    kubeconfig_given: bool,
    dev: bool,
    namespace: &str,
) -> Result<Option<LeaderHandle>, LeaderError> {
    if !args.enabled(dev, kubeconfig_given) {
        return Ok(None);
    }
    let config = args.config(namespace)?;
    let client = client.clone().map_err(LeaderError::Client)?;
    Ok(Some(LeaderElector::spawn(client, config)))
}

fn micro_now() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// The election loop's state between attempts.
struct State {
    /// The Lease's resourceVersion last seen, and when it was first seen.
    seen: Option<(String, Instant)>,
    /// The last successful create/renew/acquire, while leading.
    renewed: Option<Instant>,
}

async fn run(
    api: Api<Lease>,
    config: LeaderConfig,
    tx: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut state = State {
        seen: None,
        renewed: None,
    };
    loop {
        if *stop.borrow() {
            break;
        }
        // Bounded: kube's client has no read timeout, and a hung renewal must not keep this
        // replica leading past its deadline (the check below runs only after the attempt).
        match tokio::time::timeout(
            config.retry_period.max(Duration::from_secs(1)),
            attempt(&api, &config, &mut state),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, lease = %config.lease_name, "leader election: Kubernetes API error");
            }
            Err(_) => {
                tracing::warn!(lease = %config.lease_name, "leader election: the Kubernetes API did not answer in time");
            }
        }
        let now = Instant::now();
        if let Some(at) = state.renewed {
            if !still_leading(at, now, config.renew_deadline()) {
                tracing::warn!(
                    identity = %config.identity,
                    "could not renew the leader Lease in time: stepping down"
                );
                state.renewed = None;
            }
        }
        let leading = state.renewed.is_some();
        tx.send_if_modified(|was| {
            if *was == leading {
                return false;
            }
            if leading {
                tracing::info!(identity = %config.identity, lease = %config.lease_name, "became the leader");
            } else {
                tracing::info!(identity = %config.identity, lease = %config.lease_name, "no longer the leader");
            }
            *was = leading;
            true
        });
        let wait = if leading {
            config.renew_period
        } else {
            config.retry_period
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
        }
    }
    if state.renewed.take().is_some() {
        tx.send_replace(false);
        match release(&api, &config).await {
            Ok(true) => tracing::info!(identity = %config.identity, "released the leader Lease"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "releasing the leader Lease failed"),
        }
    }
    tx.send_replace(false);
}

fn observe(lease: &Lease, now: Instant, state: &mut State, default_duration: Duration) -> Observed {
    let rv = lease.metadata.resource_version.clone().unwrap_or_default();
    let since = match &state.seen {
        Some((seen, since)) if *seen == rv => *since,
        _ => {
            state.seen = Some((rv, now));
            now
        }
    };
    let spec = lease.spec.as_ref();
    Observed {
        holder: spec.and_then(|s| s.holder_identity.clone()),
        lease_duration: spec
            .and_then(|s| s.lease_duration_seconds)
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(default_duration),
        since,
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

async fn attempt(
    api: &Api<Lease>,
    config: &LeaderConfig,
    state: &mut State,
) -> Result<(), kube::Error> {
    let started = Instant::now();
    let current = api.get_opt(&config.lease_name).await?;
    let observed = current
        .as_ref()
        .map(|l| observe(l, started, state, config.lease_duration));
    let decision = decide(observed.as_ref(), Instant::now(), &config.identity);
    let now = micro_now();
    let duration = Some(seconds(config.lease_duration));
    let wrote = !matches!(decision, Decision::Follow { .. });
    let written = match (decision, current) {
        (Decision::Create, _) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.lease_name.clone()),
                    namespace: Some(config.namespace.clone()),
                    labels: Some(
                        [("app.kubernetes.io/name".to_owned(), "wasmgate".to_owned())].into(),
                    ),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: duration,
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(l) => Some(l),
                Err(e) if is_status(&e, 409) => None,
                Err(e) => return Err(e),
            }
        }
        (Decision::Renew, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if state.renewed.is_none() {
                spec.acquire_time = Some(now.clone());
            }
            spec.renew_time = Some(now);
            spec.lease_duration_seconds = duration;
            replace(api, config, lease).await?
        }
        (Decision::Acquire, Some(mut lease)) => {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if let Some(previous) = spec.holder_identity.as_deref().filter(|h| !h.is_empty()) {
                tracing::info!(previous = %previous, "the leader Lease expired: taking over");
            }
            spec.holder_identity = Some(config.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.renew_time = Some(now);
            spec.lease_duration_seconds = duration;
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
            replace(api, config, lease).await?
        }
        (Decision::Follow { holder, expires_in }, _) => {
            tracing::debug!(%holder, ?expires_in, "following the leader");
            state.renewed = None;
            None
        }
        // Renew/Acquire always come with a Lease.
        (_, None) => None,
    };
    match written {
        Some(lease) => {
            state.renewed = Some(started);
            state.seen = lease
                .metadata
                .resource_version
                .map(|rv| (rv, Instant::now()));
        }
        // Another replica wrote first: it leads.
        None if wrote => state.renewed = None,
        None => {}
    }
    Ok(())
}

/// Replaces the Lease conditioned on the resourceVersion it was read at. `None`: someone else
/// wrote it first (409), so this replica does not lead.
async fn replace(
    api: &Api<Lease>,
    config: &LeaderConfig,
    lease: Lease,
) -> Result<Option<Lease>, kube::Error> {
    match api
        .replace(&config.lease_name, &PostParams::default(), &lease)
        .await
    {
        Ok(l) => Ok(Some(l)),
        Err(e) if is_status(&e, 409) => {
            tracing::debug!("the leader Lease changed under us (409)");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Clears `holderIdentity` if this replica still holds the Lease. `Ok(true)`: released.
async fn release(api: &Api<Lease>, config: &LeaderConfig) -> Result<bool, kube::Error> {
    let Some(mut lease) = api.get_opt(&config.lease_name).await? else {
        return Ok(false);
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return Ok(false);
    }
    let now = micro_now();
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.acquire_time = Some(now.clone());
    spec.renew_time = Some(now);
    Ok(replace(api, config, lease).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, secs: u64, since: Instant) -> Observed {
        Observed {
            holder: holder.map(str::to_owned),
            lease_duration: Duration::from_secs(secs),
            since,
        }
    }

    #[test]
    fn missing_lease_is_created() {
        assert_eq!(decide(None, Instant::now(), "a"), Decision::Create);
    }

    #[test]
    fn own_lease_is_renewed_even_when_old() {
        let t0 = Instant::now();
        let l = lease(Some("a"), 15, t0);
        assert_eq!(
            decide(Some(&l), t0 + Duration::from_secs(100), "a"),
            Decision::Renew
        );
    }

    #[test]
    fn released_lease_is_acquired_at_once() {
        let t0 = Instant::now();
        for holder in [None, Some("")] {
            let l = lease(holder, 15, t0);
            assert_eq!(decide(Some(&l), t0, "b"), Decision::Acquire);
        }
    }

    #[test]
    fn live_lease_of_another_is_followed_until_it_expires() {
        let t0 = Instant::now();
        let l = lease(Some("a"), 15, t0);
        assert_eq!(
            decide(Some(&l), t0 + Duration::from_secs(10), "b"),
            Decision::Follow {
                holder: "a".into(),
                expires_in: Duration::from_secs(5)
            }
        );
        assert_eq!(
            decide(Some(&l), t0 + Duration::from_secs(15), "b"),
            Decision::Acquire
        );
        // The holder's duration counts, not ours.
        let short = lease(Some("a"), 3, t0);
        assert_eq!(
            decide(Some(&short), t0 + Duration::from_secs(3), "b"),
            Decision::Acquire
        );
    }

    #[test]
    fn leader_steps_down_before_others_may_take_over() {
        let config = LeaderConfig {
            identity: "a".into(),
            lease_name: "wasmgate".into(),
            namespace: "ns".into(),
            lease_duration: Duration::from_secs(15),
            renew_period: Duration::from_secs(5),
            retry_period: Duration::from_secs(2),
        };
        config.validate().unwrap();
        let t0 = Instant::now();
        assert!(still_leading(
            t0,
            t0 + Duration::from_secs(12),
            config.renew_deadline()
        ));
        assert!(!still_leading(
            t0,
            t0 + Duration::from_secs(13),
            config.renew_deadline()
        ));
        // A follower that saw the renewal at t0 takes over at t0 + 15 s at the earliest.
        let seen = lease(Some("a"), 15, t0);
        assert!(matches!(
            decide(Some(&seen), t0 + Duration::from_secs(13), "b"),
            Decision::Follow { .. }
        ));
    }

    #[test]
    fn inconsistent_periods_are_refused() {
        let mut config = LeaderConfig {
            identity: "a".into(),
            lease_name: "wasmgate".into(),
            namespace: "ns".into(),
            lease_duration: Duration::from_secs(6),
            renew_period: Duration::from_secs(5),
            retry_period: Duration::from_secs(2),
        };
        assert_eq!(
            config.validate(),
            Err(LeaderConfigError::RenewAfterDeadline {
                renew_period: Duration::from_secs(5),
                renew_deadline: Duration::from_secs(4),
            })
        );
        config.renew_period = Duration::from_secs(2);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn observation_restarts_when_the_version_changes() {
        let mut state = State {
            seen: None,
            renewed: None,
        };
        let mut l = Lease {
            metadata: ObjectMeta {
                resource_version: Some("1".into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some("a".into()),
                lease_duration_seconds: Some(10),
                ..LeaseSpec::default()
            }),
        };
        let t0 = Instant::now();
        let first = observe(&l, t0, &mut state, Duration::from_secs(15));
        assert_eq!(first.since, t0);
        assert_eq!(first.lease_duration, Duration::from_secs(10));
        let same = observe(
            &l,
            t0 + Duration::from_secs(5),
            &mut state,
            Duration::from_secs(15),
        );
        assert_eq!(same.since, t0);
        l.metadata.resource_version = Some("2".into());
        let renewed = observe(
            &l,
            t0 + Duration::from_secs(6),
            &mut state,
            Duration::from_secs(15),
        );
        assert_eq!(renewed.since, t0 + Duration::from_secs(6));
    }

    /// A Kubernetes API that serves Leases from memory until `hang` is set, then accepts
    /// requests and never answers (a hung apiserver or a half-open connection).
    async fn fake_lease_api(hang: Arc<std::sync::atomic::AtomicBool>) -> kube::Client {
        use axum::extract::State as AxState;
        use axum::http::StatusCode;
        use axum::response::IntoResponse;
        use axum::routing::get;
        type Stored = Arc<std::sync::Mutex<Option<serde_json::Value>>>;
        #[derive(Clone)]
        struct Fake {
            lease: Stored,
            hang: Arc<std::sync::atomic::AtomicBool>,
            rv: Arc<std::sync::atomic::AtomicU64>,
        }
        impl Fake {
            async fn gate(&self) {
                if self.hang.load(std::sync::atomic::Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
            }
            fn store(&self, mut body: serde_json::Value) -> serde_json::Value {
                let rv = self.rv.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                body["metadata"]["resourceVersion"] = rv.to_string().into();
                *self.lease.lock().unwrap() = Some(body.clone());
                body
            }
        }
        async fn read(AxState(f): AxState<Fake>) -> axum::response::Response {
            f.gate().await;
            match f.lease.lock().unwrap().clone() {
                Some(l) => axum::Json(l).into_response(),
                None => (
                    StatusCode::NOT_FOUND,
                    axum::Json(serde_json::json!({
                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "reason": "NotFound", "code": 404, "message": "not found"
                    })),
                )
                    .into_response(),
            }
        }
        async fn write(
            AxState(f): AxState<Fake>,
            axum::Json(body): axum::Json<serde_json::Value>,
        ) -> axum::response::Response {
            f.gate().await;
            (StatusCode::CREATED, axum::Json(f.store(body))).into_response()
        }
        let fake = Fake {
            lease: Arc::new(std::sync::Mutex::new(None)),
            hang,
            rv: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        };
        let base = "/apis/coordination.k8s.io/v1/namespaces/ns/leases";
        let app = axum::Router::new()
            .route(base, axum::routing::post(write))
            .route(&format!("{base}/{{name}}"), get(read).put(write))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// A leader whose apiserver stops answering steps down on its own, although no renewal
    /// call ever returns: each attempt is bounded (kube's client has no read timeout), so the
    /// renew deadline is checked. Without the bound the attempt would hang and the replica
    /// would keep leading for as long as the apiserver stays silent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_apiserver_makes_the_leader_step_down() {
        let hang = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client = fake_lease_api(hang.clone()).await;
        let api: Api<Lease> = Api::namespaced(client, "ns");
        let config = LeaderConfig {
            identity: "replica-a".into(),
            lease_name: "wasmgate".into(),
            namespace: "ns".into(),
            lease_duration: Duration::from_secs(4),
            renew_period: Duration::from_millis(500),
            retry_period: Duration::from_secs(1),
        };
        let (tx, mut rx) = watch::channel(false);
        let (_stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(api, config, tx, stop_rx));
        tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|leading| *leading))
            .await
            .expect("became the leader within 30 s")
            .unwrap();
        hang.store(true, std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(60), rx.wait_for(|leading| !*leading))
            .await
            .expect("stepped down while the apiserver was silent")
            .unwrap();
        task.abort();
    }
}
