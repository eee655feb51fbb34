//! The reconciler's series (`wasmgate_unresolved_objects`, `wasmgate_reconcile_passes_total`,
//! `wasmgate_reconcile_duration_seconds`, `wasmgate_events_emitted_total`), registered in the
//! process's registry (see [`crate::platform::metrics`]).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::platform::metrics::ObjectKind;

/// Upper bounds (seconds) of the reconcile-pass buckets: 5 ms to a minute.
pub const RECONCILE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: ObjectKind,
}

/// The reconciler's series, set by the reconciler. Cheap to clone (the series are shared).
#[derive(Clone, Debug)]
pub struct ReconcileMetrics {
    unresolved: Family<KindLabels, Gauge>,
    passes: Counter,
    duration: Histogram,
    events: Counter,
}

impl ReconcileMetrics {
    /// Creates the series and registers them in a sub-registry of `registry` (no prefix of its
    /// own: the names predate the split, and `reconcile_` heads only two of them).
    pub fn register(registry: &mut Registry) -> Self {
        let me = Self {
            unresolved: Family::default(),
            passes: Counter::default(),
            duration: Histogram::new(RECONCILE_BUCKETS),
            events: Counter::default(),
        };
        let sub = registry.sub_registry_with_labels(std::iter::empty());
        sub.register(
            "unresolved_objects",
            "Objects that do not resolve against the current inventory, by kind (set by the reconciler)",
            me.unresolved.clone(),
        );
        sub.register(
            "reconcile_passes",
            "Reconcile passes finished",
            me.passes.clone(),
        );
        sub.register_with_unit(
            "reconcile_duration",
            "Duration of a reconcile pass",
            Unit::Seconds,
            me.duration.clone(),
        );
        sub.register(
            "events_emitted",
            "Kubernetes Events emitted by the reconciler",
            me.events.clone(),
        );
        me
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::metrics::testing::assert_lines;
    use crate::platform::metrics::Metrics;

    #[test]
    fn fresh_series() {
        let mut m = Metrics::new();
        let _r = ReconcileMetrics::register(m.registry());
        assert_lines(
            &m,
            &[
                "# TYPE wasmgate_reconcile_passes counter",
                "wasmgate_reconcile_passes_total 0",
                "wasmgate_events_emitted_total 0",
                "# TYPE wasmgate_reconcile_duration_seconds histogram",
                "# UNIT wasmgate_reconcile_duration_seconds seconds",
                "wasmgate_reconcile_duration_seconds_count 0",
            ],
        );
        // A family without a series yet is not exposed.
        assert!(!m.encode().unwrap().contains("wasmgate_unresolved_objects"));
    }

    #[test]
    fn reconcile_api() {
        let mut m = Metrics::new();
        let r = ReconcileMetrics::register(m.registry());
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
}
