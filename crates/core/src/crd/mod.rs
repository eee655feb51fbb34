//! Rust types for the wasmCloud `runtime.wasmcloud.dev/v1alpha1` kinds wasmgate admits, and for
//! wasmgate's own `wasmgate.dev/v1alpha1` Host.
//!
//! The wasmCloud types accept everything upstream's CRDs accept: `tests/crd_compat.rs` compares
//! every field path of the generated CRDs with upstream's (test data in `tests/fixtures/upstream-crds/`). The
//! CRD YAML in `manifests/crds/` is [`crd_documents`], written and checked for drift by that test
//! (`WASMGATE_UPDATE_CRDS=1 cargo test --test crd_compat` regenerates it).
//!
//! Install CRDs from [`crds`] / [`crd_documents`], not from `Workload::crd()`: the derived CRD still
//! lacks upstream's top-level shape (see `schema.rs`).

mod host;
pub mod resolution;
mod schema;
mod shared;
mod workload;

pub use host::*;
pub use shared::SharedList;
pub use workload::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_core::CustomResourceExt;

/// The group of the upstream wasmCloud kinds.
pub const WASMCLOUD_GROUP: &str = "runtime.wasmcloud.dev";
/// The version of the upstream wasmCloud kinds.
pub const WASMCLOUD_VERSION: &str = "v1alpha1";
/// wasmgate's own API group (aggregated API).
pub const WASMGATE_GROUP: &str = "wasmgate.dev";
/// wasmgate's own API version.
pub const WASMGATE_VERSION: &str = "v1alpha1";

/// Whether `name` is a Kubernetes object name or namespace: a lowercase RFC 1123 subdomain
/// (dot-separated labels of `a-z`, `0-9` and `-`, each starting and ending alphanumeric, 253
/// characters at most).
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The CRDs for the three admitted kinds, in a stable order, shaped like upstream's.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = [
        Workload::crd(),
        WorkloadReplicaSet::crd(),
        WorkloadDeployment::crd(),
    ];
    for crd in &mut crds {
        schema::finish_crd(crd);
    }
    crds.into()
}

/// The CRDs of [`crds`] as (name, YAML document) pairs.
pub fn crd_documents() -> Vec<(String, String)> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let yaml = serde_saphyr::to_string(&crd).expect("a CRD serializes to YAML");
            (name, yaml)
        })
        .collect()
}

/// Decodes a stored object of one of the three admitted kinds (e.g. an AdmissionReview's
/// `object`) into its Rust type.
///
/// Upstream's CRDs make `spec` optional, so kube-apiserver accepts a Workload,
/// WorkloadReplicaSet or WorkloadDeployment without one; the derived root types require it. An
/// absent (or `null`) `spec` is read as an empty one: `{}` for a Workload, `{template: {spec: {}}}`
/// for the other two (nothing to resolve). Everything else decodes as `serde_json::from_value`.
pub fn decode_object<K>(mut raw: serde_json::Value) -> serde_json::Result<K>
where
    K: serde::de::DeserializeOwned + kube_core::Resource<DynamicType = ()>,
{
    if let Some(obj) = raw.as_object_mut() {
        if obj.get("spec").is_none_or(serde_json::Value::is_null) {
            let empty = if K::kind(&()) == "Workload" {
                serde_json::json!({})
            } else {
                serde_json::json!({ "template": { "spec": {} } })
            };
            obj.insert("spec".into(), empty);
        }
    }
    serde_json::from_value(raw)
}
