//! The admission webhooks' protocol: an AdmissionReview in, the [`Engine`]'s verdict out, as an
//! AdmissionReview built with kube's admission types.

use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::DynamicObject;
use serde_json::Value;

use crate::engine::{AdmittedObject, Engine, Mode, Verdict};

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

/// A verdict that cannot be written as an AdmissionReview (answered with HTTP 500).
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the admission response: {0}")]
pub struct ResponseError(#[from] kube::core::admission::SerializePatchError);

/// One parsed AdmissionReview request.
///
/// The object under review is kept as the JSON it arrived as, taken out of the request before
/// the rest is decoded: it is decoded once, straight into its kind's type
/// ([`AdmittedObject::from_request`]), never through an intermediate `DynamicObject`.
#[derive(Debug)]
pub struct Review {
    /// The request, without its `object` (`request.object` is always `None`).
    pub request: AdmissionRequest<DynamicObject>,
    /// `request.object`, when the operation has one.
    pub object: Option<Value>,
}

/// Parses an AdmissionReview request body.
pub fn parse_review(body: &[u8]) -> Result<Review, ReviewError> {
    let mut value: Value = serde_json::from_slice(body).map_err(ReviewError::Json)?;
    if value.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
        return Err(ReviewError::NotReview(
            "kind is not AdmissionReview".to_string(),
        ));
    }
    let object = value
        .get_mut("request")
        .and_then(Value::as_object_mut)
        .and_then(|request| request.remove("object"))
        .filter(|object| !object.is_null());
    if object.as_ref().is_some_and(|o| !o.is_object()) {
        return Err(ReviewError::NotReview(
            "request.object is not an object".to_string(),
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
    Ok(Review { request, object })
}

/// The AdmissionReview that answers `request` with `verdict`, built with kube's admission
/// types: a denial carries HTTP 403 and the message, a mutation its JSONPatch (as Go `[]byte`).
pub fn review_response(
    request: &AdmissionRequest<DynamicObject>,
    verdict: &Verdict,
) -> Result<AdmissionReview<DynamicObject>, ResponseError> {
    let mut response = AdmissionResponse::from(request);
    if !verdict.allowed {
        response = response.deny(verdict.message.as_deref().unwrap_or_default());
        response.result.code = 403;
    }
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings.clone());
    }
    if !verdict.patch.is_empty() {
        response = response.with_patch(json_patch::Patch(verdict.patch.clone()))?;
    }
    Ok(response.into_review())
}

/// Reviews one request: `req` and its `object` as [`parse_review`] split them. Deletions,
/// subresources and kinds wasmgate does not check are allowed; the rest is the engine's.
pub async fn review(
    engine: &Engine,
    mode: Mode,
    req: &AdmissionRequest<DynamicObject>,
    object: Option<Value>,
) -> Verdict {
    if matches!(req.operation, Operation::Delete | Operation::Connect)
        || req.sub_resource.as_deref().is_some_and(|s| !s.is_empty())
    {
        return Verdict::allow();
    }
    let Some(raw) = object else {
        return Verdict::allow();
    };
    let object_namespace = raw
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|ns| !ns.is_empty())
        .map(str::to_string);
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
        Err(e) => return Verdict::undecodable(mode, e.to_string()),
    };
    let namespace = req
        .namespace
        .clone()
        .or(object_namespace)
        .unwrap_or_else(|| "default".to_string());
    // A dry run is not stored: it teaches the remembered worlds nothing.
    engine
        .review_object(mode, &namespace, &admitted, !req.dry_run)
        .await
}
