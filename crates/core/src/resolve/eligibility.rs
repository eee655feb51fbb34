//! Which hosts a workload may land on: Ready, then `hostId` or `hostSelector`, then the
//! operator's environment rules (wasmCloud digest section 4.1).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::crd::{Host, WorkloadSpec};
use crate::policy::Policy;

use super::hosts::TargetKey;
use super::report::{Code, Finding};

/// The eligible hosts and a phrase describing the targeting, for messages.
pub struct Eligibility<'h> {
    /// Hosts the operator could place the workload on.
    pub hosts: Vec<&'h Host>,
    /// e.g. `hosts matching hostSelector {hostgroup=default}`.
    pub description: String,
    /// A finding when the environment rules reject the workload outright.
    pub rejection: Option<Finding>,
}

/// How a spec targets hosts: what selects them, and how to say it.
pub(crate) struct Targeting {
    /// The selection (also the key of [`super::hosts::Hosts`]' memo).
    pub key: TargetKey,
    /// e.g. `hosts matching hostSelector {hostgroup=default}`.
    pub description: String,
    /// A finding when the environment rules reject the workload outright.
    pub rejection: Option<Finding>,
}

/// Computes the eligible hosts for `spec` in `namespace`.
pub fn eligible_hosts<'h>(
    spec: &WorkloadSpec,
    namespace: &str,
    hosts: &'h [Host],
    policy: &Policy,
) -> Eligibility<'h> {
    let t = targeting(spec, namespace, policy);
    Eligibility {
        hosts: hosts.iter().filter(|h| t.key.admits(h)).collect(),
        description: t.description,
        rejection: t.rejection,
    }
}

/// The targeting of `spec` in `namespace` under the operator's environment rules.
pub(crate) fn targeting(spec: &WorkloadSpec, namespace: &str, policy: &Policy) -> Targeting {
    let spec_env = spec.environment.as_deref().filter(|e| !e.is_empty());
    let mut rejection = None;
    // The operator's environment matrix.
    let env_filter: Option<&str> = match spec_env {
        Some(env) if env != namespace && !policy.allow_shared_hosts => {
            rejection = Some(Finding::new(
                Code::CrossEnvironment,
                format!(
                    "workload targets environment {env:?} outside its namespace {namespace:?}, and the operator runs with allowSharedHosts=false: it will never be scheduled; remove spec.environment or set it to {namespace:?}"
                ),
            ));
            Some(env)
        }
        Some(env) => Some(env),
        None if !policy.allow_shared_hosts => Some(namespace),
        None => None,
    };

    let host_id = spec.host_id.as_deref().filter(|h| !h.is_empty());
    let selector = spec.host_selector.clone().unwrap_or_default();
    let mut description = String::new();
    if let Some(id) = host_id {
        let _ = write!(description, "host with hostId {id}");
    } else if selector.is_empty() {
        description.push_str("Ready hosts");
    } else {
        let sel: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(
            description,
            "hosts matching hostSelector {{{}}}",
            sel.join(",")
        );
    }
    if let Some(env) = env_filter {
        let _ = write!(description, " in environment {env:?}");
    }
    Targeting {
        key: TargetKey {
            host_id: host_id.map(str::to_string),
            // hostId bypasses selection and the environment rule.
            selector: if host_id.is_some() {
                BTreeMap::new()
            } else {
                selector
            },
            environment: env_filter.filter(|_| host_id.is_none()).map(str::to_string),
        },
        description,
        rejection,
    }
}
