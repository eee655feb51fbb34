//! wasmgate's `Host` (`wasmgate.dev/v1alpha1`): a superset of upstream's Host at the same paths,
//! plus the interface lists the heartbeat carries. Served by the aggregated API and read from
//! inventory files.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// A wasmCloud host as wasmgate knows it from its heartbeats.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    /// Always `wasmgate.dev/v1alpha1`.
    #[serde(default)]
    pub api_version: String,
    /// Always `Host`.
    #[serde(default)]
    pub kind: String,
    /// Name is the heartbeat's friendly name; labels are the host's labels (with `hostgroup`).
    #[serde(default)]
    #[schemars(skip)]
    pub metadata: ObjectMeta,
    /// The host's UUID.
    #[serde(default)]
    pub host_id: String,
    /// Hostname (the pod IP for chart-deployed hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The host's HTTP port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_port: Option<u32>,
    /// The host's environment (the pod namespace in-cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Observed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<HostStatus>,
}

/// Observed state of a host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// Host runtime version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Operating system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_name: Option<String>,
    /// CPU architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_arch: Option<String>,
    /// OS family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_kernel: Option<String>,
    /// CPU usage in percent, as a string (upstream's shape).
    #[serde(
        default,
        rename = "systemCPUUsage",
        skip_serializing_if = "Option::is_none"
    )]
    pub system_cpu_usage: Option<String>,
    /// Total memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_memory_total: Option<i64>,
    /// Free memory in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_memory_free: Option<i64>,
    /// Components running on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_count: Option<i64>,
    /// Workloads on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_count: Option<i64>,
    /// Last heartbeat time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// When the host started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    // The conditions and both interface lists are shared (`SharedList`): hosts of one build
    // list the same plugins, hosts that turned Ready in the same second have equal conditions,
    // and the live inventory keeps one copy of each. (Not in the doc comments, which are the
    // published schema's descriptions.)
    /// Conditions: Reporting, Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<ConditionList>,
    /// Interfaces the host's plugins provide to components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imports: Option<InterfaceList>,
    /// Interfaces the host's plugins call on components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exports: Option<InterfaceList>,
}

/// A host's list of plugin interfaces: immutable and shared by reference, so thousands of hosts
/// that run the same plugins hold one copy (the live inventory interns them). Serialized as the
/// plain list.
pub type InterfaceList = super::SharedList<HostWitInterface>;

/// A host's conditions, shared like [`InterfaceList`].
pub type ConditionList = super::SharedList<Condition>;

/// One WIT package's interfaces, as a heartbeat lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct HostWitInterface {
    /// WIT namespace.
    pub namespace: String,
    /// WIT package.
    pub package: String,
    /// Version; unset means the plugin accepts any version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Interfaces of the package.
    #[serde(default)]
    pub interfaces: Vec<String>,
    /// Named instance, when the plugin serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Host {
    /// The Ready condition's status (`True`, `False`, `Unknown`), if any.
    pub fn ready_status(&self) -> Option<&str> {
        self.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.as_str())
    }

    /// Labels, empty when unset.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.metadata.labels.clone().unwrap_or_default()
    }
}
