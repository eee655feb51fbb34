//! Prometheus metrics, served as OpenMetrics text on `GET /metrics`.
//!
//! One [`Metrics`] registry is created in `wasmgate serve`; each part registers its own series
//! in a sub-registry of it while the process starts, keeps the handles it records into, and
//! the registry is then shared read-only (`Arc`) for scraping:
//! - the admission webhook: `crate::server::metrics::AdmissionMetrics`;
//! - the reconciler: `crate::reconcile::metrics::ReconcileMetrics`;
//! - the live inventory: [`register_inventory`] (read at scrape time; nothing is done per
//!   heartbeat beyond the ingestion counters [`IngestStats`] already keeps);
//! - [`Metrics::new`] itself: `build_info`.
//!
//! Every series is prefixed `wasmgate_`, and every label takes values from a fixed set (see
//! [`ObjectKind`]), so the number of series is bounded:
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

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::inventory::{IngestStats, LiveInventory};

/// The `Content-Type` of a `/metrics` response.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: &'static str,
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

/// The process's registry (prefix `wasmgate`). Register every part's series with
/// [`Metrics::registry`] before sharing it (`Arc<Metrics>`) for scraping.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry holding only `build_info`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("wasmgate");
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        // The registry ends each help text with a period.
        registry.register(
            "build_info",
            "Always 1; the version label is the running wasmgate's",
            build_info,
        );
        Self { registry }
    }

    /// The root registry, for a part to take its sub-registry from
    /// ([`Registry::sub_registry_with_prefix`], or [`Registry::sub_registry_with_labels`] with
    /// no labels for series named without a prefix of their own).
    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The OpenMetrics text exposition of every series (ends with `# EOF`).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Registers the live inventory's series (`hosts{ready}`, `heartbeats_total`,
/// `heartbeats_malformed_total`, `inventory_resource_version`), read from `inventory` and
/// `stats` at scrape time.
pub fn register_inventory(
    registry: &mut Registry,
    inventory: Arc<LiveInventory>,
    stats: Arc<IngestStats>,
) {
    registry
        .sub_registry_with_labels(std::iter::empty())
        .register_collector(Box::new(InventoryCollector { inventory, stats }));
}

/// Reading an exposition back, for the tests of every part's series.
#[cfg(test)]
pub(crate) mod testing {
    use super::Metrics;

    pub(crate) fn lines(m: &Metrics) -> Vec<String> {
        m.encode().unwrap().lines().map(String::from).collect()
    }

    #[track_caller]
    pub(crate) fn assert_lines(m: &Metrics, expected: &[&str]) {
        let got = lines(m);
        for line in expected {
            assert!(
                got.iter().any(|l| l == line),
                "missing line {line:?} in:\n{}",
                got.join("\n")
            );
        }
    }

    pub(crate) fn value(m: &Metrics, series: &str) -> Option<String> {
        lines(m).into_iter().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(String::from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::inventory::nats::ingest;
    use crate::inventory::LiveConfig;

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
            ],
        );
        // No part registered: nothing else is exposed.
        for absent in [
            "wasmgate_admission_requests",
            "wasmgate_unresolved_objects",
            "wasmgate_reconcile_passes",
            "wasmgate_hosts",
            "wasmgate_heartbeats",
        ] {
            assert!(!text.contains(absent), "{absent} in:\n{text}");
        }
    }

    #[test]
    fn inventory_series_are_read_at_scrape_time() {
        let inventory = LiveInventory::new(LiveConfig::default());
        let stats = Arc::new(IngestStats::default());
        let mut m = Metrics::new();
        register_inventory(m.registry(), inventory.clone(), stats.clone());
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
