//! Logs and traces: the process's `tracing` subscriber.
//!
//! Logs go to stderr (text or JSON lines, `RUST_LOG` filters them, INFO by default). Traces are
//! off unless `--otlp-endpoint` (or `OTEL_EXPORTER_OTLP_ENDPOINT`) names an OTLP/HTTP collector:
//! then wasmgate's spans (one per admission review, tied to its uid; one per registry request)
//! are exported in batches from a background thread, with the standard `OTEL_*` variables
//! honoured (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`). The spans are DEBUG spans, so that with traces
//! off (and `RUST_LOG` at INFO) they are never built: the request path pays nothing.
//!
//! kube-apiserver sends a W3C `traceparent` header with webhook calls when its own tracing is
//! on; [`parent_from_headers`] makes the admission span a child of that trace.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, HeaderName};
use clap::Args;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `wasmgate serve`'s trace export flags.
#[derive(Args, Clone, Debug, Default)]
pub struct TelemetryArgs {
    /// Export traces to this OTLP/HTTP collector (its base URL, e.g. http://otel-collector:4318;
    /// spans go to its /v1/traces): one span per admission review (attribute `uid`, the
    /// AdmissionReview's) and per registry request. Off when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
}

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The endpoint is not an http(s) URL.
    #[error("--otlp-endpoint {0:?}: not an http:// or https:// URL")]
    Endpoint(String),
    /// The exporter could not be built.
    #[error("--otlp-endpoint: cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

/// Whether spans are exported (set once by [`init`]).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether traces are exported: callers skip work that only traces need (header parsing).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes it.
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter (call outside any async
    /// runtime, after the command has finished).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "trace export did not finish cleanly");
            }
        }
    }
}

/// The OTLP/HTTP traces URL of a collector's base URL.
fn traces_url(base: &str) -> Result<String, TelemetryError> {
    let trimmed = base.trim().trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        || trimmed.len() <= "https://".len()
    {
        return Err(TelemetryError::Endpoint(base.to_string()));
    }
    Ok(format!("{trimmed}/v1/traces"))
}

/// Installs the process's subscriber: logs in `format` to stderr and, with an OTLP endpoint,
/// trace export. Call once, before any async runtime starts (the exporter's HTTP client is a
/// blocking one, on the batch processor's own thread).
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Telemetry, TelemetryError> {
    use std::io::IsTerminal as _;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::stderr().is_terminal();
    let Some(endpoint) = otlp_endpoint.filter(|e| !e.trim().is_empty()) else {
        // Without traces the filter is global, so what it rejects (DEBUG spans, and events
        // below INFO) is never built.
        let logs = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(std::io::stderr);
        match format {
            LogFormat::Json => logs.json().init(),
            LogFormat::Text => logs.init(),
        }
        return Ok(Telemetry::default());
    };
    // The exporter's HTTP client (reqwest, rustls without a built-in provider) uses the
    // process's provider: ring, as everywhere else.
    super::tls::install_crypto_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url(endpoint)?)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("wasmgate");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    // Each layer with its own filter: the logs as without traces; the exporter takes
    // wasmgate's spans (DEBUG included) and its events at INFO and above, as span events.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("wasmgate"))
        .with_filter(filter_fn(|meta| {
            meta.target().starts_with("wasmgate")
                && (meta.is_span() || *meta.level() <= tracing::Level::INFO)
        }));
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Json => logs.json().boxed(),
        LogFormat::Text => logs.boxed(),
    };
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(traces)
        .init();
    EXPORTING.store(true, Ordering::Relaxed);
    tracing::info!(endpoint, "exporting traces over OTLP/HTTP");
    Ok(Telemetry {
        provider: Some(provider),
    })
}

/// Reads W3C trace context from HTTP headers.
struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Makes `span` a child of the trace the caller sent (`traceparent`/`tracestate`), when traces
/// are exported and the caller sent one.
pub fn parent_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    if !exporting() || !headers.contains_key("traceparent") {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    // Fails only for a span that is already entered or disabled: then it keeps its own trace.
    let _ = span.set_parent(parent);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_go_to_the_collector_s_v1_traces() {
        assert_eq!(
            traces_url("http://collector:4318").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url(" https://c.example/otlp/ ").unwrap(),
            "https://c.example/otlp/v1/traces"
        );
        for bad in ["collector:4318", "grpc://c:4317", "http://", ""] {
            assert!(
                matches!(traces_url(bad), Err(TelemetryError::Endpoint(_))),
                "{bad}"
            );
        }
    }
}
