//! Rust types for the wasmCloud `runtime.wasmcloud.dev/v1alpha1` kinds wasmgate admits, and for
//! wasmgate's own `wasmgate.dev/v1alpha1` Host.
//!
//! The wasmCloud types accept everything upstream's CRDs accept (see `tests/crd_compat.rs`); the
//! CRD YAML in `manifests/crds/` is generated from them by `wasmgate crds` and checked for drift.

mod host;
mod workload;

pub use host::*;
pub use workload::*;

use kube::CustomResourceExt;

/// The group of the upstream wasmCloud kinds.
pub const WASMCLOUD_GROUP: &str = "runtime.wasmcloud.dev";
/// The version of the upstream wasmCloud kinds.
pub const WASMCLOUD_VERSION: &str = "v1alpha1";
/// wasmgate's own API group (aggregated API).
pub const WASMGATE_GROUP: &str = "wasmgate.dev";
/// wasmgate's own API version.
pub const WASMGATE_VERSION: &str = "v1alpha1";

/// The CRDs for the three admitted kinds, in a stable order, as YAML documents.
pub fn crd_documents() -> Vec<(String, String)> {
    [Workload::crd(), WorkloadReplicaSet::crd(), WorkloadDeployment::crd()]
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let yaml = serde_saphyr::to_string(&crd).unwrap_or_default();
            (name, yaml)
        })
        .collect()
}
