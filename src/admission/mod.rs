//! The admission webhooks' protocol: an AdmissionReview in, the [`Engine`]'s verdict out, as an
//! AdmissionReview built with kube's admission types.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, Resource};
use serde::Deserialize;
use serde_json::value::RawValue;
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
/// The object under review is kept as the JSON text it arrived as: it is decoded once, straight
/// into its kind's type ([`AdmittedObject::from_json`]), never through a JSON tree or an
/// intermediate `DynamicObject`. `request.oldObject` is not read.
#[derive(Debug)]
pub struct Review {
    /// The request, without its `object` and `oldObject` (both always `None`).
    pub request: AdmissionRequest<ObjectText>,
    /// `request.object`, when the operation has one: a JSON object.
    pub object: Option<Box<RawValue>>,
}

/// Parses an AdmissionReview request body.
///
/// A well-formed review is read in one pass, the objects skipped over as text. Anything else
/// is read again the slow way (a JSON tree, then kube's types), which names the problem; so
/// every error is that path's, and every review it accepts is read as it reads it. The one
/// pass may accept a body the tree refuses only where the difference is in what wasmgate
/// never reads: an unknown field's value or `oldObject` (say, a number too large for an
/// `f64`), which it skips over without judging.
pub fn parse_review(body: &[u8]) -> Result<Review, ReviewError> {
    match parse_direct(body) {
        Some(review) => Ok(review),
        None => parse_via_tree(body),
    }
}

/// The JSON text of an object in a review, skipped over by the parser. It implements
/// [`Resource`] only because kube's `AdmissionReview<T>` asks it of `T`; nothing reads that.
#[derive(Debug, Clone)]
pub struct ObjectText {
    json: Box<RawValue>,
    meta: ObjectMeta,
}

impl<'de> Deserialize<'de> for ObjectText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|json| Self {
            json,
            meta: ObjectMeta::default(),
        })
    }
}

impl serde::Serialize for ObjectText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

impl Resource for ObjectText {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

/// The one-pass parse: `None` for anything but a well-formed review with a uid whose object,
/// when it has one, is a JSON object.
fn parse_direct(body: &[u8]) -> Option<Review> {
    // JSON is UTF-8: checked over the whole body, as the tree does (the one pass skips an
    // unknown field's bytes unchecked), and then each string need not be checked again.
    let body = std::str::from_utf8(body).ok()?;
    let review: AdmissionReview<ObjectText> = serde_json::from_str(body).ok()?;
    if review.types.kind != "AdmissionReview" {
        return None;
    }
    let mut request: AdmissionRequest<ObjectText> = review.try_into().ok()?;
    if request.uid.is_empty() {
        return None;
    }
    let object = request.object.take().map(|o| o.json);
    if object.as_ref().is_some_and(|o| !o.get().starts_with('{')) {
        return None;
    }
    request.old_object = None;
    Some(Review { request, object })
}

/// The slow parse, through a JSON tree: it says what is wrong with a body. A body it accepts
/// (a repeated field, which the tree takes the last of) is written out again as the tree holds
/// it and read by the one pass.
fn parse_via_tree(body: &[u8]) -> Result<Review, ReviewError> {
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
    let review = AdmissionReview::<DynamicObject>::deserialize(&value)
        .map_err(|e| ReviewError::NotReview(e.to_string()))?;
    let request: AdmissionRequest<DynamicObject> = review
        .try_into()
        .map_err(|_| ReviewError::NotReview("the review has no request".to_string()))?;
    if request.uid.is_empty() {
        return Err(ReviewError::NotReview("request.uid is empty".to_string()));
    }
    if let (Some(request), Some(object)) = (
        value.get_mut("request").and_then(Value::as_object_mut),
        object,
    ) {
        request.insert("object".to_string(), object);
    }
    let normalized = serde_json::to_vec(&value).map_err(ReviewError::Json)?;
    parse_direct(&normalized).ok_or_else(|| {
        ReviewError::NotReview("the review does not read back as one (a wasmgate bug)".into())
    })
}

/// The AdmissionReview that answers `request` with `verdict`, built with kube's admission
/// types: a denial carries HTTP 403 and the message, a mutation its JSONPatch (as Go `[]byte`).
pub fn review_response<T: Resource>(
    request: &AdmissionRequest<T>,
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
    req: &AdmissionRequest<ObjectText>,
    object: Option<&RawValue>,
) -> Verdict {
    if matches!(req.operation, Operation::Delete | Operation::Connect)
        || req.sub_resource.as_deref().is_some_and(|s| !s.is_empty())
    {
        return Verdict::allow();
    }
    let Some(raw) = object else {
        return Verdict::allow();
    };
    let admitted = match AdmittedObject::from_json(&req.kind.group, &req.kind.kind, raw.get()) {
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
        .or_else(|| admitted.namespace().map(str::to_string))
        .unwrap_or_else(|| "default".to_string());
    // A dry run is not stored: it teaches the remembered worlds nothing.
    engine
        .review_object(mode, &namespace, &admitted, !req.dry_run)
        .await
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::{json, Value};

    use super::{parse_direct, parse_review, parse_via_tree, Review};

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/webhooks/fixtures"));
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("webhooks/fixtures")
            .map(|e| e.expect("an entry").path())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let name = p.file_name().unwrap_or_default().to_string_lossy().into();
                (name, std::fs::read(&p).expect("a fixture"))
            })
            .collect()
    }

    /// A review as plain JSON, to compare two parses of it.
    fn as_json(review: &Review) -> (Value, Option<Value>) {
        let request = serde_json::to_value(&review.request).expect("a request serializes");
        let object = review
            .object
            .as_ref()
            .map(|o| serde_json::from_str(o.get()).expect("the object is JSON"));
        (request, object)
    }

    #[test]
    fn every_fixture_parses_as_the_tree_path_parses_it() {
        let mut direct = 0;
        for (name, body) in fixtures() {
            match (parse_review(&body), parse_via_tree(&body)) {
                (Ok(fast), Ok(slow)) => {
                    assert_eq!(as_json(&fast), as_json(&slow), "{name}");
                    // Well-formed reviews take the one-pass parse, or it would be dead code.
                    assert!(parse_direct(&body).is_some(), "{name}: read the slow way");
                    direct += 1;
                }
                (Err(fast), Err(slow)) => assert_eq!(fast.to_string(), slow.to_string(), "{name}"),
                (fast, slow) => panic!("{name}: {fast:?} but the tree path gives {slow:?}"),
            }
        }
        assert!(direct >= 10, "only {direct} fixtures parsed");
    }

    /// A minimal review of `object` (with these extra request fields).
    fn review_of(object: Value, extra: Value) -> Vec<u8> {
        let mut request = json!({
            "uid": "u1",
            "kind": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "kind": "Workload" },
            "resource": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "resource": "workloads" },
            "operation": "CREATE",
            "userInfo": { "username": "alice" },
            "object": object,
        });
        if let (Some(r), Some(e)) = (request.as_object_mut(), extra.as_object()) {
            r.extend(e.clone());
        }
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": request,
        }))
        .expect("JSON")
    }

    #[test]
    fn the_object_is_kept_as_text_and_the_old_object_is_not_read() {
        let object = json!({ "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "Workload",
            "metadata": { "name": "w" }, "spec": { "components": [] } });
        let body = review_of(
            object.clone(),
            json!({ "oldObject": { "any": ["thing", 1] } }),
        );
        let review = parse_direct(&body).expect("a well-formed review");
        assert_eq!(as_json(&review).1, Some(object));
        assert!(review.request.object.is_none() && review.request.old_object.is_none());
        assert_eq!(review.request.uid, "u1");
    }

    #[test]
    fn what_the_one_pass_parse_refuses_gets_the_tree_path_s_answer() {
        // Not an object, no uid, the wrong kind: the tree path's precise messages.
        for (body, message) in [
            (
                review_of(json!(5), json!({})),
                "request.object is not an object",
            ),
            (
                review_of(json!({}), json!({ "uid": "" })),
                "request.uid is empty",
            ),
            (
                b"{\"kind\":\"Pod\",\"request\":{}}".to_vec(),
                "kind is not AdmissionReview",
            ),
            (b"{\"kind\":".to_vec(), "malformed JSON"),
        ] {
            assert!(parse_direct(&body).is_none());
            let error = parse_review(&body).expect_err("refused");
            assert!(error.to_string().contains(message), "{error}");
        }
        // A repeated field: the direct parse refuses it, the tree path takes the last one.
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"a","uid":"b",
            "kind":{"group":"g","version":"v","kind":"K"},"resource":{"group":"g","version":"v","resource":"r"},
            "operation":"CREATE","userInfo":{},"object":null}}"#;
        assert!(parse_direct(body).is_none());
        let review = parse_review(body).expect("the tree path takes the last uid");
        assert_eq!(review.request.uid, "b");
        assert!(review.object.is_none());
        // Invalid UTF-8 in a field nobody reads: refused, as the tree refuses it.
        let mut bad = review_of(json!({}), json!({ "unknownField": "XX" }));
        let at = bad.windows(2).position(|w| w == b"XX").expect("the marker");
        bad[at] = 0xff;
        assert!(parse_direct(&bad).is_none());
        assert!(matches!(
            parse_review(&bad),
            Err(super::ReviewError::Json(_))
        ));
    }
}
