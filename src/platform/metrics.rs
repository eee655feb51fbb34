//! Prometheus metrics, served as OpenMetrics text on `GET /metrics`.
//!
//! One [`Metrics`] registry is created in `wasmgate serve`; each part registers its own series
//! in a sub-registry of it while the process starts, keeps the handles it records into, and
//! the registry is then shared read-only (`Arc`) for scraping:
//! - the admission webhook: `crate::server::metrics::AdmissionMetrics`;
//! - the reconciler: `crate::reconcile::metrics::ReconcileMetrics`;
//! - the live inventory: `crate::server::metrics::register_inventory` (read at scrape time;
//!   nothing is done per heartbeat beyond the ingestion counters the inventory already keeps);
//! - [`Metrics::new`] itself: `build_info`.
//!
//! Every series is prefixed `wasmgate_`, and every label takes values from a fixed set (see
//! [`ObjectKind`]), so the number of series is bounded:
//!
//! | series | type | labels |
//! |---|---|---|
//! | `admission_requests_total` | counter | `operation`, `kind`, `verdict` |
//! | `admission_denials_total` | counter | `operation`, `kind`, `code` (a finding code, `timeout`, `undecodable`) |
//! | `admission_duration_seconds` | histogram | `operation`, `verdict` |
//! | `hosts` | gauge | `ready` (`true`, `false`, `unknown`) |
//! | `heartbeats_total`, `heartbeats_malformed_total` | counter | |
//! | `inventory_resource_version` | gauge | |
//! | `unresolved_objects` | gauge | `kind` |
//! | `reconcile_passes_total`, `events_emitted_total` | counter | |
//! | `reconcile_duration_seconds` | histogram | |
//! | `build_info` | gauge (always 1) | `version` |
//! | `serving_certificate_expiry_timestamp_seconds` | gauge | |
//! | `leader` | gauge (1 while this replica leads) | |
//! | `nats_connected` | gauge (with `--nats-url`) | |

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

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

/// Reads the platform's state at scrape time: the served certificate's expiry and whether this
/// replica leads.
#[derive(Debug)]
struct PlatformCollector {
    leader: Option<tokio::sync::watch::Receiver<bool>>,
}

impl prometheus_client::collector::Collector for PlatformCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::gauge::ConstGauge;
        if let Some(not_after) = super::tls::served_certificate_not_after() {
            let gauge = ConstGauge::new(not_after);
            gauge.encode(encoder.encode_descriptor(
                "serving_certificate_expiry_timestamp_seconds",
                "When the serving certificate in use expires (Unix seconds).",
                None,
                gauge.metric_type(),
            )?)?;
        }
        // Without leader election this replica writes alone: it leads.
        let leading = self.leader.as_ref().is_none_or(|rx| *rx.borrow());
        let gauge = ConstGauge::new(i64::from(leading));
        gauge.encode(encoder.encode_descriptor(
            "leader",
            "1 while this replica holds the leader Lease (it alone writes certificates, Events and caBundles).",
            None,
            gauge.metric_type(),
        )?)
    }
}

/// Registers `serving_certificate_expiry_timestamp_seconds` and `leader` (from `leader`, the
/// leader election's flag; `None` without election), read at scrape time.
pub fn register_platform(
    registry: &mut Registry,
    leader: Option<tokio::sync::watch::Receiver<bool>>,
) {
    registry
        .sub_registry_with_labels(std::iter::empty())
        .register_collector(Box::new(PlatformCollector { leader }));
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
    fn leadership_and_certificate_expiry_are_read_at_scrape_time() {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let mut m = Metrics::new();
        register_platform(m.registry(), Some(rx));
        assert_lines(&m, &["# TYPE wasmgate_leader gauge", "wasmgate_leader 0"]);
        tx.send(true).unwrap();
        assert_lines(&m, &["wasmgate_leader 1"]);

        let certs = super::super::tls::issue::generate(&["localhost".into()]).unwrap();
        super::super::tls::note_served(certs.cert_pem.as_bytes());
        let (_, cert) = x509_parser::pem::parse_x509_pem(certs.cert_pem.as_bytes()).unwrap();
        let not_after = cert.parse_x509().unwrap().validity().not_after.timestamp();
        assert_lines(
            &m,
            &[&format!(
                "wasmgate_serving_certificate_expiry_timestamp_seconds {not_after}"
            )],
        );
    }
}
