//! Component worlds from a real OCI registry: Debian's `docker-registry` (CNCF distribution) on
//! loopback, with and without basic auth and TLS; real component binaries built from WIT, pushed
//! as CNCF wasm OCI artifacts with oci-client; a real `wasmgate serve` answering AdmissionReviews.
//!
//! "No network call" is proven two ways: a counting TCP proxy between wasmgate and the registry
//! (no byte goes up), and the registry's access log (no blob download).

mod common;

use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use oci_client::client::ImageLayer;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::registry::{Registry, WASM_CONFIG};
use common::{build_component, Server};
use wasmgate::components::oci::auth::Anonymous;
use wasmgate::components::{OciConfig, OciSource};

const LEGACY_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

const KV: &str = "package test:kv; world kv {
  import wasi:keyvalue/store@0.2.0-draft;
  import wasi:keyvalue/atomics@0.2.0-draft;
  export wasi:http/incoming-handler@0.2.0;
}";
const ORDERS: &str = "package test:orders; world orders {
  import orders-db: wasmcloud:postgres/query@0.2.0;
}";
const CFG: &str = "package test:cfg; world cfg { import wasi:config/store@0.2.0-rc.1; }";

fn inventory() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/examples/inventory.yaml").to_string()
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy that counts the bytes sent to the registry.

struct Proxy {
    port: u16,
    up: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(upstream: u16) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicU64::new(0));
        let counter = up.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let upward = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    counter.fetch_add(n as u64, Ordering::SeqCst);
                                    if sw.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let downward = async {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(upward, downward);
                });
            }
        });
        Proxy { port, up }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn bytes_up(&self) -> u64 {
        self.up.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------------------------
// Components and AdmissionReviews

/// Appends a custom section so the component has about `size` bytes (real components are
/// hundreds of KiB to MiBs; the decoder skips custom sections).
fn padded(mut component: Vec<u8>, size: usize) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"padding";
    let payload = size.saturating_sub(component.len() + 16);
    let mut body = Vec::new();
    leb(name.len(), &mut body);
    body.extend_from_slice(name);
    body.resize(body.len() + payload, 0x5a);
    component.push(0);
    leb(body.len(), &mut component);
    component.extend_from_slice(&body);
    component
}

fn http_entry() -> Value {
    json!({ "namespace": "wasi", "package": "http", "interfaces": ["incoming-handler"], "config": { "host": "kv.example.test" } })
}

fn workload(name: &str, components: Value) -> Value {
    json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1",
        "kind": "Workload",
        "metadata": { "name": name, "namespace": "team-a" },
        "spec": { "hostSelector": { "hostgroup": "default" }, "hostInterfaces": [http_entry()], "components": components },
    })
}

fn review(object: &Value) -> Value {
    let kind = object["kind"].as_str().unwrap_or_default();
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{}", object["metadata"]["name"].as_str().unwrap_or("x")),
            "kind": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "kind": kind },
            "resource": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "resource": format!("{}s", kind.to_lowercase()) },
            "name": object["metadata"]["name"],
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": { "username": "alice" },
            "object": object,
            "oldObject": null,
            "dryRun": false,
        }
    })
}

struct Hook {
    server: Server,
    client: reqwest::Client,
}

impl Hook {
    fn start(cert_dir: &Path, args: &[String]) -> Hook {
        let mut all = vec!["--inventory".to_string(), inventory()];
        all.extend_from_slice(args);
        let server = Server::start(cert_dir, &all);
        let client = server.client();
        Hook { server, client }
    }

    async fn post(&self, path: &str, object: &Value) -> Value {
        let resp = self
            .client
            .post(format!("{}{path}?timeout=10s", self.server.url))
            .json(&review(object))
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 200);
        let body: Value = resp.json().await.expect("JSON");
        body["response"].clone()
    }

    async fn validate(&self, object: &Value) -> Value {
        self.post("/validate", object).await
    }

    /// The mutating webhook's patch, decoded.
    async fn mutate(&self, object: &Value) -> (Value, String) {
        let r = self.post("/mutate", object).await;
        assert_eq!(r["allowed"], true, "{r}");
        let patch = common::response_patch(&r).unwrap_or(Value::Null);
        (patch, r["warnings"].to_string())
    }
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

fn component(name: &str, image: &str) -> Value {
    json!({ "name": name, "image": image })
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_by_tag_and_digest_pins_and_answers_from_cache() {
    let registry = Registry::start(None, false);
    let kv_digest = registry.push("team/kv:1.0.0", build_component(KV)).await;
    registry
        .push("team/orders:1.0.0", build_component(ORDERS))
        .await;
    registry.push("team/cfg:1.0.0", build_component(CFG)).await;
    let proxy = Proxy::start(registry.port).await;
    let host = proxy.host();
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let hook = Hook::start(
        &work.path().join("certs"),
        &args(&[
            "--registry-insecure",
            &host,
            "--cache-dir",
            &path_arg(&cache),
            "--pin-digests",
        ]),
    );

    // By tag: the world comes from the artifact, so the imports are checked.
    let kv = format!("{host}/team/kv:1.0.0");
    let r = hook
        .validate(&workload("kv", json!([component("kv", &kv)])))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(!warnings(&r).contains("imports not checked"), "{r}");
    // A component whose import no host provides is denied with the resolver's message.
    let r = hook
        .validate(&workload(
            "orders",
            json!([component("api", &format!("{host}/team/orders:1.0.0"))]),
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        message(&r).contains("component \"api\" imports wasmcloud:postgres/query@0.2.0"),
        "{r}"
    );

    // Pinning: the mutating webhook rewrites the tag to the digest it validated.
    let pinned = format!("{host}/team/kv@{kv_digest}");
    let (patch, notes) = hook
        .mutate(&workload("kv", json!([component("kv", &kv)])))
        .await;
    let op = patch
        .as_array()
        .unwrap()
        .iter()
        .find(|op| op["path"] == "/spec/components/0/image")
        .cloned()
        .unwrap_or_else(|| panic!("no image patch: {patch}"));
    assert_eq!(op["op"], "replace");
    assert_eq!(op["value"], pinned.as_str());
    assert!(notes.contains("pinned to"), "{notes}");

    // By digest: admitted, and (like every repeat below) answered without a byte to the
    // registry.
    let before = proxy.bytes_up();
    assert!(before > 0);
    let r = hook
        .validate(&workload("kv-pinned", json!([component("kv", &pinned)])))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(!warnings(&r).contains("imports not checked"), "{r}");
    let (patch, _) = hook
        .mutate(&workload("kv-pinned", json!([component("kv", &pinned)])))
        .await;
    assert!(
        !patch
            .as_array()
            .into_iter()
            .flatten()
            .any(|op| op["path"] == "/spec/components/0/image"),
        "a pinned image stays: {patch}"
    );
    let r = hook
        .validate(&workload("kv-again", json!([component("kv", &kv)])))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(
        proxy.bytes_up(),
        before,
        "a cached admission sends nothing to the registry"
    );

    // Prefetch: admitting a replica set warms the cache for the Workloads it stamps out.
    let cfg = format!("{host}/team/cfg:1.0.0");
    let rs = json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "WorkloadReplicaSet",
        "metadata": { "name": "cfg-rs", "namespace": "team-a" },
        "spec": { "replicas": 3, "template": { "spec": { "components": [component("cfg", &cfg)] } } }
    });
    let r = hook.validate(&rs).await;
    assert_eq!(r["allowed"], true, "{r}");
    let after_rs = proxy.bytes_up();
    assert!(after_rs > before, "the replica set's image was pulled");
    let stamped = json!({
        "apiVersion": "runtime.wasmcloud.dev/v1alpha1", "kind": "Workload",
        "metadata": { "name": "cfg-rs-abc12", "namespace": "team-a" },
        "spec": { "components": [component("cfg", &cfg)] }
    });
    let r = hook.validate(&stamped).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(!warnings(&r).contains("imports not checked"), "{r}");
    assert_eq!(
        proxy.bytes_up(),
        after_rs,
        "the stamped Workload hit the cache"
    );
    assert_eq!(
        registry.requests("GET", "/blobs/"),
        3,
        "three artifacts, each downloaded once"
    );

    // The disk cache: a restarted wasmgate resolves the tag again but downloads no blob.
    drop(hook);
    let blobs_before = registry.requests("GET", "/blobs/");
    let manifests_before = registry.requests("GET", "/manifests/");
    let hook = Hook::start(
        &work.path().join("certs"),
        &args(&[
            "--registry-insecure",
            &host,
            "--cache-dir",
            &path_arg(&cache),
        ]),
    );
    let r = hook
        .validate(&workload("kv-restart", json!([component("kv", &kv)])))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(!warnings(&r).contains("imports not checked"), "{r}");
    assert_eq!(registry.requests("GET", "/blobs/"), blobs_before);
    assert_eq!(
        registry.requests("GET", "/manifests/"),
        manifests_before + 1
    );
    assert!(cache.join("worlds").read_dir().unwrap().count() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_registry_over_tls_with_pull_secrets() {
    let registry = Registry::start(Some(("alice", "s3cret")), true);
    registry.push("team/kv:1.0.0", build_component(KV)).await;
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let secrets = work.path().join("secrets");
    let write_secret = |name: &str, user: &str, pass: &str| {
        let dir = secrets.join("team-a").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let mut f = std::fs::File::create(dir.join(".dockerconfigjson")).unwrap();
        write!(
            f,
            "{}",
            json!({ "auths": { host.clone(): { "auth": auth } } })
        )
        .unwrap();
    };
    write_secret("regcred", "alice", "s3cret");
    write_secret("wrong", "alice", "guess");
    let ca = path_arg(&registry.ca_file());
    let common = |extra: &[&str]| {
        let mut a = args(&[
            "--registry-ca",
            &ca,
            "--pull-secrets-dir",
            &path_arg(&secrets),
        ]);
        a.extend(args(extra));
        a
    };
    let image = format!("{host}/team/kv:1.0.0");
    let with_secret = |name: &str, secret: Option<&str>| {
        let mut c = component("kv", &image);
        if let Some(s) = secret {
            c["imagePullSecret"] = json!({ "name": s });
        }
        workload(name, json!([c]))
    };

    // Policy warn (the default).
    let hook = Hook::start(&work.path().join("certs-warn"), &common(&[]));
    let r = hook.validate(&with_secret("ok", Some("regcred"))).await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(!warnings(&r).contains("imports not checked"), "{r}");
    for (name, secret, expect) in [
        ("nosecret", None, "unauthorized"),
        ("wrong", Some("wrong"), "unauthorized"),
        (
            "missing",
            Some("nosuch"),
            "imagePullSecret \\\"nosuch\\\" not found",
        ),
    ] {
        let r = hook.validate(&with_secret(name, secret)).await;
        assert_eq!(r["allowed"], true, "{name}: {r}");
        let w = warnings(&r);
        assert!(
            w.contains("imports not checked") && w.contains(&image) && w.contains(expect),
            "{name}: {w}"
        );
    }

    // Policy deny: the same failures are denials that name the image and the error.
    let deny = Hook::start(
        &work.path().join("certs-deny"),
        &common(&["--registry-unreachable", "deny"]),
    );
    let r = deny.validate(&with_secret("nosecret", None)).await;
    assert_eq!(r["allowed"], false, "{r}");
    let m = message(&r);
    assert!(
        m.contains(&image)
            && m.contains("unauthorized")
            && m.contains("--registry-unreachable deny"),
        "{m}"
    );
    let r = deny.validate(&with_secret("ok", Some("regcred"))).await;
    assert_eq!(r["allowed"], true, "{r}");

    // Without the extra CA the registry's certificate is not trusted (system roots only).
    let untrusted = Hook::start(
        &work.path().join("certs-noca"),
        &args(&["--pull-secrets-dir", &path_arg(&secrets)]),
    );
    let r = untrusted
        .validate(&with_secret("ok", Some("regcred")))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    let w = warnings(&r).to_lowercase();
    assert!(
        w.contains("imports not checked")
            && w.contains("--registry-ca")
            && w.contains("certificate"),
        "{w}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_down_or_image_missing_under_both_policies() {
    let mut registry = Registry::start(None, false);
    registry.push("team/kv:1.0.0", build_component(KV)).await;
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let warn = Hook::start(
        &work.path().join("certs-warn"),
        &args(&["--registry-insecure", &host]),
    );
    let deny = Hook::start(
        &work.path().join("certs-deny"),
        &args(&[
            "--registry-insecure",
            &host,
            "--registry-unreachable",
            "deny",
        ]),
    );

    // A tag that does not exist.
    let missing = format!("{host}/team/kv:9.9.9");
    let obj = workload("missing", json!([component("kv", &missing)]));
    let r = warn.validate(&obj).await;
    assert_eq!(r["allowed"], true, "{r}");
    let w = warnings(&r);
    assert!(w.contains(&missing) && w.contains("does not exist"), "{w}");
    let r = deny.validate(&obj).await;
    assert_eq!(r["allowed"], false, "{r}");
    let m = message(&r);
    assert!(m.contains(&missing) && m.contains("does not exist"), "{m}");

    // The registry is down.
    registry.stop();
    let image = format!("{host}/team/kv:1.0.0");
    let obj = workload("down", json!([component("kv", &image)]));
    let r = warn.validate(&obj).await;
    assert_eq!(r["allowed"], true, "{r}");
    let w = warnings(&r);
    assert!(
        w.contains(&image) && w.contains("unreachable") && w.contains("imports not checked"),
        "{w}"
    );
    let r = deny.validate(&obj).await;
    assert_eq!(r["allowed"], false, "{r}");
    let m = message(&r);
    assert!(m.contains(&image) && m.contains("unreachable"), "{m}");

    // Back up: admitted from the registry again.
    registry.run();
    let r = deny.validate(&obj).await;
    assert_eq!(r["allowed"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_and_non_component_artifacts_are_refused() {
    let registry = Registry::start(None, false);
    let host = registry.host();
    let big = padded(build_component(KV), 200_000);
    let big_digest = {
        let layer = ImageLayer::new(big.clone(), "application/wasm".into(), None);
        layer.sha256_digest()
    };
    registry.push("team/big:1", big).await;
    registry
        .push("team/core:1", b"\0asm\x01\0\0\0".to_vec())
        .await;
    registry
        .push("team/junk:1", b"definitely not wasm".to_vec())
        .await;
    registry
        .push_layers(
            "team/container:1",
            vec![("application/vnd.oci.image.layer.v1.tar+gzip", vec![1, 2, 3])],
            "application/vnd.oci.image.config.v1+json",
        )
        .await;
    let kv = build_component(KV);
    registry
        .push_layers(
            "team/layers:1",
            vec![
                ("application/wasm", kv.clone()),
                ("application/wasm", padded(kv.clone(), 5000)),
                ("application/wasm", padded(kv.clone(), 6000)),
            ],
            WASM_CONFIG,
        )
        .await;
    // The older wasmCloud layer type is still a component.
    registry
        .push_layers(
            "team/legacy:1",
            vec![(LEGACY_LAYER, kv.clone())],
            WASM_CONFIG,
        )
        .await;
    let work = tempfile::tempdir().unwrap();
    let hook = Hook::start(
        &work.path().join("certs"),
        &args(&[
            "--registry-insecure",
            &host,
            "--registry-max-bytes",
            "65536",
            "--registry-max-layers",
            "2",
        ]),
    );
    for (repo, expect) in [
        ("big", "over the 65536-byte limit (--registry-max-bytes)"),
        ("core", "a core WebAssembly module, not a component"),
        ("junk", "not a WebAssembly binary"),
        ("container", "not a wasm component artifact"),
        ("layers", "3 layers, over the limit of 2"),
    ] {
        let image = format!("{host}/team/{repo}:1");
        let r = hook
            .validate(&workload(repo, json!([component("c", &image)])))
            .await;
        assert_eq!(r["allowed"], false, "{repo}: {r}");
        let m = message(&r);
        assert!(m.contains(&image) && m.contains(expect), "{repo}: {m}");
    }
    // The oversized layer was refused from its manifest: never downloaded.
    assert_eq!(registry.requests("GET", &big_digest), 0);
    let r = hook
        .validate(&workload(
            "legacy",
            json!([component("kv", &format!("{host}/team/legacy:1"))]),
        ))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(!warnings(&r).contains("imports not checked"), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_lookups_share_one_pull_and_stale_digests_survive_an_outage() {
    let mut registry = Registry::start(None, false);
    registry.push("team/kv:1.0.0", build_component(KV)).await;
    let image = format!("{}/team/kv:1.0.0", registry.host());
    let source = OciSource::new(
        OciConfig {
            insecure_registries: vec![registry.host()],
            tag_ttl: Duration::ZERO,
            ..OciConfig::default()
        },
        Arc::new(Anonymous),
    )
    .unwrap();
    let lookups = (0..16).map(|_| source.lookup_image("team-a", &image, None));
    for found in futures_util::future::join_all(lookups).await {
        let found = found.expect("lookup").expect("a registry image");
        assert!(!found.world.imports.is_empty());
        assert!(found.pinned.unwrap().contains("@sha256:"));
    }
    let s = source.stats();
    assert_eq!(
        (s.manifest_gets, s.blob_gets, s.decodes),
        (1, 1, 1),
        "{s:?}"
    );
    assert_eq!(registry.requests("GET", "/blobs/"), 1);

    // The resolution expired (TTL 0): a HEAD revalidates it; the world comes from memory.
    let heads = registry.requests("HEAD", "/manifests/");
    // With TTL 0 the concurrent lookups above may already have revalidated once.
    let heads_before = source.stats().manifest_heads;
    source.lookup_image("team-a", &image, None).await.unwrap();
    let s = source.stats();
    assert_eq!(
        (s.manifest_heads, s.blob_gets),
        (heads_before + 1, 1),
        "{s:?}"
    );
    assert_eq!(registry.requests("HEAD", "/manifests/"), heads + 1);

    // The registry goes away: the digest seen last still answers.
    registry.stop();
    let found = source.lookup_image("team-a", &image, None).await.unwrap();
    assert!(found.is_some());
    assert_eq!(source.stats().stale_uses, 1);
}

/// Cold and warm admission latency of a 5-component workload (BENCHMARKS.md). Run with
/// `cargo test --release --test oci_registry -- --ignored --nocapture latency`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run by hand"]
async fn latency_five_component_workload() {
    let registry = Registry::start(None, false);
    let host = registry.host();
    let rounds: usize = std::env::var("WASMGATE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let warm_reps = 20;
    for size in [0usize, 1 << 20] {
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        let mut in_process = Vec::new();
        for round in 0..rounds {
            let mut comps = Vec::new();
            for i in 0..5 {
                let wit = format!(
                    "package bench:c{i}r{round}s{size}; interface api {{ f: func(); }} world w {{ import wasi:keyvalue/store@0.2.0-draft; export api; }}"
                );
                let c = build_component(&wit);
                let c = if size > 0 { padded(c, size) } else { c };
                let tag = format!("bench/c{i}:r{round}s{size}");
                registry.push(&tag, c).await;
                comps.push(component(&format!("c{i}"), &format!("{host}/{tag}")));
            }
            // The same pulls in-process, without the webhook around them (a fresh source, so
            // cold too; the registry serves them warm from its page cache either way).
            let source = OciSource::new(
                OciConfig {
                    insecure_registries: vec![host.clone()],
                    ..OciConfig::default()
                },
                Arc::new(Anonymous),
            )
            .unwrap();
            let images: Vec<String> = comps
                .iter()
                .map(|c| c["image"].as_str().unwrap().to_string())
                .collect();
            let t = Instant::now();
            let found = futures_util::future::join_all(
                images
                    .iter()
                    .map(|i| source.lookup_image("team-a", i, None)),
            )
            .await;
            in_process.push(t.elapsed());
            assert!(found.iter().all(|f| matches!(f, Ok(Some(_)))));
            let work = tempfile::tempdir().unwrap();
            let hook = Hook::start(
                &work.path().join("certs"),
                &args(&["--registry-insecure", &host]),
            );
            let obj = workload("bench", Value::Array(comps));
            // Warm the process (HTTPS connection, lazy statics) with an admission that pulls
            // nothing: what is timed is the registry, not the first request of a process.
            let mut warmup = workload(
                "warmup",
                json!([component("w", &format!("{host}/bench/none:0"))]),
            );
            warmup["metadata"]["annotations"] = json!({ "wit.wasmgate.dev/w": KV });
            hook.validate(&warmup).await;
            let t = Instant::now();
            let r = hook.validate(&obj).await;
            cold.push(t.elapsed());
            assert!(!warnings(&r).contains("imports not checked"), "{r}");
            for _ in 0..warm_reps {
                let t = Instant::now();
                hook.validate(&obj).await;
                warm.push(t.elapsed());
            }
        }
        cold.sort();
        warm.sort();
        in_process.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pct = |v: &[Duration], p: f64| ms(v[((v.len() - 1) as f64 * p).round() as usize]);
        println!(
            "5 components of {} bytes each: cold p50 {:.1} ms (min {:.1}, max {:.1}, n={}); warm p50 {:.2} ms, p95 {:.2} ms (n={})",
            if size == 0 { "~2k".to_string() } else { size.to_string() },
            pct(&cold, 0.5),
            ms(cold[0]),
            ms(*cold.last().unwrap()),
            cold.len(),
            pct(&warm, 0.5),
            pct(&warm, 0.95),
            warm.len()
        );
        println!(
            "  the 5 cold lookups in-process (no webhook): p50 {:.1} ms (min {:.1})",
            pct(&in_process, 0.5),
            ms(in_process[0])
        );
    }
}
