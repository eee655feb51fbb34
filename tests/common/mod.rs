//! Shared test support: component binaries built from WIT with wit-component, and a running
//! `wasmgate serve` process on a free loopback port.
#![allow(dead_code)]

pub mod registry;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wit_component::{dummy_module, embed_component_metadata, ComponentEncoder, StringEncoding};
use wit_parser::{ManglingAndAbi, Resolve};

/// The WIT definitions every test world may use.
pub const DEPS: &str = include_str!("../fixtures/wit/deps.wit");

/// Builds a real component whose world is `world` (WIT text declaring one world in a package
/// `test:<name>`; it may use anything in `fixtures/wit/deps.wit`).
pub fn build_component(world: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let source = format!("{world}\n{DEPS}");
    let pkg = resolve
        .push_str("component.wit", &source)
        .expect("test WIT parses");
    let world = resolve.select_world(&[pkg], None).expect("one world");
    let mut module = dummy_module(&resolve, world, ManglingAndAbi::Standard32);
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)
        .expect("embed metadata");
    ComponentEncoder::default()
        .module(&module)
        .expect("module")
        .validate(true)
        .encode()
        .expect("encode component")
}

/// Writes `bytes` to `dir/name`.
pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write file");
    path
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A `wasmgate serve` child process, killed on drop.
pub struct Server {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA certificate that signed its serving certificate.
    pub ca_pem: Vec<u8>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts the binary with `args` (plus listen and cert-dir) and waits for `/readyz`.
    pub fn start(cert_dir: &Path, args: &[String]) -> Server {
        let program = Command::new(env!("CARGO_BIN_EXE_wasmgate"));
        Server::start_program(program, cert_dir, cert_dir, args)
    }

    /// Starts `program serve` (a wasmgate binary, possibly behind a wrapper such as `chroot`)
    /// with `args` plus listen and `--cert-dir CERT_DIR_ARG`, which is `cert_dir` as the program
    /// sees it, and waits until it listens with its CA written.
    pub fn start_program(
        mut program: Command,
        cert_dir: &Path,
        cert_dir_arg: &Path,
        args: &[String],
    ) -> Server {
        let port = free_port();
        let child = program
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cert-dir")
            .arg(cert_dir_arg)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start wasmgate");
        let url = format!("https://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut server = Server {
            child,
            url,
            ca_pem: Vec::new(),
        };
        loop {
            assert!(Instant::now() < deadline, "wasmgate did not become ready");
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("wasmgate exited early: {status}");
            }
            if let Ok(ca) = std::fs::read(cert_dir.join("ca.crt")) {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    server.ca_pem = ca;
                    return server;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (a `kill` name such as `TERM`) to the process.
    #[allow(dead_code)]
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed: {status}");
    }

    /// Waits for the process to exit by itself; panics when it still runs after `within`.
    #[allow(dead_code)]
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for wasmgate") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wasmgate still running {within:?} after it was asked to stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client that trusts only the server's CA.
    pub fn client(&self) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = reqwest::Certificate::from_pem(&self.ca_pem).expect("CA PEM");
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .use_rustls_tls()
            .build()
            .expect("client")
    }
}

/// An admission.k8s.io/v1 AdmissionReview of a CREATE of `object` in namespace team-a, as
/// kube-apiserver posts it.
pub fn admission_review(object: &serde_json::Value, dry_run: bool) -> serde_json::Value {
    let kind = object["kind"].as_str().unwrap_or_default();
    let resource = format!("{}s", kind.to_lowercase());
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("uid-{}", object["metadata"]["name"].as_str().unwrap_or("x")),
            "kind": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "kind": kind },
            "resource": { "group": "runtime.wasmcloud.dev", "version": "v1alpha1", "resource": resource },
            "name": object["metadata"]["name"],
            "namespace": "team-a",
            "operation": "CREATE",
            "userInfo": { "username": "alice", "groups": ["system:authenticated"] },
            "object": object,
            "oldObject": null,
            "dryRun": dry_run,
        }
    })
}

/// The JSONPatch of an AdmissionReview `response`, decoded; `None` when it has none.
///
/// `patch` is Go `[]byte`: kube-apiserver reads it from a base64 string or from an array of
/// byte values (kube's `AdmissionResponse`, which wasmgate uses, writes the array). When a patch
/// is present, `patchType` must be `JSONPatch`.
#[allow(dead_code)]
pub fn response_patch(response: &serde_json::Value) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let bytes: Vec<u8> = match response.get("patch")? {
        serde_json::Value::String(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("patch is base64"),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|b| {
                b.as_u64()
                    .and_then(|b| u8::try_from(b).ok())
                    .expect("patch bytes")
            })
            .collect(),
        other => panic!("patch is neither base64 nor bytes: {other}"),
    };
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    Some(serde_json::from_slice(&bytes).expect("the patch is JSON"))
}

#[allow(dead_code)]
fn wit(
    namespace: &str,
    package: &str,
    version: &str,
    interfaces: &[&str],
    name: &str,
) -> wasmgate_heartbeat_proto::v2::WitInterface {
    wasmgate_heartbeat_proto::v2::WitInterface {
        namespace: namespace.into(),
        package: package.into(),
        version: version.into(),
        interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
        config: [("bucket".to_string(), "cache".to_string())].into(),
        name: name.into(),
    }
}

/// A heartbeat as a wasmCloud host encodes it (prost + pbjson, `crates/heartbeat-proto`), with
/// every field set to a value that is not its zero.
#[allow(dead_code)]
pub fn pbjson_heartbeat() -> wasmgate_heartbeat_proto::v2::HostHeartbeat {
    wasmgate_heartbeat_proto::v2::HostHeartbeat {
        id: "6f1c2a8e-3b7d-4a57-9a61-0c2f1e8d9b47".into(),
        hostname: "node-a.example".into(),
        friendly_name: "exotic-toes-5866".into(),
        version: "2.7.0".into(),
        labels: [
            ("hostgroup".to_string(), "edge".to_string()),
            ("zone".to_string(), "eu-1".to_string()),
        ]
        .into(),
        started_at: Some(wasmgate_heartbeat_proto::Timestamp {
            seconds: 1_790_000_000,
            nanos: 500_000_000,
        }),
        os_arch: "x86_64".into(),
        os_name: "linux".into(),
        os_kernel: "6.12.0".into(),
        system_cpu_usage: 12.5,
        // Above 2^53: exact only as a JSON string, which is how pbjson writes uint64.
        system_memory_total: 9_007_199_254_740_993,
        system_memory_free: 4_294_967_296,
        component_count: 7,
        workload_count: 3,
        imports: vec![
            wit("wasi", "keyvalue", "0.2.0-draft", &["store", "atomics"], ""),
            wit("wasmcloud", "postgres", "0.2.0", &["query"], "orders-db"),
        ],
        exports: vec![wit("wasi", "http", "0.2.0", &["incoming-handler"], "")],
        http_port: 8080,
        environment: "production".into(),
    }
}
