//! The admission webhook: AdmissionReview in, verdict (validate) or JSONPatch (mutate) out.
//!
//! Both paths decode the object, learn component worlds, and apply the defaults; the validating
//! path then resolves the *defaulted* spec, so it judges the object as the mutating webhook
//! leaves it, whichever order the apiserver runs them in.

mod object;

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use kube::core::admission::{AdmissionRequest, AdmissionReview, Operation};
use kube::core::DynamicObject;
use serde_json::{json, Value};

use crate::components::{ComponentRef, WorldResolver};
use crate::inventory::InventorySource;
use crate::policy::Policy;
use crate::resolve::{apply_defaults, resolve, Report, ResolveInput, SERVICE_KEY};

pub use object::{AdmittedObject, ObjectError};

/// Which webhook is being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `POST /validate`.
    Validate,
    /// `POST /mutate`.
    Mutate,
}

/// Shared state of the admission handlers.
pub struct Admission {
    /// Where component worlds come from.
    pub worlds: Arc<WorldResolver>,
    /// The host inventory.
    pub inventory: Arc<dyn InventorySource>,
    /// Resolution policy.
    pub policy: Arc<Policy>,
}

/// A request body that is not a usable AdmissionReview (answered with HTTP 400 and a Status).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON.
    #[error("malformed JSON: {0}")]
    Json(serde_json::Error),
    /// JSON, but not an AdmissionReview.
    #[error("not an admission.k8s.io/v1 AdmissionReview: {0}")]
    NotReview(String),
}

/// The outcome of one review, before it is written as an AdmissionReview.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Whether the request is admitted.
    pub allowed: bool,
    /// The denial message.
    pub message: Option<String>,
    /// Warnings for kubectl.
    pub warnings: Vec<String>,
    /// The JSONPatch (mutate only), empty when nothing changes.
    pub patch: Vec<json_patch::PatchOperation>,
    /// The resolver's report, when the object was resolved.
    pub report: Option<Report>,
}

impl Verdict {
    fn allow() -> Self {
        Self {
            allowed: true,
            message: None,
            warnings: Vec::new(),
            patch: Vec::new(),
            report: None,
        }
    }
}

/// Parses an AdmissionReview request body.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, ReviewError> {
    let value: Value = serde_json::from_slice(body).map_err(ReviewError::Json)?;
    if value.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
        return Err(ReviewError::NotReview(
            "kind is not AdmissionReview".to_string(),
        ));
    }
    let review: AdmissionReview<DynamicObject> =
        serde_json::from_value(value).map_err(|e| ReviewError::NotReview(e.to_string()))?;
    let request: AdmissionRequest<DynamicObject> = review
        .try_into()
        .map_err(|_| ReviewError::NotReview("the review has no request".to_string()))?;
    if request.uid.is_empty() {
        return Err(ReviewError::NotReview("request.uid is empty".to_string()));
    }
    Ok(request)
}

/// Writes the AdmissionReview response for `uid`.
pub fn review_response(uid: &str, verdict: &Verdict) -> Value {
    let mut response = json!({ "uid": uid, "allowed": verdict.allowed });
    if !verdict.allowed {
        response["status"] = json!({
            "code": 403,
            "message": verdict.message.clone().unwrap_or_default(),
        });
    }
    if !verdict.warnings.is_empty() {
        response["warnings"] = json!(verdict.warnings);
    }
    if !verdict.patch.is_empty() {
        let patch = serde_json::to_vec(&verdict.patch).unwrap_or_default();
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(patch));
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    })
}

/// Prefixes a path in a JSON patch.
fn prefix_patch(patch: json_patch::Patch, prefix: &str) -> Vec<json_patch::PatchOperation> {
    let prefix: json_patch::jsonptr::PointerBuf = prefix.parse().unwrap_or_default();
    patch
        .0
        .into_iter()
        .map(|mut op| {
            use json_patch::PatchOperation as P;
            let path = match &mut op {
                P::Add(o) => &mut o.path,
                P::Remove(o) => &mut o.path,
                P::Replace(o) => &mut o.path,
                P::Move(o) => &mut o.path,
                P::Copy(o) => &mut o.path,
                P::Test(o) => &mut o.path,
            };
            *path = prefix.concat(path);
            op
        })
        .collect()
}

impl Admission {
    /// Reviews one request.
    pub async fn review(&self, mode: Mode, req: &AdmissionRequest<DynamicObject>) -> Verdict {
        if matches!(req.operation, Operation::Delete | Operation::Connect)
            || req.sub_resource.as_deref().is_some_and(|s| !s.is_empty())
        {
            return Verdict::allow();
        }
        let Some(object) = req.object.as_ref() else {
            return Verdict::allow();
        };
        let raw = match serde_json::to_value(object) {
            Ok(v) => v,
            Err(e) => return self.undecodable(mode, format!("cannot read the object: {e}")),
        };
        let admitted = match AdmittedObject::from_request(&req.kind.group, &req.kind.kind, raw) {
            Ok(Some(o)) => o,
            Ok(None) => {
                tracing::warn!(kind = %req.kind.kind, group = %req.kind.group, "review for a kind wasmgate does not handle");
                let mut v = Verdict::allow();
                v.warnings.push(format!(
                    "wasmgate: {} ({}) is not a kind wasmgate checks; check the webhook's rules",
                    req.kind.kind,
                    if req.kind.group.is_empty() {
                        "core"
                    } else {
                        req.kind.group.as_str()
                    }
                ));
                return v;
            }
            Err(e) => return self.undecodable(mode, e.to_string()),
        };
        let namespace = req
            .namespace
            .clone()
            .or_else(|| object.metadata.namespace.clone())
            .unwrap_or_else(|| "default".to_string());
        self.review_object(mode, &namespace, &admitted).await
    }

    fn undecodable(&self, mode: Mode, message: String) -> Verdict {
        match mode {
            // The validating webhook denies; the mutating one has nothing to default.
            Mode::Mutate => Verdict::allow(),
            Mode::Validate => Verdict {
                allowed: false,
                message: Some(message),
                ..Verdict::allow()
            },
        }
    }

    /// Reviews a decoded object.
    pub async fn review_object(
        &self,
        mode: Mode,
        namespace: &str,
        obj: &AdmittedObject,
    ) -> Verdict {
        let spec = obj.spec();
        let mut components: Vec<ComponentRef<'_>> = spec
            .components
            .iter()
            .flatten()
            .map(|c| ComponentRef {
                name: &c.name,
                image: &c.image,
            })
            .collect();
        if let Some(s) = &spec.service {
            components.push(ComponentRef {
                name: SERVICE_KEY,
                image: &s.image,
            });
        }
        let annotations: BTreeMap<String, String> = obj.annotations();
        let worlds = self
            .worlds
            .worlds(namespace, &components, &annotations)
            .await;
        let defaulted = apply_defaults(spec, &worlds, &self.policy);

        match mode {
            Mode::Mutate => {
                let before = serde_json::to_value(spec).unwrap_or(Value::Null);
                let after = serde_json::to_value(&defaulted.spec).unwrap_or(Value::Null);
                let patch = prefix_patch(json_patch::diff(&before, &after), obj.spec_pointer());
                Verdict {
                    warnings: defaulted
                        .notes
                        .iter()
                        .map(|n| format!("wasmgate: {n}"))
                        .collect(),
                    patch,
                    ..Verdict::allow()
                }
            }
            Mode::Validate => {
                let snapshot = self.inventory.snapshot();
                let deployment = obj.deployment_context();
                let report = resolve(&ResolveInput {
                    namespace,
                    spec: &defaulted.spec,
                    worlds: &worlds,
                    hosts: &snapshot.hosts,
                    policy: &self.policy,
                    deployment: deployment.as_ref(),
                });
                let message = (!report.allowed()).then(|| report.denial_message());
                Verdict {
                    allowed: report.allowed(),
                    message,
                    warnings: report
                        .warnings
                        .iter()
                        .map(|w| format!("wasmgate: {}", w.message))
                        .collect(),
                    patch: Vec::new(),
                    report: Some(report),
                }
            }
        }
    }
}
