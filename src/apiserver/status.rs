//! Kubernetes `Status` errors of the aggregated API, with the reasons and messages kube-apiserver
//! uses (kubectl prints `Error from server (<reason>): <message>`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};

use super::{GROUP, RESOURCE};

/// A failed API request, rendered as a `Status` object with the matching HTTP code.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status (and `Status.code`).
    pub code: StatusCode,
    /// `Status.reason`, e.g. `NotFound`.
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when the error is about one object.
    pub details: Option<Value>,
}

impl ApiError {
    /// An error without details.
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_name(mut self, name: &str) -> Self {
        self.details = Some(json!({"name": name, "group": GROUP, "kind": RESOURCE}));
        self
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    /// 403 Forbidden, phrased as kube-apiserver phrases RBAC denials.
    pub fn forbidden(message: impl Into<String>, name: Option<&str>) -> Self {
        let e = Self::new(StatusCode::FORBIDDEN, "Forbidden", message);
        match name {
            Some(n) => e.with_name(n),
            None => Self {
                details: Some(json!({"group": GROUP, "kind": RESOURCE})),
                ..e
            },
        }
    }

    /// 404 NotFound for a host.
    pub fn not_found(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{RESOURCE}.{GROUP} \"{name}\" not found"),
        )
        .with_name(name)
    }

    /// 404 for a path this server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(accept: &str) -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            format!(
                "the server was unable to respond with a content type that the client supports \
                 (Accept: {accept}); it serves application/json"
            ),
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{RESOURCE}.{GROUP} \"{name}\" already exists"),
        )
        .with_name(name)
    }

    /// 409 Conflict (stale resourceVersion on update).
    pub fn conflict(name: &str, why: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on {RESOURCE}.{GROUP} \"{name}\": {why}"),
        )
        .with_name(name)
    }

    /// 410 Gone with reason Expired (too old resourceVersion, expired continue token).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message)
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format: {content_type}"),
        )
    }

    /// 422 Invalid, for one object (`name` may be empty), with per-field causes.
    pub fn invalid(name: &str, causes: Vec<(String, String)>) -> Self {
        let summary = causes
            .iter()
            .map(|(field, msg)| format!("{field}: {msg}"))
            .collect::<Vec<_>>()
            .join(", ");
        let shown = if name.is_empty() { "<unnamed>" } else { name };
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("Host.{GROUP} \"{shown}\" is invalid: {summary}"),
        );
        e.details = Some(json!({
            "name": name,
            "group": GROUP,
            "kind": "Host",
            "causes": causes.iter().map(|(field, msg)| json!({
                "reason": "FieldValueInvalid", "message": msg, "field": field,
            })).collect::<Vec<_>>(),
        }));
        e
    }

    /// 422 Invalid for a query parameter combination (kube's wording for watch options).
    pub fn invalid_options(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message)
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message,
        )
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if let Some(d) = &self.details {
            body["details"] = d.clone();
        }
        body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.as_u16(),
            self.reason,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json_body(&self.to_status());
        let mut resp = (self.code, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// A handler result.
pub type ApiResult<T> = Result<T, ApiError>;

/// An object that could not be turned into JSON for a response.
#[derive(Debug, thiserror::Error)]
#[error("encoding {what} as JSON: {source}")]
pub struct EncodeError {
    /// What was being encoded (e.g. `Host "h1"`).
    pub what: String,
    /// serde_json's reason.
    #[source]
    pub source: serde_json::Error,
}

/// `value` as JSON, or an [`EncodeError`] naming `what`.
pub fn encode<T: Serialize + ?Sized>(
    what: impl FnOnce() -> String,
    value: &T,
) -> Result<Value, EncodeError> {
    serde_json::to_value(value).map_err(|source| EncodeError {
        what: what(),
        source,
    })
}

/// `value` as JSON bytes (without an intermediate `Value`), or an [`EncodeError`] naming `what`.
pub fn encode_bytes<T: Serialize + ?Sized>(
    what: impl FnOnce() -> String,
    value: &T,
) -> Result<Vec<u8>, EncodeError> {
    serde_json::to_vec(value).map_err(|source| EncodeError {
        what: what(),
        source,
    })
}

/// The bytes of a JSON value. Infallible by construction: a `Value`'s keys are strings and its
/// numbers finite, so writing it into a `String` cannot fail (its `Display` is the serializer).
pub fn json_body(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

impl From<EncodeError> for ApiError {
    /// A 500 InternalError: the object is stored but cannot be shown. Logged here, where the
    /// request learns of it, so that no such failure goes unseen.
    fn from(e: EncodeError) -> Self {
        tracing::error!(error = %e, "a response could not be encoded");
        ApiError::internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_shape() {
        let s = ApiError::not_found("h9").to_status();
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["apiVersion"], "v1");
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["message"], "hosts.wasmgate.dev \"h9\" not found");
        assert_eq!(s["details"]["name"], "h9");
        assert_eq!(s["details"]["group"], "wasmgate.dev");
        assert_eq!(s["details"]["kind"], "hosts");
    }

    #[test]
    fn invalid_lists_causes() {
        let s = ApiError::invalid("h", vec![("metadata.name".into(), "Required value".into())])
            .to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(
            s["message"],
            "Host.wasmgate.dev \"h\" is invalid: metadata.name: Required value"
        );
        assert_eq!(s["details"]["causes"][0]["field"], "metadata.name");
    }
}
