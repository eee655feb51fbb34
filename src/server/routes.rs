//! Routes: `POST /validate`, `POST /mutate`, `/healthz`, `/livez`, `/readyz`, `/metrics`; every
//! error is a Kubernetes `Status` object.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument as _;

use super::metrics::{AdmissionMetrics, AdmissionVerdict, DenialCode};
use crate::admission::{self, parse_review, review_response, Review};
use crate::engine::{Engine, Mode, Verdict};
use crate::inventory::IngestStats;
use crate::platform::duration::{parse_duration, DurationError};
use crate::platform::metrics::{self, Metrics, ObjectKind};
use crate::platform::telemetry;
use crate::platform::tls::RequiredClientCa;
use axum::Extension;
use axum_server::tls::TlsInfo;

/// Largest AdmissionReview body accepted (kube-apiserver's own request limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// State shared by the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The admission engine.
    pub admission: Arc<Engine>,
    /// Set once the server is ready to serve.
    pub ready: Arc<AtomicBool>,
    /// Set when a stop signal came (see [`super::serve_tls`]): not ready any more.
    pub stopping: Arc<AtomicBool>,
    /// The process's metrics registry (`/metrics` serves it).
    pub metrics: Arc<Metrics>,
    /// The admission series (registered in `metrics`), recorded per request.
    pub admission_metrics: AdmissionMetrics,
    /// With `--nats-url`: the heartbeat connection `/readyz` also checks.
    pub nats: Option<NatsReadiness>,
    /// With `--webhook-client-ca`: the CA `/validate` and `/mutate` callers' certificates must
    /// chain to.
    pub webhook_client_ca: Option<Arc<RequiredClientCa>>,
}

/// `/readyz`'s NATS check: a replica whose heartbeat connection has been down longer than
/// `grace` sees every host Unknown and cannot admit anything, so it reports not ready and the
/// Service sends reviews to replicas that still hear the hosts.
#[derive(Clone, Debug)]
pub struct NatsReadiness {
    /// The ingestion's connection state.
    pub stats: Arc<IngestStats>,
    /// How long a disconnect is tolerated (hosts turn Unknown after half the heartbeat
    /// timeout).
    pub grace: Duration,
}

/// A Kubernetes `Status` failure response.
pub fn status_response(code: StatusCode, reason: &str, message: impl Into<String>) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message.into(),
        "reason": reason,
        "code": code.as_u16(),
    });
    (code, Json(body)).into_response()
}

#[derive(Deserialize)]
struct WebhookQuery {
    timeout: Option<String>,
}

/// The webhook timeouts kube-apiserver can send: `timeoutSeconds` is 1 to 30
/// (admissionregistration.k8s.io/v1 validation).
const TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Parses kube-apiserver's `?timeout=10s` (Go duration; seconds are all it sends), clamped to
/// what it can send, so a caller can neither overflow the deadline nor stretch it.
fn parse_timeout(s: &str) -> Option<Duration> {
    let parsed = match parse_duration(s) {
        Ok(d) => d,
        Err(DurationError::TooLarge { .. }) => TIMEOUT_RANGE.1,
        Err(_) => return None,
    };
    (!parsed.is_zero()).then(|| parsed.clamp(TIMEOUT_RANGE.0, TIMEOUT_RANGE.1))
}

/// Answers one webhook call and records it (`admission_requests_total`,
/// `admission_denials_total` when it denies, `admission_duration_seconds`, timed from the
/// handler's start, after the body is read).
async fn webhook(
    state: AppState,
    mode: Mode,
    query: WebhookQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (response, kind, verdict, denial) = match body {
        Ok(body) => handle(&state, mode, query, &headers, body, started).await,
        Err(r) => (
            rejection_response(r),
            ObjectKind::Other,
            AdmissionVerdict::Error,
            None,
        ),
    };
    state
        .admission_metrics
        .record(mode, kind, verdict, denial, started.elapsed());
    response
}

/// Why `verdict` (a denial) denies: the code of the resolver's first violation. A denial without
/// a report resolved nothing: the object did not decode as its kind (the mutating webhook's
/// "cannot compute the defaults", which no decoded spec is expected to reach, is counted there
/// too).
fn denial_code(verdict: &Verdict) -> DenialCode {
    verdict
        .report
        .as_ref()
        .and_then(|r| r.violations.first())
        .map_or(DenialCode::Undecodable, |f| DenialCode::Finding(f.code))
}

/// The response, the object's kind, the verdict (`Error` for a malformed request or a review
/// that ran out of time) and, when the answer denies, why.
async fn handle(
    state: &AppState,
    mode: Mode,
    query: WebhookQuery,
    headers: &HeaderMap,
    body: Bytes,
    started: Instant,
) -> (Response, ObjectKind, AdmissionVerdict, Option<DenialCode>) {
    let Review { request, object } = match parse_review(&body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "rejected a malformed admission request");
            let response = status_response(StatusCode::BAD_REQUEST, "BadRequest", e.to_string());
            return (response, ObjectKind::Other, AdmissionVerdict::Error, None);
        }
    };
    let kind = ObjectKind::from_kind(&request.kind.kind);
    // The review's trace span (exported with --otlp-endpoint; a DEBUG span, so never built
    // otherwise): a child of the apiserver's trace when it sent one.
    let span = tracing::debug_span!(
        "admission",
        otel.name = match mode {
            Mode::Validate => "POST /validate",
            Mode::Mutate => "POST /mutate",
        },
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        uid = %request.uid,
        kind = %request.kind.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = %request.name,
        operation = ?request.operation,
        dry_run = request.dry_run,
        allowed = tracing::field::Empty,
        denial = tracing::field::Empty,
    );
    telemetry::parent_from_headers(&span, headers);
    // Answer within the apiserver's deadline, leaving it a margin to receive the reply.
    let budget = query
        .timeout
        .as_deref()
        .and_then(parse_timeout)
        .unwrap_or(Duration::from_secs(10))
        .saturating_sub(Duration::from_millis(500))
        .max(Duration::from_millis(500));
    let (verdict, outcome, denial) = match tokio::time::timeout(
        budget,
        admission::review(&state.admission, mode, &request, object.as_deref())
            .instrument(span.clone()),
    )
    .await
    {
        Ok(v) if v.allowed => (v, AdmissionVerdict::Allowed, None),
        Ok(v) => {
            let code = denial_code(&v);
            (v, AdmissionVerdict::Denied, Some(code))
        }
        // Out of time, both webhooks deny (the apiserver retries nothing; the user applies
        // again): a mutation admitted without its patch would store an object without the
        // defaults that validation judged it with.
        Err(_) => (
            Verdict {
                allowed: false,
                message: Some(format!(
                    "wasmgate could not finish checking within {budget:?}; try again"
                )),
                warnings: vec![],
                patch: vec![],
                report: None,
            },
            AdmissionVerdict::Error,
            Some(DenialCode::Timeout),
        ),
    };
    span.record("allowed", verdict.allowed);
    if let Some(code) = denial {
        span.record("denial", code.as_str());
    }
    if outcome == AdmissionVerdict::Error {
        span.record("otel.status_code", "ERROR");
    }
    // Denials (and reviews that ran out of time) at INFO, admitted reviews at DEBUG: one line
    // per allowed review was a measurable share of the webhook's cost under load (issue 17),
    // and admission_requests_total counts them anyway.
    macro_rules! log_review {
        ($level:expr) => {
            tracing::event!(
                $level,
                uid = %request.uid,
                mode = ?mode,
                kind = %request.kind.kind,
                namespace = request.namespace.as_deref().unwrap_or(""),
                name = %request.name,
                operation = ?request.operation,
                dry_run = request.dry_run,
                allowed = verdict.allowed,
                message = verdict.message.as_deref().unwrap_or(""),
                patch_ops = verdict.patch.len(),
                warnings = verdict.warnings.len(),
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "admission review"
            )
        };
    }
    if verdict.allowed {
        log_review!(tracing::Level::DEBUG);
    } else {
        log_review!(tracing::Level::INFO);
    }
    match review_response(&request, &verdict) {
        Ok(review) => (Json(review).into_response(), kind, outcome, denial),
        Err(e) => {
            tracing::error!(uid = %request.uid, error = %e, "cannot encode an admission response");
            let response = status_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                e.to_string(),
            );
            // A Status error, not a denial.
            (response, kind, AdmissionVerdict::Error, None)
        }
    }
}

type Body = Result<Bytes, BytesRejection>;

fn rejection_response(rejection: BytesRejection) -> Response {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        status_response(
            status,
            "RequestEntityTooLarge",
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        )
    } else {
        status_response(status, "BadRequest", rejection.body_text())
    }
}

async fn validate(
    State(s): State<AppState>,
    tls: Option<Extension<Arc<TlsInfo>>>,
    Query(q): Query<WebhookQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = caller_allowed(&s, tls.as_deref()) {
        return refused;
    }
    webhook(s, Mode::Validate, q, headers, body).await
}

async fn mutate(
    State(s): State<AppState>,
    tls: Option<Extension<Arc<TlsInfo>>>,
    Query(q): Query<WebhookQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(refused) = caller_allowed(&s, tls.as_deref()) {
        return refused;
    }
    webhook(s, Mode::Mutate, q, headers, body).await
}

/// With `--webhook-client-ca`, only a caller whose client certificate chains to it (the
/// apiserver) may ask for a verdict: 401 otherwise, before the body is read.
#[allow(clippy::result_large_err)]
fn caller_allowed(s: &AppState, tls: Option<&Arc<TlsInfo>>) -> Result<(), Response> {
    let Some(ca) = &s.webhook_client_ca else {
        return Ok(());
    };
    let peer = tls.map(|t| t.peer_certificates.as_slice()).unwrap_or(&[]);
    ca.verify(peer).map_err(|why| {
        tracing::warn!(reason = %why, "webhook call refused: no accepted client certificate");
        status_response(StatusCode::UNAUTHORIZED, "Unauthorized", why)
    })
}

/// `GET /metrics`: OpenMetrics text. Unauthenticated like `/healthz`: expose it inside the
/// cluster only.
async fn serve_metrics(State(s): State<AppState>) -> Response {
    match s.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(e) => status_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("encoding metrics: {e}"),
        ),
    }
}

async fn live() -> &'static str {
    "ok"
}

async fn ready(State(s): State<AppState>) -> Response {
    if s.stopping.load(Ordering::Relaxed) {
        return status_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "not ready: shutting down",
        );
    }
    if !s.ready.load(Ordering::Relaxed) {
        return status_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "not ready: the inventory is warming up",
        );
    }
    if let Some(nats) = &s.nats {
        if let Some(down) = nats
            .stats
            .down_for(std::time::SystemTime::now())
            .filter(|down| *down > nats.grace)
        {
            return status_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!(
                    "not ready: the NATS heartbeat connection has been down for {}s (hosts are Unknown)",
                    down.as_secs()
                ),
            );
        }
    }
    "ok".into_response()
}

async fn not_found() -> Response {
    status_response(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// A method the path does not serve: 405 with a `Status`, like every other error.
async fn wrong_method(method: axum::http::Method) -> Response {
    status_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!("the server does not allow this method on the requested resource ({method})"),
    )
}

/// The application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/validate", post(validate).fallback(wrong_method))
        .route("/mutate", post(mutate).fallback(wrong_method))
        .route("/healthz", get(live).fallback(wrong_method))
        .route("/livez", get(live).fallback(wrong_method))
        .route("/readyz", get(ready).fallback(wrong_method))
        .route("/metrics", get(serve_metrics).fallback(wrong_method))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::{denial_code, parse_timeout, DenialCode};
    use crate::engine::{Mode, Verdict};
    use crate::resolve::{Code, Finding, Report};
    use std::time::Duration;

    #[test]
    fn a_denial_is_counted_under_its_first_violation() {
        let report = Report {
            violations: vec![
                Finding::new(Code::NoEligibleHost, "no host"),
                Finding::new(Code::UnresolvedImport, "nothing provides it"),
            ],
            warnings: vec![Finding::new(Code::UncalledExport, "unused")],
            ..Report::default()
        };
        let denied = Verdict {
            allowed: false,
            message: Some(report.denial_message()),
            report: Some(report.into()),
            ..Verdict::allow()
        };
        assert_eq!(
            denial_code(&denied),
            DenialCode::Finding(Code::NoEligibleHost)
        );
        assert_eq!(denial_code(&denied).as_str(), "no-eligible-host");
        // Nothing was resolved: the object did not decode.
        let undecodable = Verdict::undecodable(Mode::Validate, "bad spec".into());
        assert!(!undecodable.allowed);
        assert_eq!(denial_code(&undecodable), DenialCode::Undecodable);
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_timeout("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("bogus"), None);
        assert_eq!(parse_timeout("-1s"), None);
    }

    #[test]
    fn timeouts_are_clamped_to_what_the_apiserver_sends() {
        // Once a panic (Duration::from_secs_f64 overflow), now the upper bound.
        let huge = format!("{}s", "9".repeat(400));
        assert_eq!(parse_timeout(&huge), Some(Duration::from_secs(30)));
        // Not Go's syntax (nor anything kube-apiserver sends): the default timeout.
        assert_eq!(parse_timeout("1e300s"), None);
        assert_eq!(parse_timeout("3600s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_timeout("1ms"), Some(Duration::from_secs(1)));
        assert_eq!(parse_timeout("NaNs"), None);
    }
}
