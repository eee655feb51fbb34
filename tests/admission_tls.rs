//! The admission webhook end to end over TLS: a real `wasmgate serve` process, real component
//! binaries built from WIT with wit-component, and AdmissionReview JSON as kube-apiserver posts it.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use common::{admission_review, build_component, write, Server};

struct Fixture {
    _dir: tempfile::TempDir,
    server: Server,
    client: reqwest::Client,
}

const KV: &str = "package test:kv; world kv {
  import wasi:keyvalue/store@0.2.0-draft;
  import wasi:keyvalue/atomics@0.2.0-draft;
  export wasi:http/incoming-handler@0.2.0;
}";
const CONFIG: &str = "package test:cfg; world cfg { import wasi:config/store@0.2.0-rc.1; }";
const MSG2: &str = "package test:m2; world m2 {
  import wasmcloud:messaging/consumer@0.2.0;
  export wasmcloud:messaging/handler@0.2.0;
}";
const MSG3: &str = "package test:m3; world m3 {
  import wasmcloud:messaging/consumer@0.3.0;
  export wasmcloud:messaging/handler@0.3.0;
}";
const PRICING: &str = "package test:pricing; world pricing { export example:pricing/quote@0.1.0; }";
const SHOP: &str = "package test:shop; world shop {
  import example:pricing/quote@0.1.0;
  export wasi:http/incoming-handler@0.2.0;
}";
const CYCLE_A: &str = "package test:a@0.1.0;
interface ping { ping: func(); }
world a { import test:b/pong@0.1.0; export ping; }
package test:b@0.1.0 { interface pong { pong: func(); } }";
const CYCLE_B: &str = "package test:b@0.1.0;
interface pong { pong: func(); }
world b { import test:a/ping@0.1.0; export pong; }
package test:a@0.1.0 { interface ping { ping: func(); } }";
const ORDERS: &str = "package test:orders; world orders {
  import orders-db: wasmcloud:postgres/query@0.2.0;
}";

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    // No registry pulls: every image here is mapped to a file or deliberately unknown, and tests
    // must not reach for the network.
    let mut args = vec![
        "--registry-pulls".to_string(),
        "false".to_string(),
        "--inventory".to_string(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/inventory.yaml").to_string(),
    ];
    let components = [
        ("kv", KV),
        ("cfg", CONFIG),
        ("m2", MSG2),
        ("m3", MSG3),
        ("pricing", PRICING),
        ("pricing-copy", PRICING),
        ("shop", SHOP),
        ("a", CYCLE_A),
        ("b", CYCLE_B),
        ("orders", ORDERS),
    ];
    for (name, wit) in components {
        let path = write(dir.path(), &format!("{name}.wasm"), &build_component(wit));
        args.push("--component".into());
        args.push(format!("registry.test/{name}:1.0.0={}", path.display()));
    }
    // Not components: a core module and random bytes.
    let core = write(dir.path(), "core.wasm", b"\0asm\x01\0\0\0");
    let junk = write(dir.path(), "junk.wasm", b"definitely not wasm");
    for (name, path) in [("core", core), ("junk", junk)] {
        args.push("--component".into());
        args.push(format!("registry.test/{name}:1.0.0={}", path.display()));
    }
    let server = Server::start(&dir.path().join("certs"), &args);
    let client = server.client();
    Fixture {
        _dir: dir,
        server,
        client,
    }
}

fn component(name: &str, image: &str) -> Value {
    json!({ "name": name, "image": format!("registry.test/{image}:1.0.0") })
}

fn workload(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1",
        "kind": "Workload",
        "metadata": { "name": name, "namespace": "team-a" },
        "spec": spec,
    })
}

impl Fixture {
    async fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let resp = self
            .client
            .post(format!("{}{path}?timeout=10s", self.server.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.expect("JSON body");
        (status, body)
    }

    /// `GET /metrics`: checks the content type and the EOF marker, returns the text.
    async fn scrape(&self) -> String {
        let resp = self
            .client
            .get(format!("{}/metrics", self.server.url))
            .send()
            .await
            .expect("scrape");
        assert_eq!(resp.status().as_u16(), 200);
        assert_eq!(
            resp.headers()["content-type"],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        let text = resp.text().await.expect("metrics text");
        assert!(text.ends_with("# EOF\n"), "{text}");
        text
    }

    /// Posts a review; returns the `response` object after checking the envelope.
    async fn post(&self, path: &str, object: &Value) -> Value {
        let review = admission_review(object, false);
        let (status, body) = self
            .post_raw(path, serde_json::to_vec(&review).unwrap())
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(body["kind"], "AdmissionReview");
        assert_eq!(body["response"]["uid"], review["request"]["uid"]);
        body["response"].clone()
    }

    async fn validate(&self, object: &Value) -> Value {
        let r = self.post("/validate", object).await;
        assert!(
            r.get("patch").is_none() && r.get("patchType").is_none(),
            "validating responses carry no patch: {r}"
        );
        r
    }

    /// Mutates and returns (decoded patch, warnings).
    async fn mutate(&self, object: &Value) -> (json_patch::Patch, Vec<String>) {
        let r = self.post("/mutate", object).await;
        assert_eq!(r["allowed"], true, "{r}");
        let warnings = r["warnings"]
            .as_array()
            .map(|w| {
                w.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let Some(patch) = common::response_patch(&r) else {
            assert!(r.get("patchType").is_none());
            return (json_patch::Patch(vec![]), warnings);
        };
        (serde_json::from_value(patch).expect("patch JSON"), warnings)
    }
}

/// The value of `series` (name and labels exactly as exposed) in a scrape; 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(0.0)
}

fn message(r: &Value) -> String {
    r["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn warnings(r: &Value) -> String {
    r["warnings"].to_string()
}

fn http_entry() -> Value {
    json!({ "namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"], "config": { "host": "kv.example.test" } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_over_tls() {
    let f = fixture();

    // Health.
    for path in ["/healthz", "/livez", "/readyz"] {
        let resp = f
            .client
            .get(format!("{}{path}", f.server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }

    // keyvalue: the mutating webhook declares wasi:keyvalue (never pinning a version: an
    // unversioned entry binds the plugin at whatever version it has); the patch is idempotent;
    // the validating webhook admits the object as mutated.
    let mut kv = workload(
        "kv",
        json!({ "hostSelector": { "hostgroup": "default" }, "hostInterfaces": [http_entry()], "components": [component("kv", "kv")] }),
    );
    let (patch, notes) = f.mutate(&kv).await;
    let patch_json = serde_json::to_value(&patch).unwrap();
    assert!(
        patch_json
            .to_string()
            .contains("\"/spec/hostInterfaces/1\""),
        "{patch_json}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("wasi:keyvalue") && n.contains("[atomics, store]")),
        "{notes:?}"
    );
    json_patch::patch(&mut kv, &patch).expect("patch applies to the original object");
    assert!(kv["spec"]["hostInterfaces"][1]["version"].is_null(), "{kv}");
    assert_eq!(
        kv["spec"]["hostInterfaces"][1]["interfaces"],
        json!(["atomics", "store"])
    );
    assert_eq!(
        kv["spec"]["components"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    let (again, notes) = f.mutate(&kv).await;
    assert!(
        again.0.is_empty() && notes.is_empty(),
        "mutation is idempotent: {again:?} {notes:?}"
    );
    let r = f.validate(&kv).await;
    assert_eq!(r["allowed"], true, "{r}");

    // The same component without the wasi:http entry: admitted, warned that nothing calls it.
    let r = f
        .validate(&workload(
            "kv-nohttp",
            json!({ "components": [component("kv", "kv")] }),
        ))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(warnings(&r).contains("nothing calls it"), "{r}");

    // wasi:config without an entry: validation judges the defaulted object, so it is admitted.
    let cfg = workload("cfg", json!({ "components": [component("cfg", "cfg")] }));
    let r = f.validate(&cfg).await;
    assert_eq!(r["allowed"], true, "{r}");
    let (patch, _) = f.mutate(&cfg).await;
    let mut cfg2 = cfg.clone();
    json_patch::patch(&mut cfg2, &patch).unwrap();
    assert_eq!(cfg2["spec"]["hostInterfaces"][0]["package"], "config");
    assert!(
        cfg2["spec"]["hostInterfaces"][0]["version"].is_null(),
        "{cfg2}"
    );

    // wasmcloud:messaging 0.2.0 component against an entry pinned to 0.3.0: denied.
    let entry = |v: &str| json!({ "namespace": "wasmcloud", "package": "messaging", "version": v, "interfaces": ["consumer", "handler"] });
    let r = f
        .validate(&workload(
            "m2",
            json!({ "hostInterfaces": [entry("0.3.0")], "components": [component("h", "m2")] }),
        ))
        .await;
    assert_eq!(r["allowed"], false);
    let m = message(&r);
    assert!(
        m.contains("component \"h\" imports wasmcloud:messaging/consumer@0.2.0")
            && m.contains("pins version 0.3.0")
            && m.contains("set the entry's version to 0.2.0"),
        "{m}"
    );
    assert_eq!(r["status"]["code"], 403);
    // 0.3.0 against 0.3.0 and 0.2.0 against 0.2.0: admitted (hosts offer both).
    for (img, v) in [("m3", "0.3.0"), ("m2", "0.2.0")] {
        let r = f
            .validate(&workload(
                img,
                json!({ "hostInterfaces": [entry(v)], "components": [component("h", img)] }),
            ))
            .await;
        assert_eq!(r["allowed"], true, "{img}: {r}");
    }
    // A host group that does not exist: nothing can provide the plugin.
    let r = f
        .validate(&workload("m3-nowhere", json!({ "hostSelector": {"hostgroup": "gpu"}, "hostInterfaces": [entry("0.3.0")], "components": [component("h", "m3")] })))
        .await;
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains("no Ready host matches (5 hosts in the inventory)"),
        "{}",
        message(&r)
    );

    // Siblings: a pair resolves; a cycle and an ambiguous pair do not.
    let r = f
        .validate(&workload("shop", json!({ "hostInterfaces": [http_entry()], "components": [component("shop", "shop"), component("pricing", "pricing")] })))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    let r = f
        .validate(&workload(
            "cycle",
            json!({ "components": [component("a", "a"), component("b", "b")] }),
        ))
        .await;
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains("circular dependency detected among components: a -> b -> a"),
        "{}",
        message(&r)
    );
    let r = f
        .validate(&workload("ambiguous", json!({ "hostInterfaces": [http_entry()], "components": [component("shop", "shop"), component("p1", "pricing"), component("p2", "pricing-copy")] })))
        .await;
    assert_eq!(r["allowed"], false);
    let m = message(&r);
    assert!(m.contains("component \"shop\" imports example:pricing/quote@0.1.0, which is exported by multiple components in the workload (\"p1\", \"p2\")"), "{m}");

    // A named import: the message of design.md on the default group; admitted on "data".
    let orders = |group: &str| {
        workload(
            "orders",
            json!({
                "hostSelector": { "hostgroup": group },
                "hostInterfaces": [{ "name": "orders-db", "namespace": "wasmcloud", "package": "postgres", "version": "0.2.0", "interfaces": ["query"] }],
                "components": [component("api", "orders")],
            }),
        )
    };
    let r = f.validate(&orders("default")).await;
    assert_eq!(
        message(&r),
        "component \"api\" imports wasmcloud:postgres/query@0.2.0 through hostInterfaces entry \"orders-db\": none of the 3 hosts matching hostSelector {hostgroup=default} provides wasmcloud:postgres@0.2.0 (they offer 0.1.1-draft)"
    );
    let r = f.validate(&orders("data")).await;
    assert_eq!(r["allowed"], true, "{r}");

    // Replica sets and deployments: the template's spec is judged and patched.
    let rs = json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "WorkloadReplicaSet",
        "metadata": { "name": "kv-rs", "namespace": "team-a" },
        "spec": { "replicas": 2, "template": { "spec": { "hostInterfaces": [http_entry()], "components": [component("kv", "kv")] } } }
    });
    let r = f.validate(&rs).await;
    assert_eq!(r["allowed"], true, "{r}");
    let (patch, _) = f.mutate(&rs).await;
    assert!(serde_json::to_string(&patch)
        .unwrap()
        .contains("/spec/template/spec/hostInterfaces/1"));
    let deploy = |m3_version: &str| {
        json!({
            "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "WorkloadDeployment",
            "metadata": { "name": "events", "namespace": "team-a" },
            "spec": { "deployPolicy": "Recreate", "template": { "spec": { "hostInterfaces": [entry(m3_version)], "components": [component("h", "m3")] } } }
        })
    };
    assert_eq!(f.validate(&deploy("0.3.0")).await["allowed"], true);
    assert_eq!(f.validate(&deploy("0.2.0")).await["allowed"], false);

    // dryRun gets the same verdict.
    let dry = admission_review(&orders("default"), true);
    let (status, body) = f
        .post_raw("/validate", serde_json::to_vec(&dry).unwrap())
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["allowed"], false);

    // Components that are not components.
    let r = f
        .validate(&workload(
            "core",
            json!({ "components": [component("c", "core")] }),
        ))
        .await;
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains("a core WebAssembly module, not a component"),
        "{}",
        message(&r)
    );
    let r = f
        .validate(&workload(
            "junk",
            json!({ "components": [component("j", "junk")] }),
        ))
        .await;
    assert!(
        message(&r).contains("not a WebAssembly binary"),
        "{}",
        message(&r)
    );

    // An image nobody can describe: admitted with a warning (policy warn).
    let r = f
        .validate(&workload(
            "mystery",
            json!({ "components": [{ "name": "m", "image": "registry.test/unknown:9" }] }),
        ))
        .await;
    assert_eq!(r["allowed"], true);
    assert!(warnings(&r).contains("imports not checked"), "{r}");

    // Invalid WIT in the annotation.
    let mut bad = workload(
        "badwit",
        json!({ "components": [{ "name": "x", "image": "registry.test/unknown:9" }] }),
    );
    bad["metadata"]["annotations"] =
        json!({ "wit.wasmgate.dev/x": "package a:b; world w { import }" });
    let r = f.validate(&bad).await;
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains("annotation wit.wasmgate.dev/x: invalid WIT"),
        "{}",
        message(&r)
    );

    // An object that does not decode as its kind.
    let r = f
        .validate(&workload("shape", json!({ "components": "nope" })))
        .await;
    assert_eq!(r["allowed"], false);
    assert!(
        message(&r).contains("cannot decode Workload \"shape\""),
        "{}",
        message(&r)
    );

    // Metrics: everything above was counted by verdict; one more of each moves each series by
    // exactly one.
    let requests = |op: &str, kind: &str, verdict: &str| {
        format!(
            "wasmgate_admission_requests_total{{operation=\"{op}\",kind=\"{kind}\",verdict=\"{verdict}\"}}"
        )
    };
    let latency = |op: &str, verdict: &str| {
        format!(
            "wasmgate_admission_duration_seconds_count{{operation=\"{op}\",verdict=\"{verdict}\"}}"
        )
    };
    let before = f.scrape().await;
    assert!(sample(&before, &requests("validate", "Workload", "allowed")) >= 5.0);
    assert!(sample(&before, &requests("validate", "Workload", "denied")) >= 5.0);
    assert!(
        sample(
            &before,
            &requests("mutate", "WorkloadReplicaSet", "allowed")
        ) >= 1.0
    );
    assert!(
        sample(
            &before,
            &requests("validate", "WorkloadDeployment", "denied")
        ) >= 1.0
    );
    // The hosts gauge counts what admission judges against: the inventory file's hosts.
    let file_ready = wasmgate::inventory::load_hosts(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/inventory.yaml"
    )))
    .expect("the example inventory")
    .iter()
    .filter(|h| h.ready_status() == Some("True"))
    .count();
    assert!(file_ready > 0);
    assert!(
        before.contains("\nwasmgate_build_info{version=\"")
            && before.contains(&format!(
                "\nwasmgate_hosts{{ready=\"true\"}} {file_ready}\n"
            ))
            && before.contains("\nwasmgate_heartbeats_total 0\n"),
        "{before}"
    );
    let (status, _) = f.post_raw("/validate", b"{".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(f.validate(&cfg).await["allowed"], true);
    let core = workload("core", json!({ "components": [component("c", "core")] }));
    assert_eq!(f.validate(&core).await["allowed"], false);
    f.mutate(&cfg).await;
    let after = f.scrape().await;
    for (series, by) in [
        (requests("validate", "other", "error"), 1.0),
        (requests("validate", "Workload", "allowed"), 1.0),
        (requests("validate", "Workload", "denied"), 1.0),
        (requests("mutate", "Workload", "allowed"), 1.0),
        (requests("mutate", "Workload", "denied"), 0.0),
        (latency("validate", "error"), 1.0),
        (latency("validate", "allowed"), 1.0),
        (latency("validate", "denied"), 1.0),
        (latency("mutate", "allowed"), 1.0),
    ] {
        assert_eq!(
            sample(&after, &series) - sample(&before, &series),
            by,
            "{series}\n{after}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_status_errors() {
    let f = fixture();
    let fixtures = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/webhooks/fixtures"));
    let read = |n: &str| std::fs::read(fixtures.join(n)).expect("fixture");

    for (file, expect) in [
        ("malformed.json", "malformed JSON"),
        (
            "not-a-review.json",
            "not an admission.k8s.io/v1 AdmissionReview",
        ),
        ("missing-uid.json", "missing field `uid`"),
    ] {
        let (status, body) = f.post_raw("/validate", read(file)).await;
        assert_eq!(status, 400, "{file}: {body}");
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["status"], "Failure");
        assert_eq!(body["code"], 400);
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains(expect),
            "{file}: {body}"
        );
    }

    // A wrong method: 405 with a Status, as every error.
    let response = f
        .client
        .get(format!("{}/validate", f.server.url))
        .send()
        .await
        .expect("GET /validate");
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.expect("a Status body");
    assert_eq!(
        (
            body["kind"].as_str(),
            body["reason"].as_str(),
            body["code"].as_u64()
        ),
        (Some("Status"), Some("MethodNotAllowed"), Some(405)),
        "{body}"
    );

    // Over 3 MiB.
    let (status, body) = f
        .post_raw("/validate", vec![b' '; 3 * 1024 * 1024 + 1])
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["reason"], "RequestEntityTooLarge");

    // A kind the webhook does not handle: allowed, with a warning (never block unrelated kinds).
    let (status, body) = f.post_raw("/validate", read("unknown-kind-pod.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["allowed"], true);
    assert!(body["response"]["warnings"]
        .to_string()
        .contains("not a kind wasmgate checks"));

    // DELETE is not judged.
    let (_, body) = f.post_raw("/validate", read("delete-hello-kv.json")).await;
    assert_eq!(body["response"]["allowed"], true);

    // Every example fixture gets the expected verdict from both webhooks.
    for entry in std::fs::read_dir(&fixtures).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        let expected = if name.starts_with("good-") {
            true
        } else if name.starts_with("broken-") {
            false
        } else {
            continue;
        };
        let (_, body) = f.post_raw("/validate", read(&name)).await;
        assert_eq!(body["response"]["allowed"], expected, "{name}: {body}");
        let (_, body) = f.post_raw("/mutate", read(&name)).await;
        assert_eq!(
            body["response"]["allowed"], true,
            "mutate never denies: {name}"
        );
    }

    // Unknown paths are Status 404s.
    let resp = f
        .client
        .get(format!("{}/nope", f.server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "Status");
}

/// A registry that accepts connections and never answers: both webhooks still answer within the
/// apiserver's deadline (`?timeout=`), and both deny, so no object is stored without the defaults
/// validation would judge it with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_registry_denies_within_the_deadline() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let registry = format!("127.0.0.1:{}", silent.local_addr().expect("addr").port());
    // Accept and hold every connection, saying nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming().flatten() {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let args: Vec<String> = [
        "--registry-insecure",
        registry.as_str(),
        "--inventory",
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/inventory.yaml"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let server = Server::start(&dir.path().join("certs"), &args);
    let client = server.client();
    let object = workload(
        "silent",
        json!({ "components": [{ "name": "app", "image": format!("{registry}/app:1.0.0") }] }),
    );
    for path in ["/validate", "/mutate"] {
        let resp = client
            .post(format!("{}{path}?timeout=2s", server.url))
            .header("content-type", "application/json")
            .json(&admission_review(&object, false))
            .send()
            .await
            .expect("the webhook answers");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let body: Value = resp.json().await.expect("JSON");
        let r = &body["response"];
        assert_eq!(r["allowed"], false, "{path}: {r}");
        assert!(
            r["status"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("could not finish checking")),
            "{path}: {r}"
        );
        assert!(r.get("patch").is_none(), "{path}: {r}");
    }
}

/// With `--inventory FILE`, the `hosts` API lists exactly the file's hosts (what admission judges
/// against), follows edits of the file, and refuses writes (the file is the source).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_api_lists_the_inventory_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/inventory.yaml");
    let file = dir.path().join("inventory.yaml");
    std::fs::copy(source, &file).expect("copy the example inventory");
    let file_hosts = wasmgate::inventory::load_hosts(&file).expect("the example inventory loads");
    let mut expected: Vec<String> = file_hosts
        .iter()
        .filter_map(|h| h.metadata.name.clone())
        .collect();
    expected.sort();
    assert!(expected.len() >= 2, "the example has several hosts");
    let server = Server::start(
        &dir.path().join("certs"),
        &[
            "--registry-pulls".into(),
            "false".into(),
            "--api-auth".into(),
            "none".into(),
            "--inventory-poll-seconds".into(),
            "1".into(),
            "--inventory".into(),
            file.display().to_string(),
        ],
    );
    let client = server.client();
    let hosts_url = format!("{}/apis/wasmgate.dev/v1alpha1/hosts", server.url);
    let names = |body: &Value| -> Vec<String> {
        let mut v: Vec<String> = body["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|h| h["metadata"]["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let list = || async {
        let response = client.get(&hosts_url).send().await.expect("list hosts");
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.expect("a HostList")
    };
    assert_eq!(names(&list().await), expected);

    // Writes are refused with a Status that says where hosts come from.
    let response = client
        .post(&hosts_url)
        .json(&json!({
            "apiVersion": "wasmgate.dev/v1alpha1",
            "kind": "Host",
            "metadata": { "name": "written" },
            "hostId": "written-id",
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 405);
    let status: Value = response.json().await.expect("a Status");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--inventory"),
        "{status}"
    );
    let response = client
        .delete(format!("{hosts_url}/{}", expected[0]))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 405);

    // An edit that drops a host: the list follows (the poll runs every second).
    let kept: Vec<&wasmgate::crd::Host> = file_hosts
        .iter()
        .filter(|h| h.metadata.name.as_deref() != Some(expected[0].as_str()))
        .collect();
    let list_doc = json!({ "apiVersion": "v1", "kind": "List", "items": kept });
    std::fs::write(&file, list_doc.to_string()).expect("edit the inventory");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = names(&list().await);
        if now == expected[1..] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the list did not follow the file: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Annotation worlds are remembered (for the Workloads a replica set stamps out without the
/// template's annotations) only from objects that are admitted and stored: a dry run or a
/// denied object teaches nothing, so a caller of `/validate` cannot plant worlds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worlds_are_remembered_only_from_admitted_stored_objects() {
    let f = fixture();
    // An image no source knows: only an annotation can tell its world.
    let image = "registry.test/unmapped-kv:1.0.0";
    let replica_set = |name: &str, wit: &str, entries: Value| {
        json!({
            "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "WorkloadReplicaSet",
            "metadata": { "name": name, "namespace": "team-a" },
            "spec": { "replicas": 1, "template": {
                "annotations": { "wit.wasmgate.dev/kv": wit },
                "spec": { "hostInterfaces": entries, "components": [{ "name": "kv", "image": image }] }
            } }
        })
    };
    let stamped = json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "Workload",
        "metadata": { "name": "kv-rs-abc12", "namespace": "team-a" },
        "spec": { "components": [{ "name": "kv", "image": image }] }
    });
    let unchecked = |r: &Value| warnings(r).contains("imports not checked");
    let kv_entry =
        json!([{ "namespace": "wasi", "package": "keyvalue", "interfaces": ["store", "atomics"] }]);

    // A dry run of a good replica set: admitted, but not stored.
    let dry = admission_review(&replica_set("kv-rs", KV, kv_entry.clone()), true);
    let (status, body) = f
        .post_raw("/validate", serde_json::to_vec(&dry).unwrap())
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["allowed"], true, "{body}");
    let r = f.validate(&stamped).await;
    assert!(unchecked(&r), "a dry run taught a world: {r}");

    // A denied replica set (its WIT imports a plugin no host offers): not stored either.
    const ORPHAN: &str =
        "package test:orphan; world orphan { import wasmcloud:postgres/query@9.9.9; }";
    let denied = f
        .validate(&replica_set("orphan-rs", ORPHAN, json!([])))
        .await;
    assert_eq!(denied["allowed"], false, "{denied}");
    let r = f.validate(&stamped).await;
    assert!(unchecked(&r), "a denied object taught a world: {r}");

    // Admitted and stored: the stamped Workload is judged by the template's world.
    let r = f.validate(&replica_set("kv-rs", KV, kv_entry)).await;
    assert_eq!(r["allowed"], true, "{r}");
    let r = f.validate(&stamped).await;
    assert!(
        !unchecked(&r),
        "the admitted template's world was not used: {r}"
    );
}
