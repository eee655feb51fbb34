//! Trace export (`--otlp-endpoint`) into a real collector: Jaeger v2 (an OpenTelemetry
//! Collector with the OTLP/HTTP receiver and in-memory storage, built from its Go module by
//! `scripts/build-jaeger.sh` and cached), read back through Jaeger's query API.
//!
//! - An AdmissionReview sent with a W3C `traceparent` (as kube-apiserver sends one when its own
//!   tracing is on) gives a span `POST /validate` in that trace, a child of the caller's span,
//!   carrying the review's uid, kind, name, namespace, operation and verdict; the registry
//!   requests its component world needed (`registry resolve`, `registry pull`, against a real
//!   docker-registry) are its children, with the image and the digest.
//! - A review without `traceparent` starts a trace of its own, found by its uid; its world now
//!   comes from the cache, so it has no registry spans.
//! - The server logs at WARN meanwhile: the spans are DEBUG spans, exported without being
//!   logged.
//!
//! Skips (loudly) when Go is missing and WASMGATE_SKIP_E2E=1; under CI=true it must run.
//! `WASMGATE_JAEGER_BIN=DIR` uses the jaeger in DIR instead of the script.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::registry::Registry;
use common::{build_component, free_port, Server};
use support::{announce, e2e_required};

/// The directory holding `jaeger` (scripts/build-jaeger.sh). `None`: skip.
fn jaeger_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WASMGATE_JAEGER_BIN") {
        return Some(PathBuf::from(dir));
    }
    let skip = std::env::var("WASMGATE_SKIP_E2E")
        .is_ok_and(|v| ["1", "true", "yes"].contains(&v.as_str()));
    if skip && !e2e_required() {
        announce("\ntracing: SKIPPED the trace export test (WASMGATE_SKIP_E2E=1)\n");
        return None;
    }
    Some(support::cached_tool_dir("build-jaeger.sh", "jaeger"))
}

/// A running Jaeger: OTLP/HTTP in, query API out, traces in memory. Killed on drop.
struct Jaeger {
    child: Child,
    otlp: u16,
    query: u16,
    log: PathBuf,
}

impl Drop for Jaeger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Jaeger {
    fn start(bin: &Path, dir: &Path) -> Jaeger {
        let (otlp, query, query_grpc) = (free_port(), free_port(), free_port());
        let config = dir.join("jaeger.yaml");
        std::fs::write(
            &config,
            format!(
                "service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp}
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"
            ),
        )
        .expect("write jaeger.yaml");
        let log = dir.join("jaeger.log");
        let child = Command::new(bin.join("jaeger"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::create(dir.join("jaeger.err")).expect("log"))
            .spawn()
            .expect("start jaeger");
        let mut jaeger = Jaeger {
            child,
            otlp,
            query,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !(listening(otlp) && listening(query)) {
            if let Ok(Some(status)) = jaeger.child.try_wait() {
                panic!("jaeger exited: {status}\n{}", jaeger.logs(dir));
            }
            assert!(
                Instant::now() < deadline,
                "jaeger did not listen\n{}",
                jaeger.logs(dir)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        jaeger.log = dir.to_path_buf();
        jaeger
    }

    fn logs(&self, dir: &Path) -> String {
        ["jaeger.log", "jaeger.err"]
            .iter()
            .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// GET from the query API (`/api/...`), as JSON.
    async fn get(&self, path_and_query: &str) -> Value {
        let url = format!("http://127.0.0.1:{}{path_and_query}", self.query);
        match reqwest::get(&url).await {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Waits until `find` returns something from the query API.
    async fn eventually<T>(
        &self,
        what: &str,
        mut find: impl AsyncFnMut(&Jaeger) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(found) = find(self).await {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "jaeger never showed {what}\n{}",
                self.logs(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn listening(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// A span's tag by key (Jaeger's `tags: [{key, type, value}]`).
fn tag<'a>(span: &'a Value, key: &str) -> &'a Value {
    span["tags"]
        .as_array()
        .and_then(|tags| tags.iter().find(|t| t["key"] == key))
        .map_or(&Value::Null, |t| &t["value"])
}

/// The span of `trace` whose operation is `name`.
fn span<'a>(trace: &'a Value, name: &str) -> &'a Value {
    trace["spans"]
        .as_array()
        .and_then(|spans| spans.iter().find(|s| s["operationName"] == name))
        .unwrap_or_else(|| panic!("no span {name:?} in {trace:#}"))
}

/// The span id `span` is a CHILD_OF, if any.
fn parent(span: &Value) -> Option<&str> {
    span["references"]
        .as_array()?
        .iter()
        .find(|r| r["refType"] == "CHILD_OF")
        .and_then(|r| r["spanID"].as_str())
}

const CFG: &str = "package test:cfg; world cfg { import wasi:config/store@0.2.0-rc.1; }";

fn review(uid: &str, image: &str) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "kind": "Workload" },
            "resource": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "resource": "workloads" },
            "name": "traced",
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": { "username": "alice" },
            "object": {
                "apiVersion": "runtime.wasmcloud.dev/v1alpha1",
                "kind": "Workload",
                "metadata": { "name": "traced", "namespace": "team-a" },
                "spec": {
                    "hostSelector": { "hostgroup": "default" },
                    "components": [{ "name": "cfg", "image": image }]
                }
            },
            "oldObject": null,
            "dryRun": false
        }
    })
}

/// POSTs `review` to `/validate`, with a W3C `traceparent` when given; the answer as JSON.
async fn validate(
    client: &reqwest::Client,
    url: &str,
    review: &Value,
    traceparent: Option<&str>,
) -> Value {
    let mut request = client
        .post(format!("{url}/validate?timeout=10s"))
        .json(review);
    if let Some(parent) = traceparent {
        request = request.header("traceparent", parent);
    }
    request
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_and_registry_spans_reach_a_real_collector_in_the_callers_trace() {
    let Some(bin) = jaeger_bin() else { return };
    let work = tempfile::tempdir().expect("tempdir");
    let jaeger = Jaeger::start(&bin, work.path());
    let registry = Registry::start(None, false);
    let digest = registry.push("team/cfg:1.0.0", build_component(CFG)).await;
    let host = registry.host();

    let mut program = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
    // Export batches quickly (the default waits 5 s).
    program.env("OTEL_BSP_SCHEDULE_DELAY", "100");
    let certs = work.path().join("certs");
    let server = Server::start_program(
        program,
        &certs,
        &certs,
        &[
            "--inventory".into(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/inventory.yaml").into(),
            "--registry-insecure".into(),
            host.clone(),
            "--otlp-endpoint".into(),
            format!("http://127.0.0.1:{}", jaeger.otlp),
        ],
    );
    let client = server.client();
    let image = format!("{host}/team/cfg:1.0.0");

    // As kube-apiserver calls with its tracing on: version 00, its trace and span, sampled.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    let answer = validate(
        &client,
        &server.url,
        &review("uid-traced", &image),
        Some(&traceparent),
    )
    .await;
    let allowed = answer["response"]["allowed"].as_bool().expect("a verdict");

    let trace = jaeger
        .eventually("the admission trace with its registry spans", async |j| {
            let t = j.get(&format!("/api/traces/{trace_id}")).await["data"][0].clone();
            (t["spans"].as_array().map_or(0, Vec::len) >= 3).then_some(t)
        })
        .await;
    let admission = span(&trace, "POST /validate");
    assert_eq!(parent(admission), Some(caller_span), "{admission:#}");
    for (key, want) in [
        ("uid", json!("uid-traced")),
        ("kind", json!("Workload")),
        ("name", json!("traced")),
        ("namespace", json!("team-a")),
        ("operation", json!("Create")),
        ("allowed", json!(allowed)),
        ("span.kind", json!("server")),
    ] {
        assert_eq!(tag(admission, key), &want, "{key} of {admission:#}");
    }
    let admission_id = admission["spanID"].as_str().expect("span id");
    let resolve = span(&trace, "registry resolve");
    assert_eq!(parent(resolve), Some(admission_id), "{resolve:#}");
    assert_eq!(tag(resolve, "image"), &json!(image), "{resolve:#}");
    assert_eq!(tag(resolve, "digest"), &json!(digest), "{resolve:#}");
    let pull = span(&trace, "registry pull");
    assert_eq!(parent(pull), Some(admission_id), "{pull:#}");
    assert_eq!(tag(pull, "image"), &json!(image), "{pull:#}");
    assert_eq!(tag(pull, "span.kind"), &json!("client"), "{pull:#}");
    let process = &trace["processes"][pull["processID"].as_str().unwrap_or_default()];
    assert_eq!(process["serviceName"], "wasmgate", "{trace:#}");

    // No traceparent: a trace of its own, found by the review's uid; the world is cached now.
    let answer = validate(&client, &server.url, &review("uid-untraced", &image), None).await;
    assert_eq!(answer["response"]["allowed"].as_bool(), Some(allowed));
    let own = jaeger
        .eventually("the second review's own trace", async |j| {
            let found = j
                .get("/api/traces?service=wasmgate&lookback=1h&limit=20&tags=%7B%22uid%22%3A%22uid-untraced%22%7D")
                .await;
            found["data"].as_array().and_then(|d| d.first().cloned())
        })
        .await;
    assert_ne!(own["traceID"], trace_id, "{own:#}");
    let root = span(&own, "POST /validate");
    assert_eq!(parent(root), None, "{root:#}");
    assert_eq!(
        own["spans"].as_array().map(Vec::len),
        Some(1),
        "a cached world needs no registry request: {own:#}"
    );
    drop(server);
}
