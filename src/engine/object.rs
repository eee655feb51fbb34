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

    /// [`Self::from_request`] from the object's JSON text, decoded straight into its kind's
    /// type without building a JSON tree first. What does not decode that way (a missing or
    /// null `spec`, which the tree path fills in; a repeated field, which it takes the last of;
    /// any error) goes the tree path, so the object and every error are exactly
    /// [`Self::from_request`]'s.
    pub fn from_json(group: &str, kind: &str, json: &str) -> Result<Option<Self>, ObjectError> {
        if group != WASMCLOUD_GROUP {
            return Ok(None);
        }
        let direct = match kind {
            "Workload" => serde_json::from_str(json).map(|w| Self::Workload(Box::new(w))),
            "WorkloadReplicaSet" => {
                serde_json::from_str(json).map(|rs| Self::ReplicaSet(Box::new(rs)))
            }
            "WorkloadDeployment" => {
                serde_json::from_str(json).map(|d| Self::Deployment(Box::new(d)))
            }
            _ => return Ok(None),
        };
        if let Ok(obj) = direct {
            return Ok(Some(obj));
        }
        let raw: Value = serde_json::from_str(json).map_err(|e| ObjectError {
            kind: kind.to_string(),
            name: String::new(),
            message: e.to_string(),
        })?;
        Self::from_request(group, kind, raw)
    }

    /// The namespace in the object's metadata, if it names one.
    pub fn namespace(&self) -> Option<&str> {
        let meta = match self {
            Self::Workload(w) => &w.metadata,
            Self::ReplicaSet(rs) => &rs.metadata,
            Self::Deployment(d) => &d.metadata,
        };
        meta.namespace.as_deref().filter(|ns| !ns.is_empty())
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

    /// Both decodings of `object` as `kind`, as text to compare.
    fn both(kind: &str, object: &serde_json::Value) -> (String, String) {
        let group = crate::crd::WASMCLOUD_GROUP;
        let direct = AdmittedObject::from_json(group, kind, &object.to_string());
        let tree = AdmittedObject::from_request(group, kind, object.clone());
        (format!("{direct:?}"), format!("{tree:?}"))
    }

    #[test]
    fn the_direct_decoding_is_the_tree_decoding() {
        use serde_json::json;
        let fixtures =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/webhooks/fixtures"));
        let mut decoded = 0;
        for entry in std::fs::read_dir(fixtures).expect("webhooks/fixtures") {
            let path = entry.expect("an entry").path();
            let Ok(review) = serde_json::from_slice::<serde_json::Value>(
                &std::fs::read(&path).expect("a fixture"),
            ) else {
                continue;
            };
            let (Some(kind), Some(object)) = (
                review
                    .pointer("/request/kind/kind")
                    .and_then(|k| k.as_str()),
                review.pointer("/request/object").filter(|o| o.is_object()),
            ) else {
                continue;
            };
            let (direct, tree) = both(kind, object);
            assert_eq!(direct, tree, "{}", path.display());
            decoded += 1;
        }
        assert!(decoded >= 10, "only {decoded} fixtures decoded");
        // What the direct decoding refuses: the tree path's object or error.
        let meta = json!({ "name": "w", "namespace": "team" });
        for (kind, object) in [
            ("Workload", json!({ "metadata": meta })),
            ("Workload", json!({ "metadata": meta, "spec": null })),
            ("WorkloadReplicaSet", json!({ "metadata": meta })),
            (
                "WorkloadDeployment",
                json!({ "metadata": meta, "spec": null }),
            ),
            (
                "Workload",
                json!({ "metadata": meta, "spec": { "components": 5 } }),
            ),
        ] {
            let (direct, tree) = both(kind, &object);
            assert_eq!(direct, tree, "{kind} {object}");
        }
        let missing_spec = AdmittedObject::from_json(
            crate::crd::WASMCLOUD_GROUP,
            "Workload",
            r#"{"metadata":{"name":"w","namespace":"team"}}"#,
        );
        let obj = missing_spec.expect("decodes").expect("a Workload");
        assert_eq!(obj.namespace(), Some("team"));
        assert_eq!(*obj.spec(), crate::crd::WorkloadSpec::default());
    }

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
