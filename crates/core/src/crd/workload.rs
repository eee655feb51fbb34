//! `Workload`, `WorkloadReplicaSet` and `WorkloadDeployment` (`runtime.wasmcloud.dev/v1alpha1`).

use std::collections::BTreeMap;

use kube_derive::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::omit_null;

/// A reference to an object in the same namespace, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[schemars(extend("x-kubernetes-map-type" = "atomic"))]
pub struct LocalObjectReference {
    /// Name of the referent.
    #[serde(default)]
    #[schemars(extend("default" = ""))]
    pub name: String,
}

/// A workload: components placed together on one wasmCloud host.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "runtime.wasmcloud.dev",
    version = "v1alpha1",
    kind = "Workload",
    doc = "Workload defines a set of WebAssembly components and services to run on wasmCloud hosts, with the configuration, volumes, and host interfaces they use.",
    plural = "workloads",
    shortname = "ww",
    namespaced,
    status = "WorkloadStatus",
    printcolumn = r#"{"name":"HOSTID","type":"string","jsonPath":".status.hostId"}"#,
    printcolumn = r#"{"name":"ENVIRONMENT","type":"string","jsonPath":".status.environment"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"AGE","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Exact label match against Host `metadata.labels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_selector: Option<BTreeMap<String, String>>,
    /// Pins the workload to the host with this `hostId` (skips selection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// Matches `Host.environment` (tenant scoping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The components of the workload, all placed on one host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<WorkloadComponent>>,
    /// Host plugin interfaces the components use, with their configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-validations" = [
        {
            "message": "hostInterfaces must not contain duplicate entries with the same namespace, package, name, and version",
            "rule": "self.all(x, self.exists_one(y, y.__namespace__ == x.__namespace__ && y.__package__ == x.__package__ && (has(y.name) ? y.name : '') == (has(x.name) ? x.name : '') && (has(y.version) ? y.version : '') == (has(x.version) ? x.version : '')))"
        },
        {
            "message": "at most one unnamed hostInterface is allowed per namespace:package; set a unique name to disambiguate multiple imports of the same package",
            "rule": "self.all(x, (has(x.name) && x.name != '') || self.filter(y, y.__namespace__ == x.__namespace__ && y.__package__ == x.__package__ && !(has(y.name) && y.name != '')).size() == 1)"
        }
    ]))]
    pub host_interfaces: Option<Vec<HostInterface>>,
    /// The long-running service component (the workload's "localhost").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<WorkloadService>,
    /// Volumes the components may mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<Vec<Volume>>,
    /// Kubernetes integration (a Service whose EndpointSlice the operator maintains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSpec>,
}

/// One component of a workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadComponent {
    /// Component name, unique within the workload.
    pub name: String,
    /// OCI image reference (or `artifact://<name>` in a deployment).
    pub image: String,
    /// A `kubernetes.io/dockerconfigjson` Secret for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<LocalObjectReference>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Warm instances kept between calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub pool_size: Option<i32>,
    /// Calls after which a warm instance is retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_invocations: Option<i32>,
    /// Concurrent calls per warm instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_concurrency: Option<i32>,
    /// Per-component resources: mounts, environment, config and egress policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_resources: Option<LocalResources>,
}

/// The workload's long-running service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadService {
    /// OCI image reference.
    pub image: String,
    /// A `kubernetes.io/dockerconfigjson` Secret for the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secret: Option<LocalObjectReference>,
    /// `Always`, `IfNotPresent` or `Never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Restarts allowed after an error exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<i32>,
    /// Resources: mounts, environment, config and egress policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_resources: Option<LocalResources>,
}

const ALLOWED_HOSTS_PATTERN: &str = r"^\*$|^([A-Za-z][A-Za-z0-9+.-]*://)(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?/?$|^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?$";
const ALLOWED_LOOKUPS_PATTERN: &str = r"^\*$|^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$|^[0-9A-Fa-f:.]+$";

/// Resources local to one component or the service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct LocalResources {
    /// Volume mounts (names refer to `spec.volumes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<VolumeMount>>,
    /// Environment variables, layered from literals, ConfigMaps and Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<ConfigLayer>,
    /// Low-level per-component configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// Egress allowlist; empty denies all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = ALLOWED_HOSTS_PATTERN)))]
    pub allowed_hosts: Option<Vec<String>>,
    /// DNS allowlist; empty denies all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = ALLOWED_LOOKUPS_PATTERN)))]
    pub allowed_ip_name_lookups: Option<Vec<String>>,
    /// Host loopback ports reachable through `host.wasmcloud.internal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^[0-9]{1,5}(/(tcp|udp|TCP|UDP))?$")))]
    pub allowed_host_loopback_ports: Option<Vec<String>>,
}

/// A volume mount.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// Name of a volume in `spec.volumes`.
    pub name: String,
    /// Where the volume appears inside the component.
    pub mount_path: String,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// Configuration layered from literals, ConfigMaps and Secrets (later wins).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct ConfigLayer {
    /// Literal values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// ConfigMaps whose `.data` is merged in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_from: Option<Vec<LocalObjectReference>>,
    /// Secrets whose `.data` is merged in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_from: Option<Vec<LocalObjectReference>>,
}

/// A host plugin interface declaration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct HostInterface {
    /// Routing label for `(implements <name>)` imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), regex(pattern = r"^[a-z0-9][a-z0-9-]*$"))]
    pub name: Option<String>,
    /// WIT namespace, e.g. `wasi`.
    #[schemars(length(max = 128))]
    pub namespace: String,
    /// WIT package, e.g. `keyvalue`.
    #[schemars(length(max = 128))]
    pub package: String,
    /// Interfaces of the package, e.g. `store`.
    #[schemars(length(min = 1))]
    pub interfaces: Vec<String>,
    /// Package version; unset matches any version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub version: Option<String>,
    /// Literal configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<BTreeMap<String, String>>,
    /// ConfigMaps merged into the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_from: Option<Vec<LocalObjectReference>>,
    /// Secrets merged into the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_from: Option<Vec<LocalObjectReference>>,
}

/// A volume: exactly one of `ephemeral` or `hostPath`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Volume name (a DNS-1123 label, unique).
    pub name: String,
    /// An empty directory living as long as the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral: Option<EphemeralVolume>,
    /// A path on the host machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolume>,
}

/// An empty-directory volume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
pub struct EphemeralVolume {}

/// A host path volume.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
pub struct HostPathVolume {
    /// Path on the host.
    pub path: String,
}

/// Kubernetes integration for a workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
pub struct KubernetesSpec {
    /// The Service routed to the workload's hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<KubernetesService>,
}

/// A Service reference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
pub struct KubernetesService {
    /// Service name.
    pub name: String,
}

/// A status condition (crossplane-style, as upstream).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Generation the condition was computed for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_transition_time: Option<String>,
    /// When the condition was last probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_probe_time: Option<String>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Status of a Workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Conditions: Config, HostSelection, Placement, Sync, Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The host the workload runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// The environment of that host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The id the host knows the workload by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_id: Option<String>,
}

/// The template a replica set stamps Workloads from (no `metadata` wrapper, as upstream).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
pub struct WorkloadReplicaTemplate {
    /// Annotations of created Workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels of created Workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// The Workload spec.
    pub spec: WorkloadSpec,
}

/// Replica counts of a replica set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
pub struct ReplicaSetStatusCounts {
    /// Desired replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<i32>,
    /// Existing replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<i32>,
    /// Ready replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready: Option<i32>,
    /// Unavailable replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<i32>,
}

/// A set of identical Workloads.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "runtime.wasmcloud.dev",
    version = "v1alpha1",
    kind = "WorkloadReplicaSet",
    doc = "WorkloadReplicaSet maintains a specified number of running Workload replicas; it is normally created and managed by a WorkloadDeployment.",
    plural = "workloadreplicasets",
    namespaced,
    status = "WorkloadReplicaSetStatus",
    printcolumn = r#"{"name":"REPLICAS","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
pub struct WorkloadReplicaSetSpec {
    /// Desired replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 1))]
    pub replicas: Option<i32>,
    /// The Workload template.
    pub template: WorkloadReplicaTemplate,
}

/// Status of a WorkloadReplicaSet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
pub struct WorkloadReplicaSetStatus {
    /// Conditions: ScaleUp, ScaleDown, Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Replica counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaSetStatusCounts>,
}

/// An artifact reference of a deployment (`image: artifact://<name>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentArtifact {
    /// Name used in `artifact://<name>`.
    pub name: String,
    /// The Artifact object.
    pub artifact_from: LocalObjectReference,
}

/// A rolled-out set of Workloads.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[kube(
    crates(kube_core = "::kube_core"),
    group = "runtime.wasmcloud.dev",
    version = "v1alpha1",
    kind = "WorkloadDeployment",
    doc = "WorkloadDeployment manages the deployment and scaling of a Workload across hosts, creating WorkloadReplicaSets to maintain the desired number of replicas.",
    plural = "workloaddeployments",
    namespaced,
    status = "WorkloadDeploymentStatus",
    scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.currentReplicas","labelSelectorPath":".status.selector"}"#,
    printcolumn = r#"{"name":"REPLICAS","type":"integer","jsonPath":".spec.replicas"}"#,
    printcolumn = r#"{"name":"READY","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDeploymentSpec {
    /// Desired replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 1))]
    pub replicas: Option<i32>,
    /// The Workload template.
    pub template: WorkloadReplicaTemplate,
    /// `RollingUpdate` (default) or `Recreate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "RollingUpdate"))]
    pub deploy_policy: Option<String>,
    /// Artifacts referenced as `artifact://<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<DeploymentArtifact>>,
    /// Kubernetes integration copied into the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesSpec>,
}

/// Status of a WorkloadDeployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = omit_null)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadDeploymentStatus {
    /// Conditions: Artifact, Sync, Deploy, Scale, Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// The current replica set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replica_set: Option<LocalObjectReference>,
    /// The previous replica set during a rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_replica_set: Option<LocalObjectReference>,
    /// Summed replica counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaSetStatusCounts>,
    /// Replicas (the scale status path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    /// Label selector (the scale selector path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}
