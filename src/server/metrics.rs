//! Prometheus metrics, served as OpenMetrics text on `GET /metrics`.
//!
//! One [`Metrics`] is created in `wasmgate serve` and shared (`Arc`): the admission handlers
//! record into [`Metrics::admission`], the reconciler into [`Metrics::reconcile`], and the live
//! inventory's series are read at scrape time (nothing is done per heartbeat beyond the
//! ingestion counters [`IngestStats`] already keeps). Tests build one with [`Metrics::new`]
//! and read it back with [`Metrics::encode`].
//!
//! Every series is prefixed `wasmgate_`, and every label takes values from a fixed set (see
//! [`ObjectKind`], [`AdmissionVerdict`]), so the number of series is bounded:
//!
//! | series | type | labels |
//! |---|---|---|
//! | `admission_requests_total` | counter | `operation`, `kind`, `verdict` |
//! | `admission_duration_seconds` | histogram | `operation`, `verdict` |
//! | `hosts` | gauge | `ready` (`true`, `false`, `unknown`) |
//! | `heartbeats_total`, `heartbeats_malformed_total` | counter | |
//! | `inventory_resource_version` | gauge | |
//! | `unresolved_objects` | gauge | `kind` |
//! | `reconcile_passes_total`, `events_emitted_total` | counter | |
//! | `reconcile_duration_seconds` | histogram | |
//! | `build_info` | gauge (always 1) | `version` |

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::engine::Mode;
use crate::inventory::{IngestStats, LiveInventory};

/// The `Content-Type` of a `/metrics` response.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the admission latency buckets: 1 ms to the apiserver's 10 s
/// webhook timeout.
pub const ADMISSION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds (seconds) of the reconcile-pass buckets: 5 ms to a minute.
pub const RECONCILE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// The object kinds a `kind` label may name; everything else is [`ObjectKind::Other`].
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ObjectKind {
    /// `Workload`.
    Workload,
    /// `WorkloadReplicaSet`.
    WorkloadReplicaSet,
    /// `WorkloadDeployment`.
    WorkloadDeployment,
    /// Any other kind, or none (a request that did not decode).
    Other,
}

impl ObjectKind {
    /// Every kind, in label order.
    pub const ALL: [ObjectKind; 4] = [
        Self::Workload,
        Self::WorkloadReplicaSet,
        Self::WorkloadDeployment,
        Self::Other,
    ];

    /// The kind named `kind` (a Kubernetes `kind`, case-sensitive).
    pub fn from_kind(kind: &str) -> Self {
        match kind {
            "Workload" => Self::Workload,
            "WorkloadReplicaSet" => Self::WorkloadReplicaSet,
            "WorkloadDeployment" => Self::WorkloadDeployment,
            _ => Self::Other,
        }
    }

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Workload => "Workload",
            Self::WorkloadReplicaSet => "WorkloadReplicaSet",
            Self::WorkloadDeployment => "WorkloadDeployment",
            Self::Other => "other",
        }
    }
}

impl EncodeLabelValue for ObjectKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// How an admission request ended, as the `verdict` label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum AdmissionVerdict {
    /// Admitted (every mutate answer that was computed in time).
    Allowed,
    /// Denied by a check.
    Denied,
    /// No verdict was computed: a malformed or oversized request (answered with a `Status`
    /// error), or a review that ran out of time.
    Error,
}

impl AdmissionVerdict {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

impl EncodeLabelValue for AdmissionVerdict {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// The `operation` label: which webhook.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
enum Operation {
    Validate,
    Mutate,
}

impl From<Mode> for Operation {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Validate => Self::Validate,
            Mode::Mutate => Self::Mutate,
        }
    }
}

impl EncodeLabelValue for Operation {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let value = match self {
            Self::Validate => "validate",
            Self::Mutate => "mutate",
        };
        EncodeLabelValue::encode(&value, encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: Operation,
    kind: ObjectKind,
    verdict: AdmissionVerdict,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    operation: Operation,
    verdict: AdmissionVerdict,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: ObjectKind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn admission_histogram() -> Histogram {
    Histogram::new(ADMISSION_BUCKETS)
}

/// The admission webhook's series. Cheap to clone (the series are shared).
#[derive(Clone, Debug)]
pub struct AdmissionMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: HistogramFamily<DurationLabels>,
}

impl AdmissionMetrics {
    fn new() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(admission_histogram),
        }
    }

    /// Records one request to the `mode` webhook about a `kind` object: counts it in
    /// `admission_requests_total` and observes `elapsed` in `admission_duration_seconds`.
    pub fn record(
        &self,
        mode: Mode,
        kind: ObjectKind,
        verdict: AdmissionVerdict,
        elapsed: Duration,
    ) {
        let operation = Operation::from(mode);
        self.requests
            .get_or_create(&RequestLabels {
                operation,
                kind,
                verdict,
            })
            .inc();
        self.duration
            .get_or_create(&DurationLabels { operation, verdict })
            .observe(elapsed.as_secs_f64());
    }
}

/// The reconciler's series, set by the reconciler. Cheap to clone (the series are shared): the
/// reconciler may keep its own copy from [`Metrics::reconcile`].
#[derive(Clone, Debug)]
pub struct ReconcileMetrics {
    unresolved: Family<KindLabels, Gauge>,
    passes: Counter,
    duration: Histogram,
    events: Counter,
}

impl ReconcileMetrics {
    fn new() -> Self {
        Self {
            unresolved: Family::default(),
            passes: Counter::default(),
            duration: Histogram::new(RECONCILE_BUCKETS),
            events: Counter::default(),
        }
    }

    /// Sets `unresolved_objects{kind}`: how many objects of `kind` do not resolve against the
    /// current inventory. A kind never set has no series.
    pub fn set_unresolved(&self, kind: ObjectKind, count: usize) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        self.unresolved
            .get_or_create(&KindLabels { kind })
            .set(count);
    }

    /// Records one finished reconcile pass that took `duration`: increments
    /// `reconcile_passes_total` and observes `reconcile_duration_seconds`.
    pub fn observe_pass(&self, duration: Duration) {
        self.passes.inc();
        self.duration.observe(duration.as_secs_f64());
    }

    /// Counts one Kubernetes Event emitted (`events_emitted_total`).
    pub fn event_emitted(&self) {
        self.events.inc();
    }
}

/// Reads the live inventory at scrape time: `hosts{ready}`, `heartbeats_total`,
/// `heartbeats_malformed_total`, `inventory_resource_version`.
#[derive(Debug)]
struct InventoryCollector {
    inventory: Arc<LiveInventory>,
    stats: Arc<IngestStats>,
}

impl Collector for InventoryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = self.inventory.ready_counts();
        let mut hosts = encoder.encode_descriptor(
            "hosts",
            "Hosts in the live inventory, by their Ready condition.",
            None,
            MetricType::Gauge,
        )?;
        for (ready, n) in [
            ("true", counts.ready),
            ("false", counts.not_ready),
            ("unknown", counts.unknown),
        ] {
            let gauge = ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
            gauge.encode(hosts.encode_family(&[("ready", ready)])?)?;
        }

        let (received, _applied, rejected) = self.stats.counts();
        for (name, help, value) in [
            (
                "heartbeats",
                "Messages received on the NATS heartbeat subject, malformed ones included.",
                received,
            ),
            (
                "heartbeats_malformed",
                "Messages on the NATS heartbeat subject that were not valid heartbeats.",
                rejected,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }

        let rv =
            ConstGauge::new(i64::try_from(self.inventory.resource_version()).unwrap_or(i64::MAX));
        rv.encode(encoder.encode_descriptor(
            "inventory_resource_version",
            "The live inventory's resource version (increases with every change of any host).",
            None,
            rv.metric_type(),
        )?)
    }
}

/// Every wasmgate series, in one registry. Create it once and share it (`Arc<Metrics>`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    admission: AdmissionMetrics,
    reconcile: ReconcileMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The admission, reconcile and build series, without the inventory series (for tests
    /// and for processes without a live inventory).
    pub fn new() -> Self {
        Self::build(None)
    }

    /// Every series, the inventory ones read from `inventory` and `stats` at scrape time.
    pub fn with_inventory(inventory: Arc<LiveInventory>, stats: Arc<IngestStats>) -> Self {
        Self::build(Some(InventoryCollector { inventory, stats }))
    }

    fn build(inventory: Option<InventoryCollector>) -> Self {
        let mut registry = Registry::with_prefix("wasmgate");
        let admission = AdmissionMetrics::new();
        let reconcile = ReconcileMetrics::new();

        // The registry ends each help text with a period.
        registry.register(
            "admission_requests",
            "Admission requests, by webhook, object kind and verdict (error: malformed request or timeout)",
            admission.requests.clone(),
        );
        registry.register_with_unit(
            "admission_duration",
            "Time to answer an admission request, by webhook and verdict",
            Unit::Seconds,
            admission.duration.clone(),
        );
        registry.register(
            "unresolved_objects",
            "Objects that do not resolve against the current inventory, by kind (set by the reconciler)",
            reconcile.unresolved.clone(),
        );
        registry.register(
            "reconcile_passes",
            "Reconcile passes finished",
            reconcile.passes.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of a reconcile pass",
            Unit::Seconds,
            reconcile.duration.clone(),
        );
        registry.register(
            "events_emitted",
            "Kubernetes Events emitted by the reconciler",
            reconcile.events.clone(),
        );
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Always 1; the version label is the running wasmgate's",
            build_info,
        );
        if let Some(collector) = inventory {
            registry.register_collector(Box::new(collector));
        }
        Self {
            registry,
            admission,
            reconcile,
        }
    }

    /// The admission webhook's series.
    pub fn admission(&self) -> &AdmissionMetrics {
        &self.admission
    }

    /// The reconciler's series (see [`ReconcileMetrics`]).
    pub fn reconcile(&self) -> &ReconcileMetrics {
        &self.reconcile
    }

    /// The OpenMetrics text exposition of every series (ends with `# EOF`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::nats::ingest;
    use crate::inventory::LiveConfig;

    fn lines(m: &Metrics) -> Vec<String> {
        m.encode().unwrap().lines().map(String::from).collect()
    }

    #[track_caller]
    fn assert_lines(m: &Metrics, expected: &[&str]) {
        let got = lines(m);
        for line in expected {
            assert!(
                got.iter().any(|l| l == line),
                "missing line {line:?} in:\n{}",
                got.join("\n")
            );
        }
    }

    fn value(m: &Metrics, series: &str) -> Option<String> {
        lines(m).into_iter().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(String::from)
        })
    }

    #[test]
    fn kinds_are_bounded() {
        assert_eq!(ObjectKind::from_kind("Workload"), ObjectKind::Workload);
        assert_eq!(
            ObjectKind::from_kind("WorkloadReplicaSet"),
            ObjectKind::WorkloadReplicaSet
        );
        assert_eq!(
            ObjectKind::from_kind("WorkloadDeployment"),
            ObjectKind::WorkloadDeployment
        );
        for other in ["Pod", "workload", "", "Workloads"] {
            assert_eq!(ObjectKind::from_kind(other), ObjectKind::Other, "{other}");
        }
        let labels: Vec<_> = ObjectKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Workload",
                "WorkloadReplicaSet",
                "WorkloadDeployment",
                "other"
            ]
        );
    }

    #[test]
    fn fresh_registry() {
        let m = Metrics::new();
        let text = m.encode().unwrap();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_lines(
            &m,
            &[
                "# TYPE wasmgate_build_info gauge",
                &format!(
                    "wasmgate_build_info{{version=\"{}\"}} 1",
                    env!("CARGO_PKG_VERSION")
                ),
                "# TYPE wasmgate_reconcile_passes counter",
                "wasmgate_reconcile_passes_total 0",
                "wasmgate_events_emitted_total 0",
                "# TYPE wasmgate_reconcile_duration_seconds histogram",
                "# UNIT wasmgate_reconcile_duration_seconds seconds",
                "wasmgate_reconcile_duration_seconds_count 0",
            ],
        );
        // Families without a series yet, and no inventory: not exposed at all.
        for absent in [
            "wasmgate_admission_requests",
            "wasmgate_unresolved_objects",
            "wasmgate_hosts",
            "wasmgate_heartbeats",
        ] {
            assert!(!text.contains(absent), "{absent} in:\n{text}");
        }
    }

    #[test]
    fn admission_counts_and_latency() {
        let m = Metrics::new();
        let a = m.admission();
        a.record(
            Mode::Validate,
            ObjectKind::Workload,
            AdmissionVerdict::Allowed,
            Duration::from_millis(3),
        );
        a.record(
            Mode::Validate,
            ObjectKind::Workload,
            AdmissionVerdict::Denied,
            Duration::from_micros(31_250),
        );
        a.record(
            Mode::Validate,
            ObjectKind::WorkloadDeployment,
            AdmissionVerdict::Denied,
            Duration::from_nanos(7_812_500),
        );
        a.record(
            Mode::Mutate,
            ObjectKind::Other,
            AdmissionVerdict::Error,
            Duration::from_secs(20),
        );
        assert_lines(
            &m,
            &[
                "# HELP wasmgate_admission_requests Admission requests, by webhook, object kind and verdict (error: malformed request or timeout).",
                "# TYPE wasmgate_admission_requests counter",
                r#"wasmgate_admission_requests_total{operation="validate",kind="Workload",verdict="allowed"} 1"#,
                r#"wasmgate_admission_requests_total{operation="validate",kind="Workload",verdict="denied"} 1"#,
                r#"wasmgate_admission_requests_total{operation="validate",kind="WorkloadDeployment",verdict="denied"} 1"#,
                r#"wasmgate_admission_requests_total{operation="mutate",kind="other",verdict="error"} 1"#,
                "# TYPE wasmgate_admission_duration_seconds histogram",
                "# UNIT wasmgate_admission_duration_seconds seconds",
                r#"wasmgate_admission_duration_seconds_count{operation="validate",verdict="denied"} 2"#,
                r#"wasmgate_admission_duration_seconds_sum{operation="validate",verdict="denied"} 0.0390625"#,
                r#"wasmgate_admission_duration_seconds_bucket{le="0.005",operation="validate",verdict="denied"} 0"#,
                r#"wasmgate_admission_duration_seconds_bucket{le="0.01",operation="validate",verdict="denied"} 1"#,
                r#"wasmgate_admission_duration_seconds_bucket{le="0.025",operation="validate",verdict="denied"} 1"#,
                r#"wasmgate_admission_duration_seconds_bucket{le="0.05",operation="validate",verdict="denied"} 2"#,
                r#"wasmgate_admission_duration_seconds_bucket{le="0.0025",operation="validate",verdict="allowed"} 0"#,
                r#"wasmgate_admission_duration_seconds_bucket{le="0.005",operation="validate",verdict="allowed"} 1"#,
                // Beyond the largest bucket: only +Inf.
                r#"wasmgate_admission_duration_seconds_bucket{le="10.0",operation="mutate",verdict="error"} 0"#,
                r#"wasmgate_admission_duration_seconds_bucket{le="+Inf",operation="mutate",verdict="error"} 1"#,
            ],
        );
        // Repeats add to the same series.
        a.record(
            Mode::Validate,
            ObjectKind::Workload,
            AdmissionVerdict::Allowed,
            Duration::from_millis(1),
        );
        assert_eq!(
            value(
                &m,
                r#"wasmgate_admission_requests_total{operation="validate",kind="Workload",verdict="allowed"}"#
            )
            .as_deref(),
            Some("2")
        );
    }

    #[test]
    fn reconcile_api() {
        let m = Metrics::new();
        let r = m.reconcile().clone();
        r.set_unresolved(ObjectKind::Workload, 3);
        r.set_unresolved(ObjectKind::WorkloadDeployment, 1);
        r.set_unresolved(ObjectKind::Workload, 2);
        r.observe_pass(Duration::from_micros(15_625));
        r.observe_pass(Duration::from_millis(250));
        r.event_emitted();
        r.event_emitted();
        r.event_emitted();
        assert_lines(
            &m,
            &[
                "# TYPE wasmgate_unresolved_objects gauge",
                r#"wasmgate_unresolved_objects{kind="Workload"} 2"#,
                r#"wasmgate_unresolved_objects{kind="WorkloadDeployment"} 1"#,
                "wasmgate_reconcile_passes_total 2",
                "wasmgate_reconcile_duration_seconds_count 2",
                "wasmgate_reconcile_duration_seconds_sum 0.265625",
                r#"wasmgate_reconcile_duration_seconds_bucket{le="0.01"} 0"#,
                r#"wasmgate_reconcile_duration_seconds_bucket{le="0.025"} 1"#,
                r#"wasmgate_reconcile_duration_seconds_bucket{le="0.1"} 1"#,
                r#"wasmgate_reconcile_duration_seconds_bucket{le="0.25"} 2"#,
                r#"wasmgate_reconcile_duration_seconds_bucket{le="60.0"} 2"#,
                "wasmgate_events_emitted_total 3",
            ],
        );
        assert!(!m.encode().unwrap().contains("WorkloadReplicaSet"));
    }

    #[test]
    fn inventory_series_are_read_at_scrape_time() {
        let inventory = LiveInventory::new(LiveConfig::default());
        let stats = Arc::new(IngestStats::default());
        let m = Metrics::with_inventory(inventory.clone(), stats.clone());
        assert_lines(
            &m,
            &[
                "# TYPE wasmgate_hosts gauge",
                r#"wasmgate_hosts{ready="true"} 0"#,
                r#"wasmgate_hosts{ready="false"} 0"#,
                r#"wasmgate_hosts{ready="unknown"} 0"#,
                "# TYPE wasmgate_heartbeats counter",
                "wasmgate_heartbeats_total 0",
                "wasmgate_heartbeats_malformed_total 0",
                "# TYPE wasmgate_inventory_resource_version gauge",
                "wasmgate_inventory_resource_version 0",
            ],
        );
        let subject = "runtime.operator.heartbeat.";
        assert!(ingest(
            &inventory,
            &stats,
            &format!("{subject}a"),
            br#"{"friendlyName":"h-1"}"#
        ));
        assert!(ingest(
            &inventory,
            &stats,
            &format!("{subject}b"),
            br#"{"friendlyName":"h-2"}"#
        ));
        assert!(!ingest(&inventory, &stats, subject, b"{"));
        assert_lines(
            &m,
            &[
                r#"wasmgate_hosts{ready="true"} 2"#,
                r#"wasmgate_hosts{ready="false"} 0"#,
                r#"wasmgate_hosts{ready="unknown"} 0"#,
                "wasmgate_heartbeats_total 3",
                "wasmgate_heartbeats_malformed_total 1",
                "wasmgate_inventory_resource_version 2",
            ],
        );
    }
}
