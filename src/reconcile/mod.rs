//! The lightweight reconciler: keeps what admission decided once true while hosts come and go.
//!
//! It watches Workloads, WorkloadReplicaSets and WorkloadDeployments (kube-runtime watchers),
//! learns each object's component worlds once per spec (the admission engine's `prepare`, so
//! the OCI cache is shared), and re-resolves — a pure, in-memory call — only the objects an
//! inventory change can affect ([`index`]). Results go to the `workloadresolutions` API
//! resource ([`crate::store::resolutions`]), to Events on the object when its verdict changes (leader only), and to
//! metrics.
//!
//! - [`core`]: the synchronous state machine (objects, index, host tracker), benchmarked alone;
//! - `run`: the async driver (watchers, inventory polling, Events).

pub mod core;
pub mod index;
pub mod metrics;
mod run;

pub use self::core::{ObjectKey, Outcome, ReconcileCore, TargetKind};
pub use metrics::ReconcileMetrics;
pub use run::{spawn, ReconcileArgs, ReconcilerHandle, ReconcilerParts};
