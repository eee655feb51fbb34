//! The lightweight reconciler: keeps what admission decided once true while hosts come and go.
//!
//! It watches Workloads, WorkloadReplicaSets and WorkloadDeployments, re-resolves the objects an
//! inventory change can affect, and reports through the `workloadresolutions` API resource,
//! Events and metrics. Writes to the cluster happen on the elected leader only.

pub mod certs;
pub mod leader;
