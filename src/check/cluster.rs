//! `--cluster`: the hosts of the cluster the kubeconfig points at, as `kubectl get hosts`
//! lists them (`hosts.wasmgate.dev/v1alpha1`, served by wasmgate's aggregated API).

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};

use crate::crd::{Host, WASMGATE_GROUP, WASMGATE_VERSION};

use super::CheckError;

/// Lists every Host through the kubeconfig's current context (`KUBECONFIG`, or
/// `~/.kube/config`, or the in-cluster service account).
pub async fn cluster_hosts() -> Result<Vec<Host>, CheckError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube::Client::try_default().await.map_err(|e| {
        CheckError(format!(
            "--cluster: cannot build a client from the kubeconfig: {e}"
        ))
    })?;
    let gvk = GroupVersionKind::gvk(WASMGATE_GROUP, WASMGATE_VERSION, "Host");
    let api: Api<DynamicObject> =
        Api::all_with(client, &ApiResource::from_gvk_with_plural(&gvk, "hosts"));
    let list = api.list(&ListParams::default()).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => CheckError(format!(
            "--cluster: the cluster does not serve hosts.{WASMGATE_GROUP}/{WASMGATE_VERSION} (is wasmgate's APIService registered and available?): {}",
            s.message
        )),
        e => CheckError(format!("--cluster: cannot list hosts.{WASMGATE_GROUP}: {e}")),
    })?;
    list.items
        .into_iter()
        .map(|obj| {
            let name = obj.metadata.name.clone().unwrap_or_default();
            serde_json::to_value(obj)
                .and_then(serde_json::from_value::<Host>)
                .map_err(|e| CheckError(format!("--cluster: Host {name:?}: {e}")))
        })
        .collect()
}
