//! The three admitted kinds, decoded from a review's object.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::components::WIT_ANNOTATION_PREFIX;
use crate::crd::{
    decode_object, Workload, WorkloadDeployment, WorkloadReplicaSet, WorkloadSpec, WASMCLOUD_GROUP,
};
use crate::resolve::DeploymentContext;

/// An object wasmgate admits.
#[derive(Clone, Debug)]
pub enum AdmittedObject {
    /// A Workload.
    Workload(Box<Workload>),
    /// A WorkloadReplicaSet (its template is resolved).
    ReplicaSet(Box<WorkloadReplicaSet>),
    /// A WorkloadDeployment (its template is resolved).
    Deployment(Box<WorkloadDeployment>),
}

/// The object does not decode as its kind.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {kind} {name:?}: {message}")]
pub struct ObjectError {
    /// The kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The decoder's message (names the field).
    pub message: String,
}

impl AdmittedObject {
    /// Decodes `raw` as `kind`; `Ok(None)` for kinds wasmgate does not handle.
    pub fn from_request(group: &str, kind: &str, raw: Value) -> Result<Option<Self>, ObjectError> {
        if group != WASMCLOUD_GROUP {
            return Ok(None);
        }
        let name = raw
            .pointer("/metadata/name")
            .or_else(|| raw.pointer("/metadata/generateName"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let err = |e: serde_json::Error| ObjectError {
            kind: kind.to_string(),
            name: name.clone(),
            message: e.to_string(),
        };
        Ok(Some(match kind {
            "Workload" => Self::Workload(Box::new(decode_object(raw).map_err(err)?)),
            "WorkloadReplicaSet" => Self::ReplicaSet(Box::new(decode_object(raw).map_err(err)?)),
            "WorkloadDeployment" => Self::Deployment(Box::new(decode_object(raw).map_err(err)?)),
            _ => return Ok(None),
        }))
    }

    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Workload(_) => "Workload",
            Self::ReplicaSet(_) => "WorkloadReplicaSet",
            Self::Deployment(_) => "WorkloadDeployment",
        }
    }

    /// The Workload spec to resolve (the template's for replica sets and deployments).
    pub fn spec(&self) -> &WorkloadSpec {
        match self {
            Self::Workload(w) => &w.spec,
            Self::ReplicaSet(rs) => &rs.spec.template.spec,
            Self::Deployment(d) => &d.spec.template.spec,
        }
    }

    /// JSON pointer of [`Self::spec`] within the object.
    pub fn spec_pointer(&self) -> &'static json_patch::jsonptr::Pointer {
        use json_patch::jsonptr::Pointer;
        match self {
            Self::Workload(_) => Pointer::from_static("/spec"),
            _ => Pointer::from_static("/spec/template/spec"),
        }
    }

    /// The object's `wit.wasmgate.dev/` annotations, plus the template's (object wins): the
    /// only ones the world lookup reads, so the others (kubectl's last-applied-configuration,
    /// as large as the object) are not copied for every review.
    pub fn wit_annotations(&self) -> BTreeMap<String, String> {
        let (meta, template) = match self {
            Self::Workload(w) => (&w.metadata, None),
            Self::ReplicaSet(rs) => (&rs.metadata, rs.spec.template.annotations.as_ref()),
            Self::Deployment(d) => (&d.metadata, d.spec.template.annotations.as_ref()),
        };
        template
            .into_iter()
            .chain(meta.annotations.as_ref())
            .flatten()
            .filter(|(k, _)| k.starts_with(WIT_ANNOTATION_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Deployment-level context for the static checks.
    pub fn deployment_context(&self) -> Option<DeploymentContext> {
        match self {
            Self::Deployment(d) => Some(DeploymentContext {
                deploy_policy: d.spec.deploy_policy.clone(),
                artifact_names: d
                    .spec
                    .artifacts
                    .iter()
                    .flatten()
                    .map(|a| a.name.clone())
                    .collect(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::crd::{WorkloadDeployment, WorkloadDeploymentSpec};

    use super::AdmittedObject;

    #[test]
    fn wit_annotations_are_the_objects_over_the_templates_and_nothing_else() {
        let mut d = WorkloadDeployment::new("orders", WorkloadDeploymentSpec::default());
        d.spec.template.annotations = Some(BTreeMap::from([
            ("wit.wasmgate.dev/api".to_string(), "template".to_string()),
            ("wit.wasmgate.dev/db".to_string(), "template".to_string()),
        ]));
        d.metadata.annotations = Some(BTreeMap::from([
            ("wit.wasmgate.dev/api".to_string(), "object".to_string()),
            (
                "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                "{}".to_string(),
            ),
        ]));
        let got = AdmittedObject::Deployment(Box::new(d)).wit_annotations();
        assert_eq!(
            got,
            BTreeMap::from([
                ("wit.wasmgate.dev/api".to_string(), "object".to_string()),
                ("wit.wasmgate.dev/db".to_string(), "template".to_string()),
            ])
        );
    }
}
