//! The series of `wasmgate serve`'s server, registered in the process's registry (see
//! [`crate::platform::metrics`]): the admission webhook's (`wasmgate_admission_requests_total`,
//! `wasmgate_admission_denials_total`, `wasmgate_admission_duration_seconds`) and the live
//! inventory's, read at scrape time
//! (`wasmgate_hosts`, `wasmgate_heartbeats_total`, `wasmgate_heartbeats_malformed_total`,
//! `wasmgate_inventory_resource_version`). The inventory series live here rather than in
//! `crate::platform`, so the platform layer needs nothing of the core.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::engine::Mode;
use crate::inventory::{IngestStats, LiveInventory};
use crate::platform::metrics::ObjectKind;
use crate::resolve::Code;

/// Upper bounds (seconds) of the admission latency buckets: 1 ms to the apiserver's 10 s
/// webhook timeout.
pub const ADMISSION_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

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

/// Why a review was denied, as the `code` label of `admission_denials_total`: a fixed set (the
/// resolver's finding codes and two more), so the number of series stays bounded.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum DenialCode {
    /// The code of the resolver's first violation (its kebab-case name, as in `check`'s JSON).
    Finding(Code),
    /// The review ran out of time (answered with a denial).
    Timeout,
    /// The object does not decode as its kind, so nothing was resolved.
    Undecodable,
}

impl DenialCode {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Finding(code) => code.as_str(),
            Self::Timeout => "timeout",
            Self::Undecodable => "undecodable",
        }
    }
}

impl EncodeLabelValue for DenialCode {
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
struct DenialLabels {
    operation: Operation,
    kind: ObjectKind,
    code: DenialCode,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    operation: Operation,
    verdict: AdmissionVerdict,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn admission_histogram() -> Histogram {
    Histogram::new(ADMISSION_BUCKETS)
}

/// The admission webhook's series. Cheap to clone (the series are shared).
#[derive(Clone, Debug)]
pub struct AdmissionMetrics {
    requests: Family<RequestLabels, Counter>,
    denials: Family<DenialLabels, Counter>,
    duration: HistogramFamily<DurationLabels>,
}

impl AdmissionMetrics {
    /// Creates the series and registers them in a sub-registry of `registry` (prefix
    /// `admission`).
    pub fn register(registry: &mut Registry) -> Self {
        let me = Self {
            requests: Family::default(),
            denials: Family::default(),
            duration: Family::new_with_constructor(admission_histogram),
        };
        let sub = registry.sub_registry_with_prefix("admission");
        sub.register(
            "requests",
            "Admission requests, by webhook, object kind and verdict (error: malformed request or timeout)",
            me.requests.clone(),
        );
        sub.register(
            "denials",
            "Denied admission requests, by webhook, object kind and the code of the first violation (timeout: out of time; undecodable: the object does not decode)",
            me.denials.clone(),
        );
        sub.register_with_unit(
            "duration",
            "Time to answer an admission request, by webhook and verdict",
            Unit::Seconds,
            me.duration.clone(),
        );
        me
    }

    /// Records one request to the `mode` webhook about a `kind` object: counts it in
    /// `admission_requests_total`, and with `denial` (the answer denied it) in
    /// `admission_denials_total`, and observes `elapsed` in `admission_duration_seconds`.
    pub fn record(
        &self,
        mode: Mode,
        kind: ObjectKind,
        verdict: AdmissionVerdict,
        denial: Option<DenialCode>,
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
        if let Some(code) = denial {
            self.denials
                .get_or_create(&DenialLabels {
                    operation,
                    kind,
                    code,
                })
                .inc();
        }
        self.duration
            .get_or_create(&DurationLabels { operation, verdict })
            .observe(elapsed.as_secs_f64());
    }
}

/// Reads the live inventory at scrape time: `hosts{ready}`, `heartbeats_total`,
/// `heartbeats_malformed_total`, `inventory_resource_version`.
#[derive(Debug)]
struct InventoryCollector {
    inventory: Arc<LiveInventory>,
    stats: Arc<IngestStats>,
    /// Whether heartbeats come from NATS (`nats_connected` is exposed only then).
    nats: bool,
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

        if self.nats {
            let up = ConstGauge::new(i64::from(self.stats.connected()));
            up.encode(encoder.encode_descriptor(
                "nats_connected",
                "1 while the heartbeat connection to NATS is up.",
                None,
                up.metric_type(),
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

/// Registers the live inventory's series (`hosts{ready}`, `heartbeats_total`,
/// `heartbeats_malformed_total`, `inventory_resource_version`, and with `nats`
/// `nats_connected`), read from `inventory` and `stats` at scrape time.
pub fn register_inventory(
    registry: &mut Registry,
    inventory: Arc<LiveInventory>,
    stats: Arc<IngestStats>,
    nats: bool,
) {
    registry
        .sub_registry_with_labels(std::iter::empty())
        .register_collector(Box::new(InventoryCollector {
            inventory,
            stats,
            nats,
        }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::nats::ingest;
    use crate::inventory::LiveConfig;
    use crate::platform::metrics::testing::{assert_lines, lines, value};
    use crate::platform::metrics::Metrics;

    #[test]
    fn fresh_families_are_not_exposed() {
        let mut m = Metrics::new();
        let _a = AdmissionMetrics::register(m.registry());
        assert!(!m.encode().unwrap().contains("wasmgate_admission"));
    }

    #[test]
    fn admission_counts_and_latency() {
        let mut m = Metrics::new();
        let a = AdmissionMetrics::register(m.registry());
        a.record(
            Mode::Validate,
            ObjectKind::Workload,
            AdmissionVerdict::Allowed,
            None,
            Duration::from_millis(3),
        );
        a.record(
            Mode::Validate,
            ObjectKind::Workload,
            AdmissionVerdict::Denied,
            Some(DenialCode::Finding(Code::UnresolvedImport)),
            Duration::from_micros(31_250),
        );
        a.record(
            Mode::Validate,
            ObjectKind::WorkloadDeployment,
            AdmissionVerdict::Denied,
            Some(DenialCode::Finding(Code::UnresolvedImport)),
            Duration::from_nanos(7_812_500),
        );
        a.record(
            Mode::Mutate,
            ObjectKind::Other,
            AdmissionVerdict::Error,
            None,
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
            None,
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
    fn denials_by_code() {
        let mut m = Metrics::new();
        let a = AdmissionMetrics::register(m.registry());
        // Admitted requests and errors without an answer are no denials.
        a.record(
            Mode::Validate,
            ObjectKind::Workload,
            AdmissionVerdict::Allowed,
            None,
            Duration::from_millis(1),
        );
        assert!(
            !m.encode().unwrap().contains("wasmgate_admission_denials"),
            "{}",
            m.encode().unwrap()
        );
        let denied = [
            (
                Mode::Validate,
                ObjectKind::Workload,
                AdmissionVerdict::Denied,
                DenialCode::Finding(Code::UnresolvedImport),
            ),
            (
                Mode::Validate,
                ObjectKind::Workload,
                AdmissionVerdict::Denied,
                DenialCode::Finding(Code::UnresolvedImport),
            ),
            (
                Mode::Validate,
                ObjectKind::WorkloadDeployment,
                AdmissionVerdict::Denied,
                DenialCode::Finding(Code::NoEligibleHost),
            ),
            (
                Mode::Validate,
                ObjectKind::Workload,
                AdmissionVerdict::Denied,
                DenialCode::Undecodable,
            ),
            (
                Mode::Mutate,
                ObjectKind::WorkloadReplicaSet,
                AdmissionVerdict::Error,
                DenialCode::Timeout,
            ),
        ];
        for (mode, kind, verdict, code) in denied {
            a.record(mode, kind, verdict, Some(code), Duration::from_millis(2));
        }
        assert_lines(
            &m,
            &[
                "# TYPE wasmgate_admission_denials counter",
                r#"wasmgate_admission_denials_total{operation="validate",kind="Workload",code="unresolved-import"} 2"#,
                r#"wasmgate_admission_denials_total{operation="validate",kind="WorkloadDeployment",code="no-eligible-host"} 1"#,
                r#"wasmgate_admission_denials_total{operation="validate",kind="Workload",code="undecodable"} 1"#,
                r#"wasmgate_admission_denials_total{operation="mutate",kind="WorkloadReplicaSet",code="timeout"} 1"#,
                // The requests counter still counts every request, denied or not.
                r#"wasmgate_admission_requests_total{operation="validate",kind="Workload",verdict="denied"} 3"#,
                r#"wasmgate_admission_requests_total{operation="mutate",kind="WorkloadReplicaSet",verdict="error"} 1"#,
            ],
        );
        let denial_lines = lines(&m)
            .into_iter()
            .filter(|l| l.starts_with("wasmgate_admission_denials_total{"))
            .count();
        assert_eq!(denial_lines, 4, "{}", m.encode().unwrap());
    }

    #[test]
    fn denial_codes_are_the_findings_kebab_names() {
        // The label is the finding code as `check`'s JSON spells it (serde's kebab-case).
        for code in Code::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(
                Some(DenialCode::Finding(code).as_str()),
                json.as_str(),
                "{code:?}"
            );
        }
        assert_eq!(DenialCode::Timeout.as_str(), "timeout");
        assert_eq!(DenialCode::Undecodable.as_str(), "undecodable");
    }

    #[test]
    fn inventory_series_are_read_at_scrape_time() {
        let inventory = LiveInventory::new(LiveConfig::default());
        let stats = Arc::new(IngestStats::default());
        let mut m = Metrics::new();
        register_inventory(m.registry(), inventory.clone(), stats.clone(), true);
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
                "wasmgate_nats_connected 0",
            ],
        );
        stats
            .connects
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        stats.mark_up();
        assert_lines(&m, &["wasmgate_nats_connected 1"]);
        stats.mark_down(std::time::SystemTime::now());
        assert_lines(&m, &["wasmgate_nats_connected 0"]);
        assert!(stats.down_for(std::time::SystemTime::now()).is_some());
        stats.mark_up();
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
